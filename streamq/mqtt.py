"""The one place that turns an MQTT URL and TLS files into an aiomqtt client.

The MQTT source, the MQTT sink and the fleet (responder and client) all connect
through :func:`client`, so they accept the same URLs (``mqtt://``, ``mqtts://``,
and the ``tcp://``/``ssl://`` spellings other tools use), the same credentials
and the same TLS files. aiomqtt is imported only when a client is made.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import ConfigError

_PLAIN, _TLS = ("mqtt", "tcp"), ("mqtts", "ssl")


@dataclass(frozen=True)
class Broker:
    """Where to connect, and as whom; ``tls`` holds the context for an mqtts:// URL."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def parse_url(url: str) -> tuple[Broker, str | None]:
    """``mqtt[s]://[user[:password]@]host[:port][/topic/filter]`` -> (broker, topic or None).

    The topic is split off by hand: ``#`` is a wildcard here, not a URL fragment.
    An mqtts:// broker gets the system's CA store; :func:`with_tls_files` changes that.
    """
    if not isinstance(url, str):
        raise ConfigError(f"{url!r}: expected mqtt://host:port or mqtts://host:port")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _PLAIN + _TLS:
        raise ConfigError(f"{url!r}: expected mqtt://host:port or mqtts://host:port")
    netloc, slash, topic = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user), unquote(secret) if colon else None
    if hostport.startswith("["):  # [v6]:port
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, _, port_text = hostport.partition(":")
    tls = scheme in _TLS
    try:
        port = int(port_text) if port_text else (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(f"{url!r}: port {port_text!r} is not a number") from None
    if not host or not 0 < port < 65536:
        raise ConfigError(f"{url!r}: expected a host and a port between 1 and 65535")
    context = tls_context() if tls else None
    return Broker(host, port, context, username, password), (unquote(topic) if slash and topic else None)


def tls_context(ca: str | None = None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A client TLS context: ``ca`` (or the system store), and a client certificate if given."""
    try:
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"cannot load TLS files (ca={ca}, cert={cert}, key={key}): {err}") from err
    return context


def with_tls_files(broker: Broker, ca: str | None, cert: str | None, key: str | None) -> Broker:
    """``broker`` using these TLS files; they need an mqtts:// URL."""
    if not (ca or cert or key):
        return broker
    if broker.tls is None:
        raise ConfigError(f"ca, cert and key need an mqtts:// url, not {broker.url}")
    return Broker(broker.host, broker.port, tls_context(ca, cert, key), broker.username, broker.password)


def with_credentials(broker: Broker, username: str | None, password: str | None) -> Broker:
    """Credentials from options take precedence over those in the URL."""
    if username is None and password is None:
        return broker
    return Broker(broker.host, broker.port, broker.tls, username or broker.username, password or broker.password)


def client(broker: Broker, **kwargs: Any) -> Any:
    """An ``aiomqtt.Client`` for ``broker``; ``kwargs`` go to aiomqtt (identifier, will, protocol...)."""
    import aiomqtt

    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        tls_context=broker.tls,
        **kwargs,
    )
