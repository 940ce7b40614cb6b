"""What is inside files and processes: extended attributes, libmagic's verdict, YARA matches.

libmagic (python-magic over Debian's libmagic1) and YARA (yara-python) do the
reading: file formats and a pattern engine are what well-kept libraries are for.
Both are imported on the first query of their table.
"""

from __future__ import annotations

import os

from ..sql.schema import INTEGER, TEXT, Column, table
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces, requested_paths

globbing = lazy_module("streamq.host.globbing")
optional = lazy_module("streamq.host.optional")
xattrs = lazy_module("streamq.host.xattrs")
fileinfo = lazy_module("streamq.host.fileinfo")
yarascan = lazy_module("streamq.host.yarascan")


def _parent(path: str) -> str:
    parent = path.rstrip("/").rsplit("/", 1)[0]
    return parent or "/"


def xattr_rows(path: str):
    fs = globbing.fs_path(path)
    pairs = xattrs.read_xattrs(fs)
    if pairs is None:
        return
    base = {"path": path, "directory": _parent(path)}
    caps = xattrs.capability_text(fs) if any(name == xattrs.CAPABILITY for name, _ in pairs) else None
    if caps:
        yield {**base, "key": xattrs.CAPABILITY, "value": caps, "base64": 0}
    for name, value in pairs:
        if name == xattrs.CAPABILITY and caps:
            continue
        shown, encoded = xattrs.shown_value(value)
        yield {**base, "key": name, "value": shown, "base64": encoded}


def _directory_files(ctx):
    for directory in requested_paths(ctx, "directory"):
        try:
            names = sorted(os.listdir(globbing.fs_path(directory)))
        except OSError:
            continue
        for name in names:
            yield globbing.join(directory, os.fsdecode(name))


@table(
    "extended_attributes",
    "Extended attributes of files (user.*, security.*, trusted.* when root), capabilities as getcap shows them.",
    [
        Column("path", TEXT, "Path of the file.", required=True),
        Column("directory", TEXT, "Directory of the file; `directory = X` lists every file in X.", required=True),
        Column("key", TEXT, "Attribute name, e.g. user.origin or security.capability."),
        Column("value", TEXT, "Attribute value: text, or base64 when it is binary (see base64)."),
        Column("base64", INTEGER, "1 when value is base64-encoded."),
    ],
    examples=(
        "SELECT * FROM extended_attributes WHERE path = '/usr/bin/ping'",
        "SELECT path, value FROM extended_attributes WHERE directory = '/usr/bin' AND key = 'security.capability'",
    ),
    cost=100,
)
def gen_extended_attributes(ctx):
    named = ctx.eq("path") is not None or bool(ctx.like("path"))
    for path in requested_paths(ctx) if named else _directory_files(ctx):
        yield from xattr_rows(path)


# --- magic --------------------------------------------------------------------------------


def _magic_instances(db_files: str | None):
    magic = optional.optional_module("magic", "python-magic and Debian's libmagic1")
    if magic is None:
        return None
    try:
        return (
            magic.Magic(magic_file=db_files),
            magic.Magic(magic_file=db_files, mime=True),
            magic.Magic(magic_file=db_files, mime_encoding=True),
        )
    except magic.MagicException as err:
        optional.note_once(f"magic: cannot load magic database {db_files or '(default)'}: {err}")
        return None


def magic_row(path: str, checkers, db_files: str | None) -> dict | None:
    fs = globbing.fs_path(path)
    if not os.path.lexists(fs):
        return None
    describe, mime, encoding = checkers
    try:
        return {
            "path": path,
            "magic_db_files": db_files,
            "data": describe.from_file(fs),
            "mime_type": mime.from_file(fs),
            "mime_encoding": encoding.from_file(fs),
        }
    except Exception:  # python-magic raises MagicException (and OSError) for unreadable files
        return None


@table(
    "magic",
    "What libmagic says a file is (as `file` does): a description, the MIME type and encoding.",
    [
        Column("path", TEXT, "Path of the file.", required=True, index=True),
        Column(
            "magic_db_files",
            TEXT,
            "Colon-separated magic database files to use instead of the system's.",
            additional=True,
        ),
        Column("data", TEXT, "libmagic's description, as `file --brief` prints it."),
        Column("mime_type", TEXT, "MIME type, as `file --brief --mime-type` prints it."),
        Column("mime_encoding", TEXT, "MIME encoding, as `file --brief --mime-encoding` prints it."),
    ],
    examples=(
        "SELECT path, data, mime_type FROM magic WHERE path = '/bin/ls'",
        "SELECT path, data FROM magic WHERE path LIKE '/tmp/%' AND mime_type LIKE 'application/x-%executable'",
    ),
    cost=100,
)
def gen_magic(ctx):
    db_values = [d for d in ctx.eq("magic_db_files") or [None] if d is None or isinstance(d, str)]
    for db_files in db_values:
        checkers = _magic_instances(db_files)
        if checkers is None:
            continue
        for path in requested_paths(ctx):
            row = magic_row(path, checkers, db_files)
            if row is not None:
                yield row


