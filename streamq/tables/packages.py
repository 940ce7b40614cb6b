"""Installed software: deb, rpm and portage packages, APT sources, Python and npm packages.

Every table reads the package database files directly (no dpkg, rpm or pip
subprocess). ``pid_with_namespace = N`` reads the same files through
/proc/N/root, so a container's packages are visible from the host; paths in
the rows stay as the container sees them.
"""

from __future__ import annotations

from ..host import procfs
from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ..text import decode, encode_path
from ._common import NAMESPACE_COLUMNS, PID_WITH_NAMESPACE, lazy_module, namespaces

accounts = lazy_module("streamq.host.accounts")
langpkgs = lazy_module("streamq.host.langpkgs")
pkgdb = lazy_module("streamq.host.pkgdb")
pkgformats = lazy_module("streamq.host.pkgformats")

# --- deb_packages -------------------------------------------------------------

_DPKG_ADMINDIR = "/var/lib/dpkg"


@table(
    "deb_packages",
    "Debian packages known to dpkg, read from its status database.",
    [
        Column("name", TEXT, "Package name."),
        Column("version", TEXT, "Installed version, with the epoch when it has one."),
        Column("source", TEXT, "The Source field: the source package it was built from, when that differs."),
        Column("size", BIGINT, "Installed size in KiB, as dpkg records it."),
        Column("arch", TEXT, "Architecture (amd64, all, ...)."),
        Column("revision", TEXT, "Debian revision: the version part after the last hyphen."),
        Column("status", TEXT, "dpkg's want, error flag and state, e.g. 'install ok installed'."),
        Column("maintainer", TEXT, "Maintainer name and e-mail address."),
        Column("section", TEXT, "Archive section (admin, libs, ...)."),
        Column("priority", TEXT, "Priority (required, important, optional, ...)."),
        Column("admindir", TEXT, "dpkg database directory the package was read from.", additional=True),
        *NAMESPACE_COLUMNS,
    ],
    examples=(
        "SELECT name, version, arch FROM deb_packages WHERE name = 'dpkg'",
        "SELECT section, count(*) FROM deb_packages GROUP BY section ORDER BY 2 DESC",
    ),
    cost=2000,
)
def gen_deb_packages(ctx):
    admindirs = [d for d in ctx.eq("admindir") or [_DPKG_ADMINDIR] if isinstance(d, str)]
    for pid, prefix, mnt in namespaces(ctx):
        for admindir in admindirs:
            data = procfs.read_or_none(prefix.encode() + encode_path(admindir) + b"/status")
            if data is not None:
                yield from _deb_rows(data, admindir, pid, mnt)


def _deb_rows(data: bytes, admindir: str, pid: int, mnt: str | None):
    for f in pkgformats.parse_dpkg_status(data):
        status = f.get(b"Status")
        if status is None or status.endswith(b" not-installed"):
            continue  # dpkg keeps records of removed packages; osquery and dpkg-query skip them
        version = decode(f[b"Version"]) if b"Version" in f else None
        yield {
            "name": decode(f[b"Package"]),
            "version": version,
            "source": decode(f[b"Source"]) if b"Source" in f else None,
            "size": procfs.int_or_none(f.get(b"Installed-Size")),
            "arch": decode(f[b"Architecture"]) if b"Architecture" in f else None,
            "revision": pkgformats.debian_revision(version) if version else None,
            "status": decode(status),
            "maintainer": decode(f[b"Maintainer"]) if b"Maintainer" in f else None,
            "section": decode(f[b"Section"]) if b"Section" in f else None,
            "priority": decode(f[b"Priority"]) if b"Priority" in f else None,
            "admindir": admindir,
            "pid_with_namespace": pid,
            "mount_namespace_id": mnt,
        }


# --- apt_sources --------------------------------------------------------------


