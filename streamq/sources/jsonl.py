"""JSON lines from a file (followed like ``tail -F``) or stdin, one row per line.

The file is polled (every ``poll_interval``): at end of file, a path that now
names another inode means the file was rotated (the old one is read to its
end, then the new one from its start), and a size below our offset means it
was truncated (read again from 0). A line without its newline yet is held
until the rest arrives; a record is never emitted half-written. Reads happen
on a worker thread in 256 KiB chunks, so a slow disk never stalls the loop.

Where to start: a checkpoint naming the same file (inode and first bytes)
wins; otherwise ``from_start`` or, by default, the end of the file, like
``tail -F``: a daemon that starts watching a log sees what is written from
then on, as osquery's event tables only hold events since osqueryd started.
A file that appears (or replaces a rotated one) later is read from its start.
The checkpoint (``{"inode", "offset", ...}``, replaced atomically) is written
after the rows before ``offset`` were appended: a restart may repeat rows read
since the last save (at-least-once), never skip any.

A ``copytruncate`` rotation that refills the file past our offset between two
polls is caught by the file's first 64 bytes changing; if those bytes are the
same, it looks like appends (tail -F cannot tell either).
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config.options import BOOL, REQUIRED, STRING, NamedSourceOptions, duration, option, positive_int
from .base import Source, SourceUnavailable
from .records import RecordDecoder, record_layout

CHUNK = 256 * 1024
_HEAD = 64  # bytes of a file's start kept in the checkpoint, against inode reuse
_CHECKPOINT_EVERY = 1.0  # seconds between checkpoint writes while reading steadily


class LineSplitter:
    """Bytes in, complete lines out; a line growing past ``max_bytes`` is dropped up to its newline."""

    def __init__(self, max_bytes: int, on_oversize: Callable[[str], None]) -> None:
        self.max_bytes = max_bytes
        self.on_oversize = on_oversize
        self.pending = b""
        self.discarding = False  # inside a line that is being skipped

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.discarding:
            newline = chunk.find(b"\n")
            if newline < 0:
                return []
            chunk = chunk[newline + 1 :]
            self.discarding = False
        if self.pending:
            chunk = self.pending + chunk
        lines = chunk.split(b"\n")
        self.pending = lines.pop()
        if len(self.pending) > self.max_bytes:
            self.on_oversize(f"line over the {self.max_bytes}-byte limit")
            self.pending, self.discarding = b"", True
        return lines

    def finish(self) -> bytes:
        """The unterminated rest, when the input has ended for good (EOF of stdin, a rotated file)."""
        rest = self.pending
        self.reset()
        return rest

    def reset(self, *, discarding: bool = False) -> None:
        self.pending, self.discarding = b"", discarding


@dataclass
class _OpenFile:
    fd: int
    inode: int
    offset: int  # next byte to read
    head: bytes = b""  # the file's first bytes as we read them: a rewrite changes them


@dataclass(frozen=True)
class JsonlOptions(NamedSourceOptions):
    path: str = option(REQUIRED, STRING, doc="The file to follow, or - for stdin.")
    checkpoint: str | None = option(None, STRING, doc="Where the read position is kept across restarts.")
    max_line_bytes: int = option(1_048_576, positive_int, doc="Longer lines are counted and skipped.")
    from_start: bool = option(False, BOOL, doc="Read an existing file from its start, not its end.")
    poll_interval: float = option(0.1, duration, doc="Between checks for new data, rotation and truncation.")
    time: str | None = option(
        None, STRING, doc="The field holding each record's event time (unix seconds or RFC 3339)."
    )


class JsonlSource(Source):
    """Rows from JSON lines: a followed file, or stdin when ``path`` is ``-``."""

    name = "jsonl"
    kind = "stream"
    Options = JsonlOptions

    def __init__(self, table: str, options: JsonlOptions, rings) -> None:
        super().__init__(table, options, rings)
        options = self.options
        self.path: str = options.path
        self.poll_interval: float = options.poll_interval
        self.from_start: bool = options.from_start
        checkpoint = options.checkpoint
        self.checkpoint = Path(checkpoint) if checkpoint and self.path != "-" else None
        max_bytes = options.max_line_bytes
        # Tuples in the table's column order: the event table reads them a third faster than dicts.
        columns, time_field = record_layout(table, options.columns, options.time)
        self.decoder = RecordDecoder(columns, self.status, max_bytes=max_bytes, tuples=True, time_field=time_field)
        self.lines = LineSplitter(max_bytes, self.decoder.skip)
        self._saved: tuple[int, int] | None = None
        self._saved_at = 0.0
        # (last eid appended, offset after its line) at each delivered batch of the open file:
        # the checkpoint goes to the newest one every holding reader has consumed (ring.held()).
        self._bounds: deque[tuple[int, int]] = deque()
        self._resumed = self._resume_eids()

    async def deliver(self, rows: list) -> None:
        """Hand decoded rows on: into the ring here; `streamq tail` overrides it."""
        append = self.ring.append
        for row in rows:
            append(row)

    async def run(self) -> None:
        self.lines.reset()
        if self.path == "-":
            self.status.mode = "reading stdin"
            await self._read_stream(sys.stdin.fileno())
            self.status.mode = "stdin ended"
        elif _is_stream(self.path):  # a named pipe or a device: read to its end, nothing to rotate
            self.status.mode = f"reading {self.path} (not a regular file)"
            # O_RDWR on a FIFO: no wait for a writer at open, no EOF when one writer leaves.
            access = os.O_RDWR if stat.S_ISFIFO(os.stat(self.path).st_mode) else os.O_RDONLY
            fd = os.open(self.path, access | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                await self._read_stream(fd)
            finally:
                os.close(fd)
            self.status.mode = f"{self.path} ended"
        else:
            await self._follow()

    # -- records ------------------------------------------------------------------------------

    async def deliver_lines(self, lines: list[bytes]) -> None:
        """Complete lines read: decoded into rows here; `streamq tail` takes the lines as they are."""
        rows = self.decoder.decode_lines(lines)
        if rows:
            await self.deliver(rows)

    async def _consume(self, chunk: bytes, current: _OpenFile | None = None) -> None:
        lines = self.lines.feed(chunk)
        if lines:
            await self.deliver_lines(lines)
            if current is not None and self.checkpoint is not None:  # only _checkpoint trims them
                self._bounds.append((self.ring.last_eid, current.offset - len(self.lines.pending)))

    async def _finish(self) -> None:
        # The input ended without a last newline: a complete record there is still a record.
        rest = self.lines.finish()
        if rest.strip():
            await self.deliver_lines([rest])

    # -- pipes and stdin ----------------------------------------------------------------------

    async def _read_stream(self, fd: int) -> None:
        """Read ``fd`` to its end without blocking the loop (a pipe, a tty or a regular file)."""
        was_blocking = os.get_blocking(fd)
        os.set_blocking(fd, False)
        try:
            while True:
                try:
                    chunk = os.read(fd, CHUNK)
                except BlockingIOError:
                    await _readable(fd)
                    continue
                if not chunk:
                    break
                await self._consume(chunk)
            await self._finish()
        finally:
            os.set_blocking(fd, was_blocking)

    # -- a followed file ----------------------------------------------------------------------

    async def _follow(self) -> None:
        current = await self._open(first=True)
        try:
            while True:
                if current is None:
                    self.status.mode = f"waiting for {self.path} to appear"
                    await asyncio.sleep(self.poll_interval)
                    current = await self._open(first=False)
                    continue
                if await self._read_chunk(current):
                    self._checkpoint(current, due=False)
                    continue
                self._checkpoint(current, due=True)  # at the end of the file: a good moment to save
                replaced = await self._rotated_or_truncated(current)
                if replaced is not current:
                    current = replaced
                    continue
                await asyncio.sleep(self.poll_interval)
        finally:
            if current is not None:
                self._checkpoint(current, due=True)
                os.close(current.fd)

    async def _open(self, *, first: bool) -> _OpenFile | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise SourceUnavailable(f"{self.path} is a directory, not a file of JSON lines")
            offset = self._start_offset(fd, st, first=first)
        except BaseException:
            os.close(fd)
            raise
        self.status.mode = f"following {self.path} (inode {st.st_ino})"
        self._bounds = deque([(self.ring.last_eid, offset)])
        return _OpenFile(fd, st.st_ino, offset)

    def _start_offset(self, fd: int, st: os.stat_result, *, first: bool) -> int:
        self.lines.reset()
        if not first:
            return 0  # a file that appeared or replaced a rotated one holds only new lines
        saved = self._load_checkpoint()
        if saved is not None:
            inode, offset, head, *_ = saved
            if inode == st.st_ino and offset <= st.st_size and os.pread(fd, len(head), 0) == head:
                self._saved = (inode, offset)
                return offset
            self._forget_eids()
            return 0  # rotated or truncated while we were away: all of it is new to us
        if self.from_start or st.st_size == 0:
            return 0
        # From the end, like tail -F; if the writer is mid-line, that line's rest is not a record.
        self.lines.reset(discarding=os.pread(fd, 1, st.st_size - 1) != b"\n")
        return st.st_size

    async def _read_chunk(self, current: _OpenFile) -> int:
        chunk = await asyncio.to_thread(os.pread, current.fd, CHUNK, current.offset)
        if chunk and current.offset and self._rewritten(current):
            self._restart(current, "rewritten")  # what we just read may be the new content's middle
            return 1
        if chunk:
            current.offset += len(chunk)
            await self._consume(chunk, current)
        return len(chunk)

    async def _rotated_or_truncated(self, current: _OpenFile) -> _OpenFile | None:
        """At end of file: the file to read next (``current`` if nothing changed)."""
        try:
            inode = os.stat(self.path).st_ino
        except OSError:
            inode = None  # moved away and not recreated yet: the writer may still append to ours
        if inode is not None and inode != current.inode:
            while await self._read_chunk(current):  # lines written between our last read and the rename
                pass
            await self._finish()
            self._checkpoint(current, due=True)
            os.close(current.fd)
            return await self._open(first=False)
        if os.fstat(current.fd).st_size < current.offset or self._rewritten(current):
            self._restart(current, "truncated")
        return current

    def _restart(self, current: _OpenFile, why: str) -> None:
        if self.lines.pending:
            self.decoder.skip(f"file {why} in the middle of a line")
        self.lines.reset()
        current.offset, current.head = 0, b""
        self._bounds = deque([(self.ring.last_eid, 0)])
        self.status.mode = f"following {self.path} (inode {current.inode}, {why})"

    @staticmethod
    def _rewritten(current: _OpenFile) -> bool:
        """Truncated and refilled past our offset between two polls (copytruncate), seen by its head."""
        head = os.pread(current.fd, min(_HEAD, current.offset), 0)  # offset only grows: head does too
        if not head.startswith(current.head):
            return True
        current.head = head
        return False

    # -- checkpoint ---------------------------------------------------------------------------

    def _load_checkpoint(self) -> tuple[int, int, bytes, str | None, int | None] | None:
        if self.checkpoint is None:
            return None
        try:
            data = json.loads(self.checkpoint.read_text())
            origin, eid = data.get("origin"), data.get("eid")
            eid = int(eid) if isinstance(origin, str) and eid is not None else None
            return int(data["inode"]), int(data["offset"]), bytes.fromhex(data.get("head", "")), origin, eid
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            self.status.error(f"ignoring unreadable checkpoint {self.checkpoint}: {err}")
            return None

    def _resume_eids(self) -> bool:
        """Number rows as before the restart, from the checkpoint on (at build time, before any
        reader looks): a reader whose saved position is in this sequence skips what it had."""
        saved = self._load_checkpoint()
        if saved is None or saved[4] is None or self.ring.last_eid:
            return False
        self.ring.resume(saved[3], saved[4])
        return True

    def _forget_eids(self) -> None:
        if self._resumed:
            self.ring.origin = uuid.uuid4().hex  # the checkpoint's file is gone: a new sequence
            self._resumed = False

    def _checkpoint(self, current: _OpenFile, *, due: bool) -> None:
        """Save the offset of the last complete line whose rows every holding reader has."""
        if self.checkpoint is None:
            return
        eid, offset = self._safe_bound(current)
        now = time.monotonic()
        if self._saved == (current.inode, offset) or (not due and now - self._saved_at < _CHECKPOINT_EVERY):
            return
        try:
            head = os.pread(current.fd, min(offset, _HEAD), 0)
            data = {
                "path": self.path,
                "inode": current.inode,
                "offset": offset,
                "head": head.hex(),
                "origin": self.ring.origin,
                "eid": eid,
            }
            tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
            tmp.write_text(json.dumps(data) + "\n")
            os.replace(tmp, self.checkpoint)
        except OSError as err:
            self.status.error(f"cannot write checkpoint {self.checkpoint}: {err.strerror or err}")
            return
        self._saved, self._saved_at = (current.inode, offset), now

    def _safe_bound(self, current: _OpenFile) -> tuple[int, int]:
        """(eid, offset) to checkpoint: the newest batch end that readers holding the ring have."""
        held = self.ring.held()
        bounds = self._bounds
        if held is None:
            latest = (self.ring.last_eid, current.offset - len(self.lines.pending))
            bounds.clear()
            bounds.append(latest)
            return latest
        while len(bounds) > 1 and bounds[1][0] <= held:
            bounds.popleft()  # the first bound is the newest one every reader has
        return bounds[0]


def _is_stream(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)