# --- yara ---------------------------------------------------------------------------------

_YARA_COLUMNS = [
    Column("matches", TEXT, "Names of the rules that matched, comma-separated."),
    Column("count", INTEGER, "Number of rules that matched."),
    Column("sig_group", TEXT, "Signature group (from the [yara] config section) used for the scan.", additional=True),
    Column("sigfile", TEXT, "Rule file used for the scan (source or compiled by yarac).", additional=True),
    Column("sigrule", TEXT, "Rule text used for the scan.", hidden=True, additional=True),
    Column("strings", TEXT, "Matching strings as identifier:hex offset, comma-separated."),
    Column("tags", TEXT, "Tags of the rules that matched, comma-separated."),
    Column(
        "sigurl",
        TEXT,
        "Rule URL; fetching rules from a URL is not supported, so this yields nothing.",
        hidden=True,
        additional=True,
    ),
    PID_WITH_NAMESPACE,
]


@table(
    "yara_file",
    "YARA rules run over files: which rules matched, their strings and tags.",
    [Column("path", TEXT, "Path of the file scanned.", required=True, index=True), *_YARA_COLUMNS],
    examples=(
        "SELECT path, matches, count FROM yara_file WHERE path LIKE '/tmp/%' AND sigfile = '/etc/streamq/rules.yar'",
        "SELECT * FROM yara_file WHERE path = '/bin/ls' AND sigrule = 'rule elf { condition: uint32(0) == 0x464c457f }'",
    ),
    cost=10000,
)
def gen_yara_file(ctx):
    sets = _rule_sets(ctx)
    paths = list(requested_paths(ctx)) if sets else []
    for ns in namespaces(ctx):
        root = ns.root.encode()
        for path in paths:
            fs = globbing.fs_path(path, root)
            if not fileinfo.is_regular(fs):
                continue  # devices, FIFOs and /proc files can block or never end
            for source, rules in sets:
                matches = yarascan.scan_file(rules, fs)
                if matches is not None:
                    yield _yara_row({"path": path}, source, matches, ns.pid)


@table(
    "yara_process",
    "YARA rules run over the memory of processes (needs root or ptrace rights over them).",
    [Column("pid", INTEGER, "Process ID scanned.", required=True, index=True), *_YARA_COLUMNS],
    examples=(
        "SELECT pid, matches FROM yara_process WHERE pid = 1 AND sigrule = 'rule init { strings: $a = \"systemd\" condition: $a }'",
    ),
    cost=100000,
)
def gen_yara_process(ctx):
    sets = _rule_sets(ctx)
    pids = [p for p in ctx.eq("pid") or () if isinstance(p, int) and p > 0] if sets else []
    # A process's memory is the same whatever view of the files: pid_with_namespace only says whose view it is.
    for ns in namespaces(ctx):
        for pid in pids:
            for source, rules in sets:
                matches = yarascan.scan_process(rules, pid)
                if matches is not None:
                    yield _yara_row({"pid": pid}, source, matches, ns.pid)


def _rule_sets(ctx) -> list[tuple[dict, object]]:
    """(the column naming the rules, compiled rules) for each rule source the query gives."""
    if not yarascan.available():
        return []
    sets = []
    for column in yarascan.RULE_COLUMNS:
        for value in ctx.eq(column) or ():
            if isinstance(value, str) and (rules := yarascan.rules(column, value)) is not None:
                sets.append(({column: value}, rules))
    if not sets and ctx.eq("sigurl") is None:
        optional.note_once("yara: give sigfile, sigrule or sig_group in the query's WHERE clause to scan")
    return sets


def _yara_row(key: dict, source: dict, matches, pid_with_namespace: int) -> dict:
    return {
        **key,
        "sig_group": "",
        "sigfile": "",
        "sigrule": "",
        **source,
        **yarascan.match_columns(matches),
        "sigurl": None,
        "pid_with_namespace": pid_with_namespace,
    }