@table(
    "apt_sources",
    "APT repositories configured in sources.list, sources.list.d/*.list and *.sources.",
    [
        Column("name", TEXT, "Repository host and path without the scheme, then the suite."),
        Column("source", TEXT, "File that configures the repository."),
        Column("base_uri", TEXT, "Repository URI without trailing slashes."),
        Column("release", TEXT, "Codename from the downloaded Release file."),
        Column("version", TEXT, "Version from the downloaded Release file."),
        Column("maintainer", TEXT, "Origin from the downloaded Release file."),
        Column("components", TEXT, "Components the Release file lists, else those configured, space separated."),
        Column("architectures", TEXT, "Architectures the Release file lists, else the arch= option."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT name, base_uri, release, version FROM apt_sources",),
    cost=20,
)
def gen_apt_sources(ctx):
    for pid, prefix, _mnt in namespaces(ctx):
        for path in pkgdb.apt_source_files(prefix):
            data = procfs.read_or_none(prefix + path)
            if data is None:
                continue
            text = decode(data)
            entries = (
                pkgformats.parse_deb822_sources(text)
                if path.endswith(".sources")
                else pkgformats.parse_sources_list(text)
            )
            for entry in entries:
                if entry.type == "deb":  # osquery lists binary repositories only
                    row = pkgdb.apt_source_row(entry, path, prefix + pkgdb.APT_LISTS)
                    if row is not None:
                        row["pid_with_namespace"] = pid
                        yield row


# --- rpm_packages -------------------------------------------------------------


@table(
    "rpm_packages",
    "RPM packages installed on the host, read from an SQLite rpm database (rpmdb.sqlite).",
    [
        Column("name", TEXT, "Package name.", index=True),
        Column("version", TEXT, "Package version.", index=True),
        Column("release", TEXT, "Package release.", index=True),
        Column("source", TEXT, "Source RPM file name."),
        Column("size", BIGINT, "Installed size in bytes."),
        Column("sha1", TEXT, "SHA1 digest of the package header."),
        Column("arch", TEXT, "Architecture.", index=True),
        Column("epoch", INTEGER, "Package epoch, NULL when it has none.", index=True),
        Column("install_time", INTEGER, "Installation time, seconds since the Unix epoch."),
        Column("vendor", TEXT, "Package vendor."),
        Column("package_group", TEXT, "Package group."),
        *NAMESPACE_COLUMNS,
    ],
    examples=("SELECT name, version, release, arch FROM rpm_packages WHERE name = 'bash'",),
    cost=2000,
)
def gen_rpm_packages(ctx):
    wanted = {c: ctx.eq(c) for c in ("name", "version", "release", "arch", "epoch")}
    wanted = {c: v for c, v in wanted.items() if v is not None}
    for pid, prefix, mnt in namespaces(ctx):
        for path in pkgdb.rpm_databases(prefix):
            for row in pkgdb.rpm_rows(path, in_memory=pid != 0):
                if all(row[c] in v for c, v in wanted.items()):
                    row["pid_with_namespace"] = pid
                    row["mount_namespace_id"] = mnt
                    yield row


# --- portage_packages ---------------------------------------------------------

_PORTAGE_DB = "/var/db/pkg"
_PORTAGE_WORLD = "/var/lib/portage/world"


@table(
    "portage_packages",
    "Gentoo packages installed by portage, read from /var/db/pkg.",
    [
        Column("package", TEXT, "Category and package name, e.g. sys-apps/portage."),
        Column("version", TEXT, "Installed version, with its -rN revision."),
        Column("slot", TEXT, "Slot the package is installed in."),
        Column("build_time", BIGINT, "Build time, seconds since the Unix epoch."),
        Column("repository", TEXT, "Repository the ebuild came from."),
        Column("eapi", BIGINT, "EAPI of the ebuild."),
        Column("size", BIGINT, "Installed size in bytes."),
        Column("world", INTEGER, "1 if the package is in the world set, 0 if not, NULL without a world file."),
    ],
    examples=("SELECT package, version, slot FROM portage_packages",),
    cost=1000,
)
def gen_portage_packages(ctx):
    yield from pkgdb.portage_rows(_PORTAGE_DB, _PORTAGE_WORLD)


# --- python_packages ----------------------------------------------------------


@table(
    "python_packages",
    "Python distributions installed in the system's and users' site-packages directories.",
    [
        Column("name", TEXT, "Distribution name from its metadata."),
        Column(
            "uid",
            BIGINT,
            "Owner of a per-user site directory (~/.local); 0 for system-wide directories, as in osquery.",
            index=True,
        ),
        Column("version", TEXT, "Distribution version."),
        Column("summary", TEXT, "One-line summary."),
        Column("author", TEXT, "Author, or the author e-mail field when there is no author name."),
        Column("license", TEXT, "License field, or License-Expression when that is all there is."),
        Column("path", TEXT, "The .dist-info or .egg-info path the metadata came from."),
        Column("directory", TEXT, "The site-packages directory; = reads any directory.", index=True),
        PID_WITH_NAMESPACE,
    ],
    examples=(
        "SELECT name, version, directory FROM python_packages",
        "SELECT count(*) FROM python_packages WHERE directory = '/usr/lib/python3/dist-packages'",
    ),
    cost=500,
)
def gen_python_packages(ctx):
    uids = ctx.eq("uid")
    directories = ctx.eq("directory")
    for pid, prefix, _mnt in namespaces(ctx):
        if directories is not None:
            sites = [(d, langpkgs.site_owner(prefix + d)) for d in directories if isinstance(d, str)]
        else:
            homes = accounts.user_homes(uids, root=prefix)
            # System-wide packages belong to uid 0, as in osquery: `uid = 0` finds them too.
            sites = langpkgs.python_site_dirs(prefix, with_system=uids is None or 0 in uids, homes=homes)
        for site, uid in sites:
            for row in langpkgs.python_packages_in(prefix + site):
                row["directory"] = site
                row["path"] = row["path"][len(prefix) :]
                row["uid"] = 0 if uid is None else uid
                row["pid_with_namespace"] = pid
                yield row


# --- npm_packages -------------------------------------------------------------

_NPM_DEFAULT_MAX_DEPTH = 100


@table(
    "npm_packages",
    "Node.js packages installed in global node_modules directories, nested dependencies included.",
    [
        Column("name", TEXT, "Package name from package.json."),
        Column("version", TEXT, "Package version."),
        Column("description", TEXT, "Package description."),
        Column("author", TEXT, "Author name."),
        Column("license", TEXT, "License identifier (or the URL of an old-style license object)."),
        Column("homepage", TEXT, "Project home page."),
        Column("path", TEXT, "Path of the package's package.json."),
        Column("directory", TEXT, "Directory that holds the node_modules folder; = reads any directory.", index=True),
        Column("depth", INTEGER, "Nesting depth: 0 for a top-level package, 1 for its dependencies, ..."),
        Column(
            "max_depth",
            INTEGER,
            "How deep to descend into nested node_modules (100 by default, -1 = no limit).",
            additional=True,
            hidden=True,
        ),
        *NAMESPACE_COLUMNS,
    ],
    examples=(
        "SELECT name, version, path FROM npm_packages WHERE depth = 0",
        "SELECT name, version FROM npm_packages WHERE directory = '/usr/lib' AND max_depth = 0",
    ),
    cost=1000,
)
def gen_npm_packages(ctx):
    max_depths = [d for d in ctx.eq("max_depth") or () if isinstance(d, int)]
    max_depth = max_depths[0] if max_depths else langpkgs.NPM_DEFAULT_MAX_DEPTH
    directories = ctx.eq("directory")
    for pid, prefix, mnt in namespaces(ctx):
        sites = (
            [d for d in directories if isinstance(d, str)]
            if directories is not None
            else langpkgs.npm_site_dirs(prefix, accounts.user_homes(root=prefix))
        )
        for site in sites:
            for row in langpkgs.npm_packages_in(prefix + site, max_depth):
                row["directory"] = site
                row["path"] = row["path"][len(prefix) :]
                row["pid_with_namespace"] = pid
                row["mount_namespace_id"] = mnt
                yield row
