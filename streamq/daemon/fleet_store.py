"""What a daemon knows of each fleet fragment, and the file that keeps it across restarts.

The file (``<state path without .db>.fleet.json`` beside the state database) holds, per
fragment name, the newest signed envelope that was not refused and the newest version
whose signature was good. A daemon restarted while the broker is away runs from it,
and still refuses a replay of any version older than one it has seen. Envelopes are
checked again when read (signature, fields), so a file edited by hand is refused too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .fleet_protocol import FleetError, canonical

log = logging.getLogger("streamq.daemon.fleet_config")


def digest(body: dict[str, Any]) -> str:
    """A fragment envelope's identity: the SHA-256 of its signed bytes."""
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass
class FragmentState:
    """One fragment name as this host knows it: a row of streamq_fleet_config."""

    name: str
    latest: dict | None = None  # the newest envelope with a good signature
    good: dict | None = None  # the newest one not refused: what runs while the newest is refused
    floor: int = 0  # the newest version with a good signature: older ones are replays
    floor_digest: str = ""  # ... and its content: the same version with other content is refused
    state: str = "pending"  # applied | skipped | refused | withdrawn | pending: the newest version's fate
    reason: str | None = None  # why skipped, pending or refused
    applied: int | None = None  # the version in force, if any
    queries: int = 0  # queries it runs here now
    received: int = 0  # messages on its topic
    refused: int = 0  # messages and versions refused
    last_error: str | None = None
    changed: int = 0  # unix seconds of the last change of state

    @property
    def version(self) -> int | None:
        return self.latest["version"] if self.latest else None

    @property
    def label(self) -> str | None:
        return (self.latest or {}).get("label")

    @property
    def hosts(self) -> list[str]:
        return list((self.latest or {}).get("hosts") or [])

    def settle(self, state: str, reason: str | None) -> None:
        if (state, reason) != (self.state, self.reason):
            self.state, self.reason, self.changed = state, reason, int(time.time())
        if state == "refused" and reason:
            self.last_error = reason

    def report(self) -> dict[str, Any]:
        """This fragment in the host's retained report (docs/fleet.md)."""
        out: dict[str, Any] = {"version": self.version, "state": self.state, "applied": self.applied}
        if self.reason:
            out["reason"] = self.reason
        if self.refused:
            out |= {"refused": self.refused, "last_error": self.last_error}
        return out


def store_path(state_path: str) -> str:
    return os.path.splitext(os.path.abspath(state_path))[0] + ".fleet.json"


def load_states(path: str, verify: Callable[[str, Any], None]) -> dict[str, FragmentState]:
    """The fragments kept at ``path``; ``verify(name, envelope)`` raises FleetError for one to leave out."""
    states = {}
    for name, entry in load_store(path).items():
        envelope = entry.get("envelope")
        try:
            verify(name, envelope)
        except FleetError as err:
            log.error("fleet config: stored fragment %r refused: %s", name, err)
            continue
        st = states[name] = FragmentState(name, latest=envelope, good=envelope)
        floor = entry.get("floor")
        if isinstance(floor, int) and floor > envelope["version"] and isinstance(entry.get("digest"), str):
            st.floor, st.floor_digest = floor, entry["digest"]  # a newer version was seen, and refused
        else:
            st.floor, st.floor_digest = envelope["version"], digest(envelope)
    return states


def load_store(path: str) -> dict[str, dict[str, Any]]:
    """name -> {"envelope", "floor", "digest"}; an unreadable file is logged and read as empty."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.error("fleet config: cannot read %s (%s): starting without the fleet's fragments", path, err)
        return {}
    fragments = data.get("fragments") if isinstance(data, dict) else None
    return {n: e for n, e in fragments.items() if isinstance(e, dict)} if isinstance(fragments, dict) else {}


def save_store(path: str, states: dict[str, FragmentState]) -> None:
    """Write the store atomically (a new file, fsync, rename): a crash leaves the old one or the new one."""
    data = {
        "v": 1,
        "fragments": {
            name: {"envelope": st.good, "floor": st.floor, "digest": st.floor_digest}
            for name, st in sorted(states.items())
            if st.good is not None
        },
    }
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        log.error("fleet config: cannot write %s: %s (a restart without the broker would miss changes)", path, err)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
