"""file_events from inotify, through watchdog's inotify machinery.

Watched paths use osquery's patterns: ``%`` matches within one path level and
``%%`` everything below, so ``/etc/%%`` watches /etc recursively and
``/srv/www/%`` only the entries directly in /srv/www. A literal directory
watches its entries (like ``dir/%``); a literal file watches its parent and
keeps that one name, so an editor's replace-by-rename is still seen.

watchdog's inotify emitter is adjusted in :mod:`.file_inotify`. Rows are appended from the emitter threads; the asyncio task only re-checks
paths that are missing and stops everything when cancelled.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import stat
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from watchdog.observers.api import ObservedWatch

from ..config.options import SourceOptions, option, positive_int, string_list, subset_of
from ..text import decode_path, encode_path
from .base import Source, SourceUnavailable
from .file_inotify import Observer
from .file_patterns import (
    Excludes,
    Watch,
    expand_base,
    hash_file,
    minimal_roots,
    pattern_regex,
    plan,
    stat_columns,
    watch_limit_message,
)

RETRY_INTERVAL = 2.0  # seconds between looks for watched paths that do not exist (yet)

# A directory made with its parents (mkdir -p) is watched both by the create event and the walk
# after it; watchdog warns on the second, harmless add, and re-adding is what keeps it correct.
warnings.filterwarnings("ignore", r"Callback with id .* already exists", RuntimeWarning)


# -- the source ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileOptions(SourceOptions):
    paths: list = option([], string_list, doc="osquery-style patterns: % one level, %% recursive.")
    exclude: list = option([], string_list, doc="Paths (and what lies under them) left out.")
    hash: list = option([], subset_of("md5", "sha1", "sha256"), doc="Hashes computed for created and written files.")
    hash_max_bytes: int = option(50_000_000, positive_int, doc="Larger files are not hashed.")


class FileSource(Source):
    """Fills file_events. Options: paths, exclude, hash, hash_max_bytes (see conf/streamq.toml).

    With hashing on, CREATED, MOVED_TO and the UPDATED of a close after writing
    are hashed in a thread pool, and a row waits for its hash before it is
    appended; later rows of the same path wait behind it, so each file's rows
    stay in order (other files' rows may pass). The UPDATED rows of each write
    (IN_MODIFY) are not hashed (hashed 0): the content is still changing.
    """

    name = "file"
    kind = "inotify"
    Options = FileOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A source built on this one (yara) may have no hashing options.
        self.algorithms: list[str] = list(getattr(self.options, "hash", ()))
        self.max_bytes: int = getattr(self.options, "hash_max_bytes", 0)
        self.excluded = Excludes(list(self.options.exclude))
        self.watches: list[Watch] = []
        self.ready = threading.Event()  # set once the first watches are in place
        self._observer: Observer | None = None
        self._scheduled: dict[tuple[str, bool], ObservedWatch] = {}
        self._gone: set[str] = set()  # watch roots deleted under us, re-added when they return
        self._missing: set[str] = set()
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._pending: dict[str, collections.deque] = {}
        self._hasher: ThreadPoolExecutor | None = None
        self._rescans: set[bytes] = set()
        self._last_event = time.time()
        self._limit_hit = False

    @classmethod
    def patterns(cls, options: Any) -> list[str]:
        """The osquery-style patterns ``options`` asks to watch."""
        return list(options.paths)

    @classmethod
    def warnings(cls, options: Any) -> list[str]:
        out = []
        for pattern in cls.patterns(options):
            try:
                watch = plan(pattern)
            except ValueError:
                continue  # reported as the source's error when it starts
            if not any(os.path.isdir(encode_path(d)) for d in expand_base(watch.base)):
                out.append(f"watch path {pattern!r}: {watch.base} does not exist (yet); watched once it appears")
        return out

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        patterns = self.patterns(self.options)
        if not patterns:
            raise SourceUnavailable(f"{self.table}: no paths to watch (set paths in [sources.{self.name}])")
        for pattern in patterns:
            try:
                self.watches.append(plan(pattern))
            except ValueError as err:
                self.status.error(str(err))
        if self.algorithms:
            self._hasher = ThreadPoolExecutor(2, thread_name_prefix="streamq-hash")
        self._observer = Observer(self)
        self._observer.start()
        try:
            await asyncio.to_thread(self._sync_watches, False)
            if not self._scheduled and self._limit_hit:
                raise SourceUnavailable(self.status.last_error or "file_events: nothing could be watched")
            self.status.mode = f"inotify, {len(self._scheduled)} watch root(s)"
            self.ready.set()
            while True:
                await asyncio.sleep(RETRY_INTERVAL)
                await asyncio.to_thread(self._sync_watches, True)
        finally:
            observer, self._observer = self._observer, None
            await asyncio.to_thread(_stop_observer, observer)
            if self._hasher is not None:
                self._hasher.shutdown(wait=False, cancel_futures=True)

    def _roots(self) -> set[tuple[str, bool]]:
        roots = set()
        for w in self.watches:
            for d in expand_base(w.base):
                roots.add((d, w.recursive))
        return roots

    def _sync_watches(self, later: bool) -> None:
        """Schedule the roots not watched yet; ``later``: report what they already hold."""
        observer = self._observer
        if observer is None:
            return
        for text in list(self._gone):
            self._gone.discard(text)
            for key in [k for k in self._scheduled if k[0] == text]:
                try:
                    observer.unschedule(self._scheduled.pop(key))
                except KeyError:
                    pass
        for key in minimal_roots(self._roots()):
            if key in self._scheduled:
                continue
            text, recursive = key
            raw = encode_path(text)
            if not os.path.isdir(raw):
                if text not in self._missing:  # looked for again every RETRY_INTERVAL; counted once
                    self._missing.add(text)
                    self.status.error(f"{text} does not exist (yet); watched once it appears")
                continue
            self._missing.discard(text)
            try:
                self._scheduled[key] = observer.schedule(None, os.fsdecode(raw), recursive=recursive)  # type: ignore[arg-type]
            except OSError as err:
                if text not in self._failed:  # retried every RETRY_INTERVAL; counted once
                    self._failed.add(text)
                    self.watch_failed(raw, err)
                continue
            self._failed.discard(text)
            if later:  # it appeared after start: what it holds was created unseen
                self._rescan(raw, recursive, since=None, action="CREATED")

    # -- called from watchdog's threads ---------------------------------------------------------

    def watch_failed(self, path: bytes, err: OSError) -> None:
        text = decode_path(path)
        if err.errno == errno.ENOSPC:
            self._limit_hit = True
            self.status.error(watch_limit_message(text))
        elif err.errno == errno.ENOENT:
            return  # vanished while we walked the tree; its parent's DELETED row says so
        else:
            self.status.error(f"cannot watch {text}: {err.strerror or err}")
            self._limit_hit = self._limit_hit or err.errno in (errno.EMFILE, errno.EACCES)

    def overflowed(self, root: bytes) -> None:
        """The kernel's queue overflowed: count it once per burst and rescan the roots after."""
        with self._lock:
            first = not self._rescans
            self._rescans.add(root)
        if first:
            self.status.overflows += 1
            since = self._last_event - 1.0
            threading.Thread(target=self._rescan_pending, args=(since,), name="streamq-rescan", daemon=True).start()

    def _rescan_pending(self, since: float) -> None:
        time.sleep(0.05)  # let every group of this overflow report its root
        with self._lock:
            roots, self._rescans = self._rescans, set()
        for root in sorted(roots):
            self._rescan(root, self._is_recursive(root), since=since, action="UPDATED", marker=True)

    def _is_recursive(self, root: bytes) -> bool:
        text = decode_path(root)
        return any(r for (d, r) in self._scheduled if d == text)

    def _rescan(self, root: bytes, recursive: bool, *, since: float | None, action: str, marker: bool = False) -> None:
        """Report what ``root`` holds: rows for matching entries changed at or after ``since``.

        After an overflow a RESCAN row comes first: events (deletions too) were
        lost there; the UPDATED rows that follow give the current state of every
        file whose status changed since the last event we did see.
        """
        try:
            if marker:
                self._rescan_marker(root)
            for path in _walk(root, recursive):
                text = decode_path(path)
                category = self._category(text)
                if category is None:
                    continue
                columns, st = stat_columns(path)
                if st is None or (since is not None and st.st_ctime < since):
                    continue
                row = {"target_path": text, "category": category, "action": action, "transaction_id": 0}
                row.update(columns)
                self._submit(row, path, hash_it=stat.S_ISREG(st.st_mode))
        except Exception as err:  # a thread's failure must show in status, not vanish
            self.status.error(f"rescan of {decode_path(root)} failed: {err}")

    def _rescan_marker(self, root: bytes) -> None:
        text = decode_path(root)
        row = {"target_path": text, "category": self._category_of_root(text), "action": "RESCAN"}
        row["transaction_id"] = 0
        row.update(stat_columns(root)[0])
        self.ring.append(row)

    def _category(self, text: str) -> str | None:
        if self.excluded(text):
            return None
        for w in self.watches:
            if w.regex.fullmatch(text):
                return w.pattern
        return None

    def _category_of_root(self, text: str) -> str | None:
        return next((w.pattern for w in self.watches if pattern_regex(w.base).fullmatch(text)), None)

    def on_inotify(self, ev: Any, path: bytes, watch: ObservedWatch) -> None:
        """One raw inotify event, in an emitter thread; never raises."""
        try:
            self._on_inotify(ev, path, watch)
        except Exception as err:
            self.status.error(f"{type(err).__name__} handling {decode_path(path)}: {err}")

    def _on_inotify(self, ev: Any, path: bytes, watch: ObservedWatch) -> None:
        self._last_event = time.time()
        if ev.is_delete_self:
            if path == os.fsencode(watch.path):
                self._gone.add(decode_path(path))  # re-added by the retry loop if it comes back
            return
        action, hash_it = _action(ev)
        if action is None:
            return
        text = decode_path(path)
        category = self._category(text)
        if category is None:
            return
        row = {"target_path": text, "category": category, "action": action}
        row["transaction_id"] = ev.cookie if ev.is_move else 0
        st = None
        if action not in ("DELETED", "MOVED_FROM"):
            columns, st = stat_columns(path)
            row.update(columns)
        self._submit(row, path, hash_it=hash_it and st is not None and stat.S_ISREG(st.st_mode))

    # -- appending, in order per file ------------------------------------------------------------

    def _submit(self, row: dict, path: bytes, *, hash_it: bool) -> None:
        if self._hasher is None:
            row["hashed"] = 0
            self.ring.append(row)
            return
        key = row["target_path"]
        too_big = hash_it and (row.get("size") or 0) > self.max_bytes
        hash_it = hash_it and not too_big
        with self._lock:
            queue = self._pending.get(key)
            if too_big:
                row["hashed"] = -1  # no need to read it to know
            if queue is None and not hash_it:
                row.setdefault("hashed", 0)
                self.ring.append(row)
                return
            if queue is None:
                queue = self._pending[key] = collections.deque()
                self._hasher.submit(self._drain, key)
            queue.append((row, path, bool(hash_it)))

    def _drain(self, key: str) -> None:
        """Worker: hash and append the queued rows of one path, in order."""
        while True:
            with self._lock:
                row, path, hash_it = self._pending[key][0]
            try:
                if hash_it:
                    row.update(hash_file(path, self.algorithms, self.max_bytes))
            except Exception as err:
                row["hashed"] = -1
                self.status.error(f"hashing {key}: {err}")
            row.setdefault("hashed", 0)
            with self._lock:
                self.ring.append(row)
                queue = self._pending[key]
                queue.popleft()
                if not queue:
                    del self._pending[key]
                    return


def _action(ev: Any) -> tuple[str | None, bool]:
    """osquery's action for an inotify event, and whether its content is worth hashing."""
    if ev.is_create:
        return "CREATED", True
    if ev.is_moved_from:
        return "MOVED_FROM", False
    if ev.is_moved_to:
        return "MOVED_TO", True
    if ev.is_delete:
        return "DELETED", False
    if ev.is_attrib:
        return "ATTRIBUTES_MODIFIED", False
    if ev.is_modify:
        return "UPDATED", False
    if ev.is_close_write:
        return "UPDATED", True
    return None, False


def _walk(root: bytes, recursive: bool):
    """Every path below ``root`` (one level unless ``recursive``), never through symlinks."""
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = [(e.path, e.is_dir(follow_symlinks=False)) for e in it]
        except OSError:
            continue
        for path, is_dir in entries:
            yield path
            if recursive and is_dir:
                stack.append(path)


def _stop_observer(observer: Observer | None) -> None:
    if observer is not None:
        observer.stop()
        observer.join(timeout=5)
