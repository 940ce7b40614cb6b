"""Files installed by packages, package repositories, and portage settings."""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import PID_WITH_NAMESPACE, lazy_module, namespaces

pkgdb = lazy_module("streamq.host.pkgdb")
pkgfiles = lazy_module("streamq.host.pkgfiles")
procfs = lazy_module("streamq.host.procfs")


@table(
    "deb_package_files",
    "Files installed by each Debian package, from dpkg's file lists (what `dpkg -L` prints).",
    [
        Column("package", TEXT, "Package name.", index=True),
        Column("path", TEXT, "Path the package installed.", index=True),
        Column("admindir", TEXT, "dpkg database directory read (default /var/lib/dpkg).", additional=True),
    ],
    examples=(
        "SELECT path FROM deb_package_files WHERE package = 'bash'",
        "SELECT package FROM deb_package_files WHERE path = '/usr/bin/ssh'",
    ),
    cost=100000,
)
def gen_deb_package_files(ctx):
    packages = ctx.eq("package")
    paths = ctx.eq("path")
    wanted_paths = set(paths) if paths is not None else None
    for admindir in [d for d in ctx.eq("admindir") or [pkgfiles.DPKG_ADMINDIR] if isinstance(d, str)]:
        for package, list_file in pkgfiles.dpkg_file_lists(admindir):
            if packages is not None and package not in packages:
                continue
            for path in pkgfiles.read_dpkg_list(list_file):
                if wanted_paths is None or path in wanted_paths:
                    yield {"package": package, "path": path, "admindir": admindir}


@table(
    "rpm_package_files",
    "Files installed by each RPM package, from the file table of its header in the rpm database.",
    [
        Column("package", TEXT, "Package name.", index=True),
        Column("path", TEXT, "Path the package installed.", index=True),
        Column("username", TEXT, "Owner of the file as packaged."),
        Column("groupname", TEXT, "Group of the file as packaged."),
        Column("mode", TEXT, "Permission bits as packaged, four octal digits."),
        Column("size", BIGINT, "Size in bytes as packaged."),
        Column("sha256", TEXT, "SHA-256 of the file as packaged, when the package records SHA-256 digests."),
    ],
    examples=("SELECT path, mode, sha256 FROM rpm_package_files WHERE package = 'openssh-server'",),
    cost=100000,
)
def gen_rpm_package_files(ctx):
    packages, paths = ctx.eq("package"), ctx.eq("path")
    for path in pkgdb.rpm_databases():
        for blob in pkgfiles.rpm_header_blobs(path):
            for row in pkgfiles.rpm_file_rows(blob):
                if (packages is None or row["package"] in packages) and (paths is None or row["path"] in paths):
                    yield row


@table(
    "yum_sources",
    "yum/dnf repositories from /etc/yum.conf and the .repo files of its reposdir.",
    [
        Column("name", TEXT, "Repository name (its name option)."),
        Column("source", TEXT, "File the repository is defined in."),
        Column("baseurl", TEXT, "Base URL(s)."),
        Column("mirrorlist", TEXT, "Mirror list URL."),
        Column("metalink", TEXT, "Metalink URL."),
        Column("enabled", TEXT, "enabled option as written (1 or 0)."),
        Column("gpgcheck", TEXT, "gpgcheck option as written."),
        Column("gpgkey", TEXT, "GPG key URL(s)."),
        PID_WITH_NAMESPACE,
    ],
    examples=("SELECT name, baseurl, enabled, gpgcheck FROM yum_sources",),
    cost=20,
)
def gen_yum_sources(ctx):
    for ns in namespaces(ctx):
        for row in pkgfiles.yum_source_rows(ns.root):
            yield {**row, "pid_with_namespace": ns.pid}


@table(
    "portage_keywords",
    "Gentoo package keywords, masks and unmasks from /etc/portage/package.{keywords,mask,unmask}.",
    [
        Column("package", TEXT, "Package atom without version."),
        Column("version", TEXT, "Version, with its comparison operator (>=1.2) where the atom has one."),
        Column("keyword", TEXT, "Keywords accepted for the package, e.g. ~amd64."),
        Column("mask", INTEGER, "1 when the atom is in package.mask."),
        Column("unmask", INTEGER, "1 when the atom is in package.unmask."),
    ],
    examples=("SELECT * FROM portage_keywords WHERE mask = 1",),
    cost=20,
)
def gen_portage_keywords(ctx):
    yield from pkgfiles.portage_keyword_rows()


@table(
    "portage_use",
    "USE flags each installed Gentoo package was built with, from /var/db/pkg.",
    [
        Column("package", TEXT, "Package name."),
        Column("version", TEXT, "Installed version."),
        Column("use", TEXT, "One USE flag."),
    ],
    examples=("SELECT package, version FROM portage_use WHERE use = 'ssl'",),
    cost=5000,
)
def gen_portage_use(ctx):
    yield from pkgfiles.portage_use_rows()
