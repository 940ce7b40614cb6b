"""One test over every table: the spec conventions, osquery's schema, typed values, runnable examples."""

from __future__ import annotations

import re

import pytest

import streamq
from conftest import compat_json
from streamq.sql.connection import load_tables
from streamq.sql.schema import INTEGER_TYPES

TABLES = load_tables()
UNCONSTRAINED = sorted(name for name, spec in TABLES.items() if not spec.required)
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
# Tables osquery does not have on Linux; their columns are ours.
OURS = {"cpuid", "opera_extensions"}


def _check_type(table: str, column: str, sql_type: str, value) -> None:
    if value is None:
        return
    if sql_type in INTEGER_TYPES:
        ok = isinstance(value, int)
    elif sql_type == "DOUBLE":
        ok = isinstance(value, (int, float))
    elif sql_type == "TEXT":
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, bytes)
    assert ok, f"{table}.{column} is {sql_type} but a row holds {value!r} ({type(value).__name__})"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_spec_conventions(name):
    spec = TABLES[name]
    assert SNAKE.match(name), name
    assert spec.description.endswith("."), f"{name}: description must end with '.'"
    for col in spec.columns:
        assert SNAKE.match(col.name), f"{name}.{col.name}"
        assert col.description.endswith("."), f"{name}.{col.name}: description must end with '.'"
    if name.endswith("_events") and not name.startswith(("osquery_", "streamq_")):  # those two describe sources
        assert "time" in spec.column_names, f"{name}: event tables have a time column"
    assert spec.examples, f"{name}: give at least one example query"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_columns_follow_osquery(name):
    osquery = compat_json("osquery-linux-schema.json")["tables"]
    if name in OURS or name not in osquery:
        pytest.skip(f"{name} is not one of osquery's Linux tables")
    spec = TABLES[name]
    theirs = osquery[name]["columns"]
    ours = [c.name for c in spec.columns if not c.name.startswith("_")]
    assert ours[: len(theirs)] == [c["name"] for c in theirs], f"{name}: columns differ from osquery's"
    for col in theirs:
        mine = spec.column(col["name"])
        if col["name"] == "eid":
            assert mine.type == "INTEGER" and mine.hidden  # ours is an integer so `eid > N` compares numbers
            continue
        # osquery's spec spells it UNSIGNED_BIGINT; the SQL type it declares is "UNSIGNED BIGINT".
        ours_type = mine.type.replace(" ", "_")
        assert ours_type == col["type"], f"{name}.{col['name']}: {mine.type} != osquery's {col['type']}"
        assert mine.required == bool(col.get("required")), f"{name}.{col['name']}: required flag"
        assert mine.hidden == bool(col.get("hidden")), f"{name}.{col['name']}: hidden flag"


@pytest.mark.parametrize("name", UNCONSTRAINED)
def test_select_star_values_match_types(conn, name):
    spec = TABLES[name]
    names, rows = conn.execute(f'SELECT * FROM "{name}"')
    types = {c.name: c.type for c in spec.columns}
    assert names == [c.name for c in spec.columns if not c.hidden]
    for row in rows:
        for column, value in zip(names, row):
            _check_type(name, column, types[column], value)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_examples_run(conn, name):
    for sql in TABLES[name].examples:
        conn.query(sql)


def test_required_constraint_is_an_error_naming_the_column(conn):
    with pytest.raises(streamq.QueryError, match="path"):
        conn.query("SELECT * FROM file")


def test_every_osquery_table_named_by_the_issue_exists():
    wanted = [
        "processes",
        "process_open_files",
        "process_open_sockets",
        "process_envs",
        "process_memory_map",
        "process_namespaces",
        "listening_ports",
        "interface_addresses",
        "interface_details",
        "routes",
        "arp_cache",
        "etc_hosts",
        "etc_services",
        "etc_protocols",
        "dns_resolvers",
        "iptables",
        "users",
        "groups",
        "user_groups",
        "logged_in_users",
        "last",
        "shell_history",
        "authorized_keys",
        "crontab",
        "system_info",
        "os_version",
        "kernel_info",
        "platform_info",
        "uptime",
        "time",
        "load_average",
        "memory_info",
        "cpu_info",
        "cpu_time",
        "mounts",
        "block_devices",
        "disk_encryption",
        "kernel_modules",
        "system_controls",
        "file",
        "hash",
        "suid_bin",
        "deb_packages",
        "apt_sources",
        "rpm_packages",
        "portage_packages",
        "python_packages",
        "npm_packages",
        "pci_devices",
        "usb_devices",
        "acpi_tables",
        "smbios_tables",
        "cpuid",
        "systemd_units",
        "shadow",
        "sudoers",
        "chrome_extensions",
        "firefox_addons",
        "opera_extensions",
        "ulimit_info",
        "known_hosts",
    ]
    missing = [t for t in wanted if t not in TABLES]
    assert not missing, f"missing tables: {missing}"
