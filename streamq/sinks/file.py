"""JSON-lines file sink: append-only, never a torn line, rotated by size.

The file is opened with O_APPEND and every write() holds only whole lines
(a batch joined by newlines), so a reader or a crash never sees half a line.
fsync policy: "interval" (default: at most once per ``fsync_interval``),
"always" (after every batch) or "never" (leave it to the kernel).

Exactly once across a crash: the outbox deletes a batch only after it was
written, so a kill between the write and the delete leaves the file holding the
first batch still pending. The first batch after start is therefore skipped when
the file already ends with it (lines carry the query name and counter, so two
different batches never have the same bytes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ..config.options import STRING, SinkOptions, duration, non_negative_int, one_of, option
from .base import Sink


@dataclass(frozen=True)
class FileSinkOptions(SinkOptions):
    path: str = option("streamq-results.jsonl", STRING)
    rotate_bytes: int = option(10_000_000, non_negative_int, doc="Rotate past this size; 0 never.")
    keep: int = option(5, non_negative_int, doc="Rotated files kept (path.1 ... path.N).")
    fsync: str = option("interval", one_of("interval", "always", "never"))
    fsync_interval: float = option(1.0, duration)


class FileSink(Sink):
    type = "file"
    Options = FileSinkOptions

    @classmethod
    def preflight(cls, options: FileSinkOptions) -> list[tuple[str, str]]:
        problem = writable_file_problem(os.path.abspath(options.path))
        return [("path", problem)] if problem else []

    async def start(self) -> None:
        options = self.options
        self.path = os.path.abspath(options.path)
        self.rotate_bytes = options.rotate_bytes
        self.keep = options.keep
        self.fsync = options.fsync
        self.fsync_interval = options.fsync_interval
        self._fd = -1
        self._size = 0
        self._last_sync = 0.0
        self._dirty = False
        self._check_tail = True
        self._open()

    def _open(self) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        if self.keep > 0:
            for i in range(self.keep - 1, 0, -1):
                older = f"{self.path}.{i}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self._open()

    async def send(self, query: str, lines: list[bytes]) -> None:
        self.write(lines)

    def write(self, lines: list[bytes]) -> None:
        if self._fd < 0:
            raise OSError("file sink is closed")
        data = b"\n".join(lines) + b"\n"
        if self._check_tail:
            self._check_tail = False
            if self._ends_with(data):
                return
        if self.rotate_bytes and self._size and self._size + len(data) > self.rotate_bytes:
            self._rotate()
        view = memoryview(data)
        while view:  # a regular file takes it all at once; the loop is for the rare short write
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)
        self._dirty = True
        if self.fsync == "always" or (
            self.fsync == "interval" and time.monotonic() - self._last_sync >= self.fsync_interval
        ):
            self._sync()

    def reopen(self) -> None:
        """Write to a new file at ``path`` from now on: logrotate moved the old one (SIGUSR1)."""
        if self._fd >= 0:
            self._sync()
            os.close(self._fd)
            self._fd = -1
            self._open()

    def _ends_with(self, data: bytes) -> bool:
        if self._size < len(data):
            return False
        with open(self.path, "rb") as f:
            f.seek(self._size - len(data))
            return f.read(len(data)) == data

    def _sync(self) -> None:
        if self._dirty and self._fd >= 0:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    async def flush(self) -> None:
        if self.fsync != "never":
            self._sync()

    async def close(self) -> None:
        if self._fd >= 0:
            self._sync()
            os.close(self._fd)
            self._fd = -1


def writable_file_problem(path: str) -> str | None:
    """Why a file at ``path`` could not be created or appended to (its directories made as needed)."""
    if os.path.isdir(path):
        return f"{path} is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"{parent} is not a directory"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"cannot create files in {parent}"
