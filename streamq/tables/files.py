"""File-system tables: file, hash and suid_bin.

``file`` and ``hash`` answer osquery's way: ``path = X`` describes X itself,
``directory = D`` the entries of D (not D, not recursive), and LIKE on either
column is an osquery path pattern (:mod:`streamq.host.globbing`). A path that does
not exist or cannot be read gives no row, never an error.

Like osquery, a symlink's row says ``symlink = 1`` and names its target, while
the other columns describe what it points to (``stat``); a dangling link falls
back to the link itself (``lstat``) and has type ``symlink``. ``btime`` comes
from statx(2) where the file system records it (osquery leaves it 0 on Linux).

``pid_with_namespace = N`` reads the paths through ``/proc/N/root``, the
process's view of the mount namespace, and reports them as it names them.
"""

from __future__ import annotations

import itertools
import stat
from collections.abc import Iterator

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import NAMESPACE_COLUMNS, PID_WITH_NAMESPACE, lazy_module, namespaces

accounts = lazy_module("streamq.host.accounts")
fileinfo = lazy_module("streamq.host.fileinfo")
globbing = lazy_module("streamq.host.globbing")

_TYPES = {
    stat.S_IFREG: "regular",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "character",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}
_DIGESTS = ("md5", "sha1", "sha256")


@table(
    "file",
    "Attributes of files and directories, named by path or listed from a directory.",
    [
        Column(
            "path",
            TEXT,
            "Absolute path of the file; LIKE takes osquery's % and %% patterns.",
            required=True,
            index=True,
        ),
        Column("directory", TEXT, "Directory that holds the file; = lists its entries.", required=True),
        Column("filename", TEXT, "Last component of the path."),
        Column("inode", BIGINT, "Inode number."),
        Column("uid", BIGINT, "Owning user ID."),
        Column("gid", BIGINT, "Owning group ID."),
        Column("mode", TEXT, "Permission bits as four octal digits, e.g. 0644."),
        Column("device", BIGINT, "Device number a character or block special file stands for (st_rdev), else 0."),
        Column("size", BIGINT, "Size in bytes."),
        Column("block_size", INTEGER, "Preferred I/O block size in bytes."),
        Column("atime", BIGINT, "Last access time, unix seconds."),
        Column("mtime", BIGINT, "Last modification time, unix seconds."),
        Column("ctime", BIGINT, "Last status change time, unix seconds."),
        Column("btime", BIGINT, "Creation (birth) time, unix seconds, where the file system records it."),
        Column("hard_links", INTEGER, "Number of hard links."),
        Column("symlink", INTEGER, "1 if the path itself is a symbolic link, else 0."),
        Column("type", TEXT, "regular, directory, symlink (dangling), character, block, fifo or socket."),
        Column("symlink_target_path", TEXT, "Where the symbolic link points, as stored in the link."),
        *NAMESPACE_COLUMNS,
    ],
    examples=(
        "SELECT path, mode, size, type FROM file WHERE path IN ('/etc/passwd', '/etc/hostname')",
        "SELECT path, uid, gid, mode, type FROM file WHERE directory = '/dev/'",
    ),
    cost=100,
)
def gen_file(ctx):
    birth = fileinfo.birth_time_reader() if ctx.used("btime") else None
    for ns in namespaces(ctx):
        root = ns.root.encode()
        for path, directory in _targets(ctx, root):
            row = _file_row(path, directory, root, birth)
            if row is not None:
                row["pid_with_namespace"], row["mount_namespace_id"] = ns.pid, ns.mount_namespace_id
                yield row


@table(
    "hash",
    "MD5, SHA-1 and SHA-256 digests of regular files, named by path or listed from a directory.",
    [
        Column("path", TEXT, "Path of the file; LIKE takes osquery's % and %% patterns.", required=True, index=True),
        Column("directory", TEXT, "Directory that holds the file; = hashes its regular files.", required=True),
        Column("md5", TEXT, "MD5 digest, lowercase hex; NULL if the file cannot be read."),
        Column("sha1", TEXT, "SHA-1 digest, lowercase hex; NULL if the file cannot be read."),
        Column("sha256", TEXT, "SHA-256 digest, lowercase hex; NULL if the file cannot be read."),
        *NAMESPACE_COLUMNS,
    ],
    examples=("SELECT path, sha256 FROM hash WHERE path = '/etc/passwd'",),
    cost=100,
)
def gen_hash(ctx):
    wanted = [name for name in _DIGESTS if ctx.used(name)]
    for ns in namespaces(ctx):
        root = ns.root.encode()
        for path, directory in _targets(ctx, root):
            fs = globbing.fs_path(path, root)
            if not fileinfo.is_regular(fs):
                continue  # osquery hashes regular files only (symlinks followed)
            row = {
                "path": path,
                "directory": directory,
                "pid_with_namespace": ns.pid,
                "mount_namespace_id": ns.mount_namespace_id,
            }
            row.update(fileinfo.digests(fs, wanted))
            yield row


