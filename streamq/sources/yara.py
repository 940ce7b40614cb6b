"""yara_events: watched files scanned with YARA rules when they are written or moved in.

osquery's yara_events in streamq's shape. osquery names categories of paths
in its top-level ``file_paths`` and, in its ``yara`` section, the signature
groups to scan each category with; here both live in ``[sources.yara]``::

    [sources.yara]
    paths = { uploads = ["/srv/upload/%%"] }          # category -> patterns (osquery's file_paths)
    file_paths = { uploads = ["base"] }               # category -> signature groups (yara.file_paths)
    signatures = { base = ["/etc/streamq/rules.yar"] } # group -> rule files; default: [yara] signatures

The file source's inotify machinery does the watching. A file is scanned once
its content is whole: when a writer closes it (UPDATED), when it is moved in
(MOVED_TO), and when a rescan finds it (a root that appeared late: CREATED; a
queue overflow: UPDATED). Scans run in one worker thread, so a large file
delays only later scans, never the inotify reader or the event loop. As in
osquery, a row is added only for a file that matched; a file that cannot be
read (gone, no permission, scan timeout) is counted as skipped.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..config.options import SourceOptions, option, positive_int, string_list
from ..host import yarascan
from .base import SourceUnavailable
from .file import FileSource


def named_lists(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ValueError('expected a table like { name = ["..."] }')
    return {str(name): string_list(items) for name, items in value.items()}


@dataclass(frozen=True)
class YaraSourceOptions(SourceOptions):
    paths: dict = option({}, named_lists, doc="Category -> osquery-style patterns (% one level, %% recursive).")
    file_paths: dict = option({}, named_lists, doc="Category -> signature groups its files are scanned with.")
    signatures: dict = option({}, named_lists, doc="Group -> rule files; empty: the [yara] section's groups.")
    exclude: list = option([], string_list, doc="Paths (and what lies under them) left out.")
    max_pending: int = option(10_000, positive_int, doc="Files waiting for a scan; more are skipped and counted.")


class YaraSource(FileSource):
    """Fills yara_events. Options: paths, file_paths, signatures, exclude, max_pending (see conf/streamq.toml)."""

    name = "yara"
    kind = "inotify"
    Options = YaraSourceOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._categories: dict[str, str] = {}  # pattern -> its (first) category
        for category in self.options.file_paths:
            for pattern in self.options.paths.get(category, ()):
                self._categories.setdefault(pattern, category)
        self._rules: dict[str, Any] = {}  # category -> compiled rules
        self._scanner: ThreadPoolExecutor | None = None
        self._pending = 0
        self._pending_lock = threading.Lock()

    @classmethod
    def patterns(cls, options: Any) -> list[str]:
        """The patterns of every category that has signature groups, once each."""
        out: list[str] = []
        for category in options.file_paths:
            out += [p for p in options.paths.get(category, ()) if p not in out]
        return out

    @classmethod
    def warnings(cls, options: Any) -> list[str]:
        out = super().warnings(options)
        for category in options.file_paths:
            if category not in options.paths:
                out.append(f"file_paths category {category!r} has no paths in [sources.yara] paths")
            if options.signatures:  # else the [yara] section's groups, known when the source starts
                for group in options.file_paths[category]:
                    if group not in options.signatures:
                        out.append(f"file_paths category {category!r}: no signature group {group!r}")
        return out

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        if not self.patterns(self.options):
            raise SourceUnavailable(f"{self.table}: nothing to scan (set paths and file_paths in [sources.yara])")
        if not yarascan.available():
            raise SourceUnavailable(f"{self.table}: yara-python is not installed (pip install yara-python)")
        self._rules = await asyncio.to_thread(self._compile)
        if not self._rules:
            raise SourceUnavailable(f"{self.table}: no signature group compiled ({self.status.last_error})")
        self._pending = 0  # a restart after a failure: scans the old worker dropped are not waiting
        self._scanner = ThreadPoolExecutor(1, thread_name_prefix="streamq-yara")
        try:
            await super().run()
        finally:
            self._scanner.shutdown(wait=False, cancel_futures=True)

    def _compile(self) -> dict[str, Any]:
        """category -> the rules of its groups, compiled together; what fails is reported and left out."""
        groups = self.options.signatures or yarascan.SIGNATURE_GROUPS
        out = {}
        for category, names in self.options.file_paths.items():
            files: list[str] = []
            for group in names:
                if group not in groups:
                    self.status.error(f"category {category!r}: no signature group {group!r}")
                files += [f for f in groups.get(group, ()) if f not in files]
            if not files:
                continue
            try:
                out[category] = yarascan.group_rules(files)
            except (OSError, yarascan.yara_error()) as err:
                self.status.error(f"category {category!r}: cannot compile its rules: {err}")
        return out

    # -- called from watchdog's threads ---------------------------------------------------------

    def on_inotify(self, ev: Any, path: bytes, watch: Any) -> None:
        if ev.is_create:
            return  # a writer's close (UPDATED) follows with the whole content; scanning now reads half a file
        super().on_inotify(ev, path, watch)

    def _category(self, text: str) -> str | None:
        pattern = super()._category(text)
        return None if pattern is None else self._categories.get(pattern)

    def _rescan_marker(self, root: bytes) -> None:
        pass  # the overflow is counted in status; the rescan's rows scan what changed

    def _submit(self, row: dict, path: bytes, *, hash_it: bool) -> None:
        """``hash_it``: a regular file whose content is whole. Queue it for a scan."""
        if not hash_it or row["category"] not in self._rules or self._scanner is None:
            return
        with self._pending_lock:
            if self._pending >= self.options.max_pending:
                self.status.skipped += 1  # scans are falling behind: drop, counted
                return
            self._pending += 1
        try:
            self._scanner.submit(self._scan, row, path)
        except RuntimeError:  # shut down while the emitter still ran
            with self._pending_lock:
                self._pending -= 1

    def _scan(self, row: dict, path: bytes) -> None:
        """Worker: scan one file and append its row if a rule matched."""
        try:
            matches = yarascan.scan_file(self._rules[row["category"]], path)
            if matches is None:
                with self._pending_lock:
                    self.status.skipped += 1  # vanished, unreadable, or the scan timed out
            elif matches:
                self.ring.append(
                    {
                        "target_path": row["target_path"],
                        "category": row["category"],
                        "action": row["action"],
                        **yarascan.match_columns(matches),
                    }
                )
        except Exception as err:  # a worker's failure must show in status, not vanish
            self.status.error(f"scanning {row['target_path']}: {err}")
        finally:
            with self._pending_lock:
                self._pending -= 1
