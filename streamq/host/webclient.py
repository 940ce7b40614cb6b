"""HTTP(S) for the tables that ask a server: a GET with a short timeout, the certificate a TLS
server presents, and Prometheus' text exposition format.

The standard library's urllib and ssl do the I/O, imported on first use;
Prometheus' own parser (prometheus_client) reads the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import optional

MAX_BODY = 16 << 20


def http_get(url: str, headers: Mapping[str, str], timeout: float, max_bytes: int = MAX_BODY) -> tuple[int, bytes]:
    """(status, body) of a GET; an HTTP error status is a response, not a failure."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(max_bytes)
    except urllib.error.HTTPError as err:
        return err.code, err.read(max_bytes)


def split_host_port(hostname: str) -> tuple[str, int]:
    host, sep, port = hostname.rpartition(":")
    if not sep or "]" in port:  # no port, or an IPv6 literal without one
        return hostname.strip("[]"), 443
    return host.strip("[]"), int(port) if port else 443


def peer_certificate(hostname: str, timeout: float) -> bytes:
    """The DER certificate a TLS server presents, unverified (the point is to look at it)."""
    import socket
    import ssl

    host, port = split_host_port(hostname)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise OSError("the server sent no certificate")
    return der


def metric_name(name: str, labels: dict[str, str]) -> str:
    """The sample as the exposition format writes it: name{label="value",...}."""
    if not labels:
        return name
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in labels.values())
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, escaped)) + "}"


def metric_rows(target: str, text: str, scraped_ms: int) -> list[dict]:
    """prometheus_metrics rows of one scrape; ValueError when ``text`` is not the text format."""
    parser = optional.optional_module("prometheus_client.parser", "prometheus-client")
    if parser is None:
        return []
    rows = []
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            rows.append(
                {
                    "target_name": target,
                    "metric_name": metric_name(sample.name, sample.labels),
                    "metric_value": float(sample.value),
                    "timestamp_ms": scraped_ms,
                }
            )
    return rows
