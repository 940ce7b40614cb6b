"""HTTP(S) from a query: fetch a URL, read a server's TLS certificate, scrape Prometheus targets.

Every request has a short timeout so a dead host costs seconds, not a hung
query. The requests and the parsing are in host/webclient (and host/tlscert).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..sql.schema import BIGINT, DOUBLE, INTEGER, TEXT, Column, table
from ._common import lazy_module

optional = lazy_module("streamq.host.optional")
tlscert = lazy_module("streamq.host.tlscert")
webclient = lazy_module("streamq.host.webclient")

CURL_TIMEOUT = 5.0
CERT_TIMEOUT = 4  # osquery's default read timeout for curl_certificate, seconds
USER_AGENT = "osquery"  # what osquery sends; servers that key on it see the same client


@table(
    "curl",
    "Fetch a URL with HTTP GET and return the status, timing and body.",
    [
        Column("url", TEXT, "The URL to fetch.", required=True, index=True),
        Column("method", TEXT, "HTTP method: GET."),
        Column("user_agent", TEXT, "User-Agent header to send (default osquery).", additional=True),
        Column("response_code", INTEGER, "HTTP status code of the response; NULL when no response came."),
        Column("round_trip_time", BIGINT, "Time from request to the whole response, microseconds."),
        Column("bytes", BIGINT, "Length of the response body in bytes."),
        Column("result", TEXT, "The response body."),
    ],
    examples=("SELECT response_code, bytes FROM curl WHERE url = 'http://127.0.0.1:8080/health'",),
    cost=1,
)
def gen_curl(ctx):
    agents = [a for a in ctx.eq("user_agent") or [USER_AGENT] if isinstance(a, str)]
    for url in [u for u in ctx.eq("url") or () if isinstance(u, str)]:
        for agent in agents:
            start = time.monotonic()
            row = {"url": url, "method": "GET", "user_agent": agent}
            try:
                status, body = webclient.http_get(url, {"User-Agent": agent}, CURL_TIMEOUT)
            except (OSError, ValueError) as err:
                # osquery keeps the row of a request that failed, without a response:
                # `WHERE url IN (...)` gives one row per URL, `response_code IS NULL` the dead ones.
                optional.note_once(f"curl: {url}: {err}")
                yield {**row, "response_code": None, "round_trip_time": None, "bytes": None, "result": None}
                continue
            yield {
                **row,
                "response_code": status,
                "round_trip_time": int((time.monotonic() - start) * 1_000_000),
                "bytes": len(body),
                "result": body.decode("utf-8", "replace"),
            }


_CERT_TEXT = [
    "common_name",
    "organization",
    "organization_unit",
    "serial_number",
    "issuer_common_name",
    "issuer_organization",
    "issuer_organization_unit",
    "valid_from",
    "valid_to",
    "sha256_fingerprint",
    "sha1_fingerprint",
]
_CERT_EXTENSIONS = [
    "subject_key_identifier",
    "authority_key_identifier",
    "key_usage",
    "extended_key_usage",
    "policies",
    "subject_alternative_names",
    "issuer_alternative_names",
    "info_access",
    "subject_info_access",
    "policy_mappings",
]


@table(
    "curl_certificate",
    "The TLS certificate a server presents (connects, reads it, does not verify it).",
    [
        Column("hostname", TEXT, "Host to connect to, with an optional :port (default 443).", required=True),
        *[Column(c, TEXT, f"Certificate {c.replace('_', ' ')}.") for c in _CERT_TEXT],
        Column("version", INTEGER, "X.509 version (3)."),
        Column("signature_algorithm", TEXT, "Signature algorithm, OpenSSL's short name."),
        Column("signature", TEXT, "Signature bytes as colon-separated hex."),
        *[Column(c, TEXT, f"The {c.replace('_', ' ')} extension as OpenSSL prints it.") for c in _CERT_EXTENSIONS],
        Column("has_expired", INTEGER, "1 when the certificate is past its end of validity."),
        Column("basic_constraint", TEXT, "The basic constraints extension as OpenSSL prints it."),
        Column("name_constraints", TEXT, "The name constraints extension."),
        Column("policy_constraints", TEXT, "The policy constraints extension."),
        Column("dump_certificate", INTEGER, "Set to 1 to fill pem.", hidden=True, additional=True),
        Column("timeout", INTEGER, "Seconds to wait for the server (default 4).", hidden=True, additional=True),
        Column("pem", TEXT, "The certificate in PEM, when dump_certificate = 1."),
    ],
    examples=(
        "SELECT common_name, issuer_common_name, valid_to, has_expired FROM curl_certificate WHERE hostname = 'localhost:8443'",
    ),
    cost=1,
)
def gen_curl_certificate(ctx):
    dump = 1 in (ctx.eq("dump_certificate") or ())
    timeouts = [t for t in ctx.eq("timeout") or () if isinstance(t, int) and t > 0]
    timeout = timeouts[0] if timeouts else CERT_TIMEOUT
    for hostname in [h for h in ctx.eq("hostname") or () if isinstance(h, str)]:
        try:
            der = webclient.peer_certificate(hostname, timeout)
            row = tlscert.certificate_columns(der)
        except (OSError, ValueError) as err:
            optional.note_once(f"curl_certificate: {hostname}: {err}")
            continue
        yield {
            **row,
            "hostname": hostname,
            "dump_certificate": int(dump),
            "timeout": timeout,
            "pem": tlscert.pem(der) if dump else None,
        }


# --- prometheus_metrics --------------------------------------------------------------------


@dataclass
class PrometheusTargets:
    """osquery's `prometheus_targets` config: URLs scraped when a query names none."""

    urls: tuple[str, ...] = ()
    timeout: float = 1.0


PROMETHEUS = PrometheusTargets()


def configure_prometheus(urls, timeout: float = 1.0) -> None:
    """Set the targets from the `[prometheus_targets]` config section."""
    PROMETHEUS.urls = tuple(urls)
    PROMETHEUS.timeout = timeout


@table(
    "prometheus_metrics",
    "Samples scraped from Prometheus endpoints: `WHERE target_name = URL`, or the [prometheus_targets] URLs.",
    [
        Column("target_name", TEXT, "URL of the scraped endpoint; `target_name = URL` scrapes that one.", index=True),
        Column("metric_name", TEXT, "Sample name with its labels, as the exposition format writes it."),
        Column("metric_value", DOUBLE, "Sample value."),
        Column("timestamp_ms", BIGINT, "When the target was scraped, unix milliseconds."),
    ],
    examples=(
        "SELECT metric_name, metric_value FROM prometheus_metrics WHERE target_name = 'http://127.0.0.1:9100/metrics'",
    ),
    cost=1,
)
def gen_prometheus_metrics(ctx):
    named = ctx.eq("target_name")
    targets = [t for t in named if isinstance(t, str)] if named is not None else list(PROMETHEUS.urls)
    for target in targets:
        try:
            status, body = webclient.http_get(target, {"User-Agent": USER_AGENT}, PROMETHEUS.timeout)
        except (OSError, ValueError) as err:
            optional.note_once(f"prometheus_metrics: {target}: {err}")
            continue
        if status != 200:
            optional.note_once(f"prometheus_metrics: {target}: HTTP {status}")
            continue
        try:
            yield from webclient.metric_rows(target, body.decode("utf-8", "replace"), int(time.time() * 1000))
        except ValueError as err:  # not the text exposition format
            optional.note_once(f"prometheus_metrics: {target}: {err}")
