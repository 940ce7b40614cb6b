"""Browser add-ons of every local user: Chromium-family extensions, Firefox add-ons, Opera extensions.

Users and their homes come from /etc/passwd; the profiles' files are read by
:mod:`streamq.host.browsers`.
"""

from __future__ import annotations

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

accounts = lazy_module("streamq.host.accounts")
browsers = lazy_module("streamq.host.browsers")


def _homes(ctx) -> list[tuple[int, str]]:
    return accounts.user_homes(ctx.eq("uid"))


@table(
    "chrome_extensions",
    "Extensions installed in the Chromium-family browsers (Chrome, Chromium, Brave, Edge, Yandex, Opera) of every user.",
    [
        Column("browser_type", TEXT, "Browser: chrome, chromium, brave, edge, edge_beta, yandex or opera."),
        Column("uid", BIGINT, "User ID of the profile's owner.", index=True),
        Column("name", TEXT, "Extension name, localized."),
        Column("profile", TEXT, "Profile name shown by the browser."),
        Column("profile_path", TEXT, "Profile directory."),
        Column("referenced_identifier", TEXT, "Extension ID under which the profile preferences list it."),
        Column(
            "identifier", TEXT, "Extension ID: computed from the manifest key, else the preferences' or folder's ID."
        ),
        Column("version", TEXT, "Extension version."),
        Column("description", TEXT, "Extension description, localized."),
        Column("default_locale", TEXT, "Default locale of the extension."),
        Column("current_locale", TEXT, "Current locale named by the manifest."),
        Column("update_url", TEXT, "URL the browser checks for updates."),
        Column("author", TEXT, "Author named by the manifest."),
        Column("persistent", INTEGER, "1 if the background page is persistent, else 0."),
        Column("path", TEXT, "Directory of the unpacked extension."),
        Column("permissions", TEXT, "Permissions the extension requests, comma separated."),
        Column("permissions_json", TEXT, "Permissions as a JSON array.", hidden=True),
        Column("optional_permissions", TEXT, "Optional permissions, comma separated."),
        Column("optional_permissions_json", TEXT, "Optional permissions as a JSON array.", hidden=True),
        Column("manifest_hash", TEXT, "SHA-256 of the manifest.json file."),
        Column(
            "referenced", BIGINT, "1 if the profile preferences reference the extension, 0 if only its folder exists."
        ),
        Column("from_webstore", TEXT, "'true' if installed from the web store, as the preferences say."),
        Column("state", TEXT, "Enabled state from the preferences (1 enabled, 0 disabled)."),
        Column("install_time", TEXT, "Install time as Chrome stores it (microseconds since 1601)."),
        Column("install_timestamp", BIGINT, "Install time, seconds since the Unix epoch."),
        Column("manifest_json", TEXT, "The manifest, re-encoded as compact JSON.", hidden=True),
        Column("key", TEXT, "The manifest's public key, base64.", hidden=True),
    ],
    examples=("SELECT uid, browser_type, name, identifier, version FROM chrome_extensions",),
    cost=100,
)
def gen_chrome_extensions(ctx):
    yield from browsers.chrome_extension_rows(_homes(ctx))


@table(
    "opera_extensions",
    "Extensions installed in the Opera browser of every user.",
    [
        Column("uid", BIGINT, "User ID of the profile's owner.", index=True),
        Column("name", TEXT, "Extension name, localized."),
        Column("identifier", TEXT, "Extension ID."),
        Column("version", TEXT, "Extension version."),
        Column("description", TEXT, "Extension description, localized."),
        Column("locale", TEXT, "Default locale of the extension."),
        Column("update_url", TEXT, "URL Opera checks for updates."),
        Column("author", TEXT, "Author named by the manifest."),
        Column("persistent", INTEGER, "1 if the background page is persistent, else 0."),
        Column("path", TEXT, "Directory of the unpacked extension."),
    ],
    examples=("SELECT uid, name, identifier, version FROM opera_extensions",),
    cost=20,
)
def gen_opera_extensions(ctx):
    yield from browsers.opera_extension_rows(_homes(ctx))


@table(
    "firefox_addons",
    "Add-ons (extensions, themes, dictionaries) in every user's Firefox profiles.",
    [
        Column("uid", BIGINT, "User ID of the profile's owner.", additional=True),
        Column("name", TEXT, "Add-on name."),
        Column("identifier", TEXT, "Add-on ID.", index=True),
        Column("creator", TEXT, "Add-on author."),
        Column("type", TEXT, "Add-on type: extension, theme, locale, dictionary..."),
        Column("version", TEXT, "Add-on version."),
        Column("description", TEXT, "Add-on description."),
        Column("source_url", TEXT, "URL the add-on was installed from."),
        Column("visible", INTEGER, "1 if shown in the add-ons manager."),
        Column("active", INTEGER, "1 if the add-on is running."),
        Column("disabled", INTEGER, "1 if disabled by the user, the application or a soft block."),
        Column("autoupdate", INTEGER, "Background update setting (0 off, 1 default, 2 on)."),
        Column("location", TEXT, "Install location (app-profile, app-system-defaults, ...)."),
        Column("path", TEXT, "Path of the add-on's file or directory."),
    ],
    examples=("SELECT uid, name, identifier, version, active FROM firefox_addons",),
    cost=100,
)
def gen_firefox_addons(ctx):
    ids = ctx.eq("identifier")
    for row in browsers.firefox_addon_rows(_homes(ctx)):
        if ids is None or row["identifier"] in ids:
            yield row
