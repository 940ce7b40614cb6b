"""The fleet's wire protocol (docs/fleet.md): topics, request bodies, HMAC signatures, verification.

Shared by the daemon's responder (:mod:`.fleet`) and the client (:mod:`.fleet_client`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import uuid
from typing import Any

from ..errors import StreamqError
from ..mqtt import Broker
from ..mqtt import client as mqtt_client

VERSION = 1
FLEET_TOPIC = "streamq/fleet/query"
STATUS_FILTER = "streamq/+/status"
REPLY_PREFIX = "streamq/fleet/reply/"
CONFIG_PREFIX = "streamq/fleet/config/"  # + fragment name: retained, signed fragments (docs/fleet.md)
REPORT_PREFIX = "streamq/fleet/report/"  # + host: each daemon's retained report of what it runs
ONLINE, OFFLINE = b"online", b"offline"
MAX_INFLIGHT = 16  # requests waiting for the SQL thread; past that a request gets "busy"
MAX_REQUEST = 1024 * 1024
_FIELDS = {"v": int, "id": str, "sql": str, "target": str, "ts": int, "deadline_ms": int, "max_rows": int}
_FIELDS |= {"reply_to": str, "sig": str}
_FRAGMENT_FIELDS = {"v": int, "kind": str, "name": str, "version": int, "ts": int, "op": str, "toml": str}
_FRAGMENT_FIELDS |= {"hosts": list, "label": str, "sig": str}
FRAGMENT_OPS = ("put", "delete")
_TOPIC_CHARS = frozenset("/+#\0")


class FleetError(StreamqError):
    """A fleet request was refused, or the broker could not be reached."""


def host_topic(host: str, leaf: str) -> str:
    return f"streamq/{host}/{leaf}"


def is_status_topic(topic: str) -> bool:
    """``streamq/{host}/status`` exactly (not a fragment or a report that happens to be named "status")."""
    parts = topic.split("/")
    return len(parts) == 3 and parts[0] == "streamq" and parts[2] == "status"


def topic_safe(host: str) -> bool:
    """Whether ``host`` can be one level of a topic: no '/', '+', '#', NUL; not empty, not "fleet"."""
    return bool(host) and host != "fleet" and not _TOPIC_CHARS.intersection(host)


# -- requests and their signature ----------------------------------------------------------------


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes: the request without "sig", keys sorted, no spaces, UTF-8 (docs/fleet.md)."""
    rest = {k: v for k, v in body.items() if k != "sig"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(body: dict[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def make_request(
    sql: str,
    *,
    target: str,
    reply_to: str,
    key: bytes | None,
    deadline: float | None = None,
    max_rows: int | None = None,
    rid: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A request body for ``target`` ("*" or one host), signed when ``key`` is given."""
    body: dict[str, Any] = {
        "v": VERSION,
        "id": rid or uuid.uuid4().hex,
        "sql": sql,
        "target": target,
        "ts": int(time.time() if now is None else now),
        "reply_to": reply_to,
    }
    if deadline is not None:
        body["deadline_ms"] = max(1, int(deadline * 1000))
    if max_rows is not None:
        body["max_rows"] = max_rows
    if key is not None:
        body["sig"] = signature(body, key)
    return body


class Verifier:
    """Decides whether one daemon accepts a request: fields, target, signature, age, replay."""

    def __init__(self, host: str, key: bytes | None, *, allow_unsigned: bool = False, max_age: float = 30.0) -> None:
        self.host = host
        self.key = key
        self.allow_unsigned = allow_unsigned
        self.max_age = max_age
        self._seen: dict[str, float] = {}  # request id -> when it may be forgotten

    def check(self, body: Any, topic: str, response_topic: str | None, *, now: float | None = None) -> None:
        """Return if the request may run here; raise FleetError with the reason otherwise."""
        _check_fields(body, _FIELDS, "a request")
        if body.get("v") != VERSION:
            raise FleetError(f"unsupported request version {body.get('v')!r} (this host speaks {VERSION})")
        for key in ("id", "sql", "target"):
            if not body.get(key):
                raise FleetError(f"missing {key!r}")
        for key in ("deadline_ms", "max_rows"):  # 0 or less is not "no limit": refuse it
            if key in body and body[key] <= 0:
                raise FleetError(f"{key!r} must be a positive integer")
        wanted = "*" if topic == FLEET_TOPIC else self.host
        if body["target"] != wanted:
            raise FleetError(f"request for {body['target']!r} arrived on {topic}")
        if "sig" not in body:
            if self.allow_unsigned:
                return
            raise FleetError("unsigned request refused: this host requires an HMAC-SHA256 signature")
        if self.key is None:
            return  # allow_unsigned without a key: a signature cannot be checked, and is not needed
        _check_signature(body, self.key)
        now = time.time() if now is None else now
        if "ts" not in body or abs(now - body["ts"]) > self.max_age:
            raise FleetError(f"request timestamp more than {self.max_age:g}s away from this host's clock")
        if body.get("reply_to") != response_topic:
            raise FleetError("the response topic is not the one the request was signed with")
        for rid, until in list(self._seen.items()):
            if until < now:
                del self._seen[rid]
        if body["id"] in self._seen:
            raise FleetError("replayed request (its id was seen already)")
        self._seen[body["id"]] = now + 2 * self.max_age

    def check_fragment(self, body: Any, topic: str) -> None:
        """Return if ``body`` is a well-formed fragment for ``topic``, signed with this host's key.

        Only the signature, the fields and the name are checked here; the version (no
        replay of an older one) and the target are the applying side's (streamq.daemon.fleet_config).
        Unsigned fragments are always refused: allow_unsigned covers read-only queries only.
        """
        _check_fields(body, _FRAGMENT_FIELDS, "a fragment")
        if body.get("v") != VERSION or body.get("kind") != "fragment":
            raise FleetError(f"not a version {VERSION} fragment (v={body.get('v')!r}, kind={body.get('kind')!r})")
        for key in ("name", "version", "op", "sig"):
            if key not in body:
                raise FleetError(f"missing {key!r}" + (" (fragments must be signed)" if key == "sig" else ""))
        if topic != CONFIG_PREFIX + body["name"]:
            raise FleetError(f"fragment {body['name']!r} arrived on {topic}")
        if body["version"] < 1:
            raise FleetError("'version' must be a positive integer")
        if body["op"] not in FRAGMENT_OPS or (body["op"] == "put") != ("toml" in body):
            raise FleetError("'op' is 'put' with 'toml', or 'delete' without")
        if self.key is None:
            raise FleetError("this host has no fleet key to check fragments with")
        _check_signature(body, self.key)


def _check_signature(body: dict[str, Any], key: bytes) -> None:
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a "no").
    if not hmac.compare_digest(body["sig"].encode(), signature(body, key).encode()):
        raise FleetError("bad signature")


def _check_fields(body: Any, fields: dict[str, type], what: str) -> None:
    """Known fields of the right type; lists hold non-empty strings. Floats and booleans never sign reproducibly."""
    if not isinstance(body, dict):
        raise FleetError(f"{what} is a JSON object")
    for key, value in body.items():
        kind = fields.get(key)
        if kind is None:
            raise FleetError(f"unknown field {key!r}")
        if type(value) is not kind:
            raise FleetError(f"{key!r} must be {_KIND_NAMES[kind]}")
        if kind is list and not all(isinstance(item, str) and item for item in value):
            raise FleetError(f"{key!r} must be a list of non-empty strings")


_KIND_NAMES = {int: "an integer", str: "a string", list: "a list of strings"}


def make_fragment(
    name: str,
    version: int,
    *,
    key: bytes,
    toml: str | None = None,
    hosts: list[str] | None = None,
    label: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A signed fragment: ``toml`` to put it, None to withdraw it (a signed tombstone)."""
    body: dict[str, Any] = {"v": VERSION, "kind": "fragment", "name": name, "version": version}
    body |= {"ts": int(time.time() if now is None else now), "op": "put" if toml is not None else "delete"}
    if toml is not None:
        body["toml"] = toml
    if hosts:
        body["hosts"] = list(hosts)
    if label:
        body["label"] = label
    body["sig"] = signature(body, key)
    return body


def reply_topic_allowed(topic: str) -> bool:
    """Whether a reply may go to ``topic``: under REPLY_PREFIX, one concrete topic (no wildcards)."""
    return (
        topic.startswith(REPLY_PREFIX)
        and len(topic) > len(REPLY_PREFIX)
        and not _TOPIC_CHARS.difference("/") & set(topic)
    )


def load_payload(payload: Any, what: str) -> Any:
    """A message's JSON body; FleetError when it is not bytes, is over MAX_REQUEST or is not JSON.
    ``what`` names the message in the error ("a request", "a fragment")."""
    import orjson

    if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_REQUEST:
        raise FleetError(f"{what} is a JSON object of at most {MAX_REQUEST} bytes")
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise FleetError(f"malformed JSON: {err}") from None


def dumps(obj: Any) -> bytes:
    import orjson

    return orjson.dumps(obj, default=lambda v: v.hex() if isinstance(v, bytes) else None)


def fleet_mqtt_client(aiomqtt: Any, broker: Broker, **kwargs: Any) -> Any:
    return mqtt_client(
        broker,
        protocol=aiomqtt.ProtocolVersion.V5,
        # A reply follows the PUBACK of its request: without NODELAY, Nagle holds it for the
        # broker's delayed ACK, 40-80 ms per round trip.
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        **kwargs,
    )
