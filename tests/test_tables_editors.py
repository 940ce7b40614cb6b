"""vscode_extensions, jetbrains_plugins and chrome_extension_content_scripts run on this host
(their readers are tested in test_host_editors.py)."""

from __future__ import annotations


def test_live_tables_run(conn):
    for name in ("vscode_extensions", "jetbrains_plugins", "chrome_extension_content_scripts"):
        conn.query(f"SELECT * FROM {name}")