@table(
    "suid_bin",
    "Regular files with the setuid or setgid bit under the usual program directories.",
    [
        Column("path", TEXT, "Path of the setuid/setgid file."),
        Column("username", TEXT, "Name of the owning user (the uid as text when it has no name)."),
        Column("groupname", TEXT, "Name of the owning group (the gid as text when it has no name)."),
        Column("permissions", TEXT, "S if setuid, G if setgid, SG if both."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT * FROM suid_bin",),
    cost=50,
)
def gen_suid_bin(ctx):
    names = accounts.IdNames()
    for ns in namespaces(ctx):
        for path, st in fileinfo.suid_files(ns.root.encode()):
            yield {
                "path": path,
                "username": names.user(st.st_uid),
                "groupname": names.group(st.st_gid),
                "permissions": ("S" if st.st_mode & stat.S_ISUID else "") + ("G" if st.st_mode & stat.S_ISGID else ""),
                "pid_with_namespace": ns.pid,
            }


# --- shared by file and hash ---------------------------------------------------------------


def _targets(ctx, root: bytes) -> Iterator[tuple[str, str]]:
    """(path, directory) text pairs the constraints name, each at most once.

    Path constraints win when both columns are constrained: SQLite ANDs them
    and re-checks every row, so listing directories as well would be waste.
    """
    paths = [p for p in ctx.eq("path") or () if isinstance(p, str)]
    path_likes = ctx.like("path")
    if ctx.eq("path") is not None or path_likes:
        given_dirs = [d for d in ctx.eq("directory") or () if isinstance(d, str)]
        # Lazy, so `path LIKE '/%%' LIMIT 10` stops walking after ten rows.
        expanded = (p for pattern in path_likes for p in globbing.expand(pattern, root=root))
        seen = set()
        for path in itertools.chain(paths, expanded):
            if path and path not in seen:
                seen.add(path)
                yield path, _parent(path, given_dirs)
        return
    directories = [d for d in ctx.eq("directory") or () if isinstance(d, str)]
    expanded = (d for pattern in ctx.like("directory") for d in globbing.expand(pattern, root=root, dirs_only=True))
    seen = set()
    for directory in itertools.chain(directories, expanded):
        if directory in seen:
            continue
        seen.add(directory)
        for name in fileinfo.list_dir(globbing.fs_path(directory, root)):
            yield globbing.join(directory, name), directory


def _normalise(path: str) -> str:
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or path[:1]


def _parent(path: str, given_dirs: list[str]) -> str:
    """The directory column for ``path``: its parent, spelled as the query spelled it if it did."""
    norm = _normalise(path)
    parent = norm.rsplit("/", 1)[0] if "/" in norm else ""
    parent = parent or ("/" if norm.startswith("/") else "")
    for given in given_dirs:
        if _normalise(given) == parent:
            return given
    return parent


def _file_row(path: str, directory: str, root: bytes, birth) -> dict | None:
    fs = globbing.fs_path(path, root)
    found = fileinfo.describe(fs)
    if found is None:
        return None
    st, is_link, target = found
    norm = _normalise(path)
    return {
        "path": path,
        "directory": directory,
        "filename": norm.rsplit("/", 1)[-1] or norm,
        "inode": st.st_ino,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "device": st.st_rdev,
        "size": st.st_size,
        "block_size": st.st_blksize,
        "atime": int(st.st_atime),
        "mtime": int(st.st_mtime),
        "ctime": int(st.st_ctime),
        "btime": birth(fs, st) if birth is not None else None,
        "hard_links": st.st_nlink,
        "symlink": 1 if is_link else 0,
        "type": _TYPES.get(stat.S_IFMT(st.st_mode)),
        "symlink_target_path": target,
    }
