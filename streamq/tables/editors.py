"""Extensions users installed into their editors and browsers: VS Code (and its forks),
JetBrains IDE plugins, and the content scripts of Chromium-family extensions.

The readers are in host/editors; rows are built from each user's (uid, home).
"""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

accounts = lazy_module("streamq.host.accounts")
editors = lazy_module("streamq.host.editors")


@table(
    "vscode_extensions",
    "VS Code extensions each user installed (also Insiders, VSCodium, the remote server, Cursor, Windsurf).",
    [
        Column("name", TEXT, "Extension id, publisher.name."),
        Column("uuid", TEXT, "Marketplace UUID."),
        Column("version", TEXT, "Installed version."),
        Column("path", TEXT, "Where the extension is installed."),
        Column("publisher", TEXT, "Publisher display name."),
        Column("publisher_id", TEXT, "Publisher UUID."),
        Column("installed_at", BIGINT, "Install time, unix seconds."),
        Column("prerelease", INTEGER, "1 for a pre-release version."),
        Column("uid", BIGINT, "ID of the user whose home it is in.", additional=True),
        Column("vscode_edition", TEXT, "vscode, vscode_insiders, vscodium, vscode_server, cursor or windsurf."),
    ],
    examples=("SELECT name, version, publisher, vscode_edition FROM vscode_extensions",),
    cost=200,
)
def gen_vscode_extensions(ctx):
    for uid, home in accounts.user_homes(ctx.eq("uid")):
        yield from editors.vscode_rows(uid, home)


# --- JetBrains ----------------------------------------------------------------------------


@table(
    "jetbrains_plugins",
    "Plugins users installed into JetBrains IDEs (IntelliJ IDEA, PyCharm, GoLand...).",
    [
        Column("product_type", TEXT, "IDE: intellij_idea, pycharm, goland, webstorm..."),
        Column("uid", BIGINT, "ID of the user whose home it is in.", index=True),
        Column("name", TEXT, "Plugin name."),
        Column("version", TEXT, "Plugin version."),
        Column("vendor", TEXT, "Plugin vendor."),
        Column("path", TEXT, "Plugin directory."),
    ],
    examples=("SELECT product_type, name, version, vendor FROM jetbrains_plugins",),
    cost=200,
)
def gen_jetbrains_plugins(ctx):
    for uid, home in accounts.user_homes(ctx.eq("uid")):
        yield from editors.jetbrains_rows(uid, home)


# --- Chromium content scripts -------------------------------------------------------------


@table(
    "chrome_extension_content_scripts",
    "Scripts Chromium-family extensions inject into pages, one row per script and URL pattern.",
    [
        Column("browser_type", TEXT, "chrome, chromium, brave, edge, opera..."),
        Column("uid", BIGINT, "ID of the user whose profile it is.", index=True),
        Column("identifier", TEXT, "Extension id."),
        Column("version", TEXT, "Extension version."),
        Column("script", TEXT, "The injected script's path inside the extension."),
        Column("match", TEXT, "URL pattern the script is injected into."),
        Column("profile_path", TEXT, "Browser profile directory."),
        Column("path", TEXT, "Extension directory."),
        Column("referenced", BIGINT, "1 when the profile's preferences reference the extension."),
    ],
    examples=("SELECT identifier, script, match FROM chrome_extension_content_scripts WHERE match = '<all_urls>'",),
    cost=500,
)
def gen_chrome_extension_content_scripts(ctx):
    yield from editors.content_script_rows(accounts.user_homes(ctx.eq("uid")))
