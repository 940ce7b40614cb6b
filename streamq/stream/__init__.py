"""Streaming semantics shared by the daemon, `query --follow` and `tail`.

- :mod:`.spec`: the options (window, window_key, emit, grace, dedup, dedup_for, limit);
- :mod:`.windows`: window assignment, watermarks, closing, late rows;
- :mod:`.dedup`: first seen and rate limits;
- :mod:`.pipeline`: windows -> SQL per window -> dedup -> limit, as rows out;
- :mod:`.eventtime`: a record's time field as unix seconds;
- :mod:`.jsonlines`: `tail`'s table of JSON lines, parsed by SQLite rather than Python;
- :mod:`.sqlcheck`: refusing SQL whose result over a stream would depend on batching.

The same rows give the same output whatever their chunking or speed: see docs/streaming.md.
"""
