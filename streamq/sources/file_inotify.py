"""watchdog's inotify machinery, adjusted for file_events.

watchdog's emitter is subclassed at three points: its move grouper holds every
IN_MOVED_FROM back for 0.5 s (and blocks the events behind it), so ours queues
at once and keeps the inotify cookie as ``transaction_id``; the raw inotify
mask is mapped to osquery's actions instead of watchdog's event classes; and
the watch group reports what watchdog only logs: queue overflows (counted, then
answered with a rescan) and watches it could not add (ENOSPC names the sysctl).
"""

from __future__ import annotations

import collections
import errno
import os
from dataclasses import dataclass, field
from typing import Any

from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver
from watchdog.observers.inotify import InotifyEmitter, InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyConstants as Inotify
from watchdog.observers.inotify_c import InotifyFD, Mask
from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper, PathedInotifyEvent

# osquery's default mask: no IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE, which reads would flood.
MASK = Mask(
    Inotify.IN_CREATE
    | Inotify.IN_MODIFY
    | Inotify.IN_CLOSE_WRITE
    | Inotify.IN_ATTRIB
    | Inotify.IN_MOVED_FROM
    | Inotify.IN_MOVED_TO
    | Inotify.IN_DELETE
    | Inotify.IN_DELETE_SELF
    | Inotify.IN_DONT_FOLLOW
)


class _ImmediateGrouper(InotifyMoveEventGrouper):
    """Queue every event at once; remember recent IN_MOVED_FROM paths for the group's watch moves."""

    def __init__(self) -> None:
        super().__init__()
        self._moved_from: collections.OrderedDict[int, PathedInotifyEvent] = collections.OrderedDict()

    def put_event(self, event: PathedInotifyEvent) -> None:
        if event.ev.is_moved_from:
            self._moved_from[event.ev.cookie] = event
            if len(self._moved_from) > 1024:
                self._moved_from.popitem(last=False)
        self._queue.put(event, delay=False)

    def get_queued_moved_from_event(self, cookie: int) -> PathedInotifyEvent | None:
        return self._moved_from.get(cookie)


@dataclass
class _WatchGroup(InotifyWatchGroup):
    """watchdog's watch group, reporting failed watches and overflows to the source."""

    source: Any = None
    _move_event_grouper: InotifyMoveEventGrouper = field(default_factory=_ImmediateGrouper, init=False)

    def _add_callback(self, path: bytes) -> None:
        try:
            if not os.access(path, os.R_OK | os.X_OK):  # watchdog turns EACCES into a bogus wd -1
                raise PermissionError(errno.EACCES, "permission denied")
            wd = self._inotify_fd.add_callback(path, self.event_mask, self._callback, self._id)
        except OSError as err:
            if path == self.path:
                raise  # the source reports it once, where it scheduled the watch
            self.source.watch_failed(path, err)
            return
        self._active_callbacks_by_path[path] = wd
        self._active_callbacks_by_watch[wd] = path

    def on_queue_overflow(self) -> None:
        super().on_queue_overflow()
        self.source.overflowed(self.path)


class _Emitter(InotifyEmitter):
    """Hands raw inotify events (mask, cookie, byte path) to the source instead of watchdog events."""

    def __init__(self, *args: Any, source: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._source = source

    def on_thread_start(self) -> None:
        self._inotify = _WatchGroup(
            self._inotify_fd,
            os.fsencode(self.watch.path),
            event_mask=MASK,
            is_recursive=self.watch.is_recursive,
            source=self._source,
        )

    def build_and_queue_event(self, event: Any, *, full_events: bool = False) -> None:
        events = (event,) if isinstance(event, PathedInotifyEvent) else event  # our grouper never pairs
        for e in events:
            self._source.on_inotify(e.ev, e.path, self.watch)


class Observer(BaseObserver):
    """An observer with its own inotify instance (so its queue limit is its own)."""

    def __init__(self, source: Any) -> None:
        self._inotify_fd = InotifyFD()
        self._inotify_fd.start()
        super().__init__(_Emitter, timeout=DEFAULT_OBSERVER_TIMEOUT, inotify_fd=self._inotify_fd, source=source)

    def on_thread_stop(self) -> None:
        super().on_thread_stop()
        self._inotify_fd.stop()
        self._inotify_fd.join()
