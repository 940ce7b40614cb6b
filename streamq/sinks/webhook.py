"""Webhook sink: result lines as JSON arrays, POSTed in order, ``batch_size`` lines a request.

* A request's body is ``[line, line, ...]`` (``Content-Type: application/json``).
  ``Idempotency-Key`` is ``<first line's id>+<count>``, the same on every retry of
  that request, so a receiver can drop a repeat. With a ``secret``,
  ``X-Streamq-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body (GitHub's form).
* 2xx: delivered. 5xx, 408, 429, a timeout or a connection error: the send raises,
  Delivery keeps the batch and retries it with jittered backoff. The requests of a
  batch that were already accepted are not sent again: the sink remembers how far
  the batch got (by its first id), so a receiver sees each line once, in order.
* Any other answer (4xx, a redirect): the receiver refuses those lines; they are
  counted (``streamq_sinks.rejected``), logged and not sent again, and the next
  requests go on.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config.options import REQUIRED, STRING, OptionError, SinkOptions, option, positive_duration, positive_int
from .base import Rejected, Sink, line_id

log = logging.getLogger("streamq.sinks.webhook")

RETRY_STATUSES = {408, 425, 429}  # with every 5xx: worth sending again


class WebhookUnavailable(ConnectionError):
    """The receiver is away or failing (5xx); the rows stay in the outbox."""


def header_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError('expected a table of header = "value" strings')
    return value


@dataclass(frozen=True)
class WebhookSinkOptions(SinkOptions):
    url: str = option(REQUIRED, STRING, doc="http:// or https:// address to POST to.")
    headers: dict = option({}, header_map, doc="Extra request headers, e.g. Authorization.")
    secret: str | None = option(None, STRING, doc="HMAC-SHA256 key for the signature header.")
    secret_file: str | None = option(None, STRING, doc="Read the HMAC key from this file.")
    signature_header: str = option("X-Streamq-Signature", STRING)
    batch_size: int = option(500, positive_int, doc="Result lines per request at most.")
    timeout: float = option(10.0, positive_duration, doc="Per request, connect to last byte.")


def chunk_keys(lines: list[bytes], size: int) -> list[str]:
    """``<first line's id>+<count>`` for each request of ``size`` lines (only the first line of
    each request is parsed)."""
    starts = range(0, len(lines), size)
    return [f"{line_id(lines[start])}+{min(size, len(lines) - start)}" for start in starts]


class WebhookSink(Sink):
    type = "webhook"
    Options = WebhookSinkOptions
    coalesce = True  # runs of one query share requests up to batch_size lines

    @classmethod
    def validate(cls, options: WebhookSinkOptions) -> None:
        try:
            url = urlsplit(options.url)
            url.port  # noqa: B018  (raises on a port that is not a number)
        except ValueError as err:
            raise OptionError("url", f"not a URL: {err}") from None
        if url.scheme not in ("http", "https") or not url.hostname:
            raise OptionError("url", f"expected http://host/path or https://host/path, got {options.url!r}")
        if options.secret and options.secret_file:
            raise OptionError("secret", "set secret or secret_file, not both")
        if options.secret_file:
            cls._read_secret(options.secret_file)

    @staticmethod
    def _read_secret(path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                secret = f.read().strip()
        except OSError as err:
            raise OptionError("secret_file", f"cannot read {path}: {err.strerror}") from None
        if not secret:
            raise OptionError("secret_file", f"{path} is empty")
        return secret

    async def start(self) -> None:
        import aiohttp

        o = self.options
        secret = self._read_secret(o.secret_file) if o.secret_file else (o.secret or "").encode()
        self._secret = secret or None
        self._headers = {"Content-Type": "application/json", "User-Agent": "streamq", **o.headers}
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=o.timeout))
        self._progress: tuple[str, int] | None = None  # (first id of a batch, requests of it accepted)

    async def send(self, query: str, lines: list[bytes]) -> None:
        size = self.options.batch_size
        keys = chunk_keys(lines, size)
        done = self._progress[1] if self._progress and self._progress[0] == keys[0] else 0
        refused, reason = 0, ""
        for number, start in enumerate(range(0, len(lines), size)):
            if number < done:
                continue  # accepted before the failure that made Delivery retry this batch
            chunk = lines[start : start + size]
            status, text = await self._post(chunk, keys[number])
            if status >= 500 or status in RETRY_STATUSES:
                raise WebhookUnavailable(f"{self.options.url}: HTTP {status} {text}")
            if not 200 <= status < 300:
                refused += len(chunk)
                reason = f"{self.options.url} answered HTTP {status} {text}"
            self._progress = (keys[0], number + 1)
        self._progress = None
        if refused:
            raise Rejected(refused, reason)

    async def _post(self, chunk: list[bytes], key: str) -> tuple[int, str]:
        import aiohttp

        body = b"[" + b",".join(chunk) + b"]"
        headers = {**self._headers, "Idempotency-Key": key}
        if self._secret is not None:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers[self.options.signature_header] = f"sha256={digest}"
        try:
            async with self._session.post(self.options.url, data=body, headers=headers, allow_redirects=False) as r:
                text = (await r.text(errors="replace"))[:200] if r.status >= 300 else ""
                return r.status, " ".join(text.split())
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise WebhookUnavailable(f"{self.options.url}: {err or type(err).__name__}") from err

    async def close(self) -> None:
        await self._session.close()
