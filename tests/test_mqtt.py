"""The one MQTT URL parser the source, the sink and the fleet share."""

from __future__ import annotations

import pytest

from streamq.errors import ConfigError
from streamq.mqtt import parse_url, with_credentials, with_tls_files


def test_parse_url_plain_and_topic():
    broker, topic = parse_url("mqtt://127.0.0.1:1884/sensors/#")
    assert (broker.host, broker.port, broker.tls, topic) == ("127.0.0.1", 1884, None, "sensors/#")
    broker, topic = parse_url("mqtt://[::1]:1999/a/+/b")
    assert (broker.host, broker.port, topic, broker.url) == ("::1", 1999, "a/+/b", "mqtt://[::1]:1999")
    broker, topic = parse_url("mqtt://[::1]")
    assert (broker.host, broker.port, topic) == ("::1", 1883, None)
    broker, _ = parse_url("mqtt://broker.example:1884")
    assert (broker.host, broker.port, broker.username, broker.password) == ("broker.example", 1884, None, None)


def test_parse_url_tls_and_credentials():
    broker, topic = parse_url("mqtts://u:p%40ss@broker.example")
    assert (broker.host, broker.port, broker.username, broker.password, topic) == (
        "broker.example",
        8883,
        "u",
        "p@ss",
        None,
    )
    assert broker.tls is not None and broker.url == "mqtts://broker.example:8883"


def test_tcp_and_ssl_spellings_are_accepted_by_every_user():
    # The sink once accepted these and the source did not; one parser now serves both.
    assert parse_url("tcp://h:1")[0].tls is None
    assert parse_url("ssl://h")[0].port == 8883 and parse_url("ssl://h")[0].tls is not None


@pytest.mark.parametrize(
    "bad", ["http://x:1", "http://x", "mqtt://", "mqtt://:1883", "mqtt://h:99999", "mqtt://h:port", "mqtt://h:notaport"]
)
def test_bad_urls(bad):
    with pytest.raises(ConfigError):
        parse_url(bad)


def test_options_override_url_credentials_and_tls_needs_mqtts():
    broker, _ = parse_url("mqtt://a:b@h")
    assert with_credentials(broker, "c", None).username == "c"
    assert with_credentials(broker, None, None) is broker
    with pytest.raises(ConfigError, match="mqtts"):
        with_tls_files(broker, "/nonexistent/ca.pem", None, None)
    tls, _ = parse_url("mqtts://h")
    with pytest.raises(ConfigError, match="TLS"):
        with_tls_files(tls, "/nonexistent/ca.pem", None, None)
