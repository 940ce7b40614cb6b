"""Extensions users installed into their editors and browsers: VS Code (and its forks),
JetBrains IDE plugins, and the content scripts of Chromium-family extensions.

Rows are built from (uid, home) pairs, so tests point them at a home in a tmp dir.
"""

from __future__ import annotations

import json
import os
import re

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, table
from ._common import lazy_module

accounts = lazy_module("streamq.host.accounts")
browsers = lazy_module("streamq.host.browsers")

# (edition, extensions directory relative to the home)
VSCODE_EDITIONS = (
    ("vscode", ".vscode/extensions"),
    ("vscode_insiders", ".vscode-insiders/extensions"),
    ("vscodium", ".vscode-oss/extensions"),
    ("vscode_server", ".vscode-server/extensions"),
    ("cursor", ".cursor/extensions"),
    ("windsurf", ".windsurf/extensions"),
)
_MAX_JSON = 32 << 20


def _load_json(path: str):
    try:
        if os.path.getsize(path) > _MAX_JSON:
            return None
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8-sig", "replace"))
    except (OSError, ValueError):
        return None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def vscode_rows(uid: int, home: str):
    """extensions.json of each edition: VS Code's own record of what it installed."""
    for edition, relative in VSCODE_EDITIONS:
        entries = _load_json(os.path.join(home, relative, "extensions.json"))
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            ident = entry.get("identifier") if isinstance(entry.get("identifier"), dict) else {}
            meta = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
            location = entry.get("location")
            path = (location.get("fsPath") or location.get("path")) if isinstance(location, dict) else _str(location)
            installed = meta.get("installedTimestamp")
            yield {
                "name": _str(ident.get("id")),
                "uuid": _str(ident.get("uuid")),
                "version": _str(entry.get("version")),
                "path": path,
                "publisher": _str(meta.get("publisherDisplayName")),
                "publisher_id": _str(meta.get("publisherId")),
                "installed_at": int(installed) // 1000 if isinstance(installed, (int, float)) else None,
                "prerelease": int(bool(meta.get("isPreReleaseVersion") or meta.get("preRelease"))),
                "uid": uid,
                "vscode_edition": edition,
            }


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
        yield from vscode_rows(uid, home)


# --- JetBrains ----------------------------------------------------------------------------

# Config directory prefix -> product_type, longest first so "PyCharmCE" wins over "PyCharm".
JETBRAINS_PRODUCTS = (
    ("IntelliJIdea", "intellij_idea"),
    ("IdeaIC", "intellij_idea_community"),
    ("PyCharmCE", "pycharm_community"),
    ("PyCharm", "pycharm"),
    ("WebStorm", "webstorm"),
    ("PhpStorm", "phpstorm"),
    ("GoLand", "goland"),
    ("CLion", "clion"),
    ("Rider", "rider"),
    ("RubyMine", "rubymine"),
    ("DataGrip", "datagrip"),
    ("RustRover", "rustrover"),
    ("AndroidStudio", "android_studio"),
    ("Aqua", "aqua"),
    ("DataSpell", "dataspell"),
)
_PLUGIN_XML = re.compile(rb"<(name|version|vendor)\b[^>]*>(.*?)</\1>", re.S)


def plugin_descriptor(plugin_dir: str) -> dict[str, str] | None:
    """name, version, vendor from META-INF/plugin.xml, in the plugin's jars or unpacked."""
    import zipfile

    xml = None
    unpacked = os.path.join(plugin_dir, "META-INF", "plugin.xml")
    if os.path.isfile(unpacked):
        with open(unpacked, "rb") as f:
            xml = f.read(1 << 20)
    lib = os.path.join(plugin_dir, "lib")
    for jar in sorted(os.listdir(lib)) if xml is None and os.path.isdir(lib) else ():
        if not jar.endswith(".jar"):
            continue
        try:
            with zipfile.ZipFile(os.path.join(lib, jar)) as z:
                xml = z.read("META-INF/plugin.xml")[: 1 << 20]
                break
        except (KeyError, OSError, zipfile.BadZipFile):
            continue
    if xml is None:
        return None
    found: dict[str, str] = {}
    for tag, value in _PLUGIN_XML.findall(xml):
        found.setdefault(tag.decode(), re.sub(r"\s+", " ", value.decode("utf-8", "replace")).strip())
    return found


def _product(directory: str) -> str | None:
    for prefix, product in JETBRAINS_PRODUCTS:
        if directory.startswith(prefix) and directory[len(prefix) : len(prefix) + 1].isdigit():
            return product
    return None


def jetbrains_rows(uid: int, home: str):
    base = os.path.join(home, ".local/share/JetBrains")
    for directory in browsers.subdirectories(base):
        product = _product(directory)
        if product is None:
            continue
        for plugin in browsers.subdirectories(os.path.join(base, directory)):
            path = os.path.join(base, directory, plugin)
            info = plugin_descriptor(path) if os.path.isdir(path) else None
            if info is not None:
                yield {
                    "product_type": product,
                    "uid": uid,
                    "name": info.get("name"),
                    "version": info.get("version"),
                    "vendor": info.get("vendor"),
                    "path": path,
                }


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
        yield from jetbrains_rows(uid, home)


# --- Chromium content scripts -------------------------------------------------------------


def content_script_rows(homes):
    for ext in browsers.chrome_extension_rows(homes):
        try:
            manifest = json.loads(ext.get("manifest_json") or "{}")
        except ValueError:
            continue
        scripts = manifest.get("content_scripts") if isinstance(manifest, dict) else None
        for entry in scripts if isinstance(scripts, list) else ():
            if not isinstance(entry, dict):
                continue
            files = [s for s in entry.get("js") or () if isinstance(s, str)]
            matches = [m for m in entry.get("matches") or () if isinstance(m, str)]
            for script in files:
                for match in matches or [None]:
                    yield {
                        "browser_type": ext["browser_type"],
                        "uid": ext["uid"],
                        "identifier": ext["identifier"],
                        "version": ext["version"],
                        "script": script,
                        "match": match,
                        "profile_path": ext["profile_path"],
                        "path": ext["path"],
                        "referenced": ext["referenced"],
                    }


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
    yield from content_script_rows(accounts.user_homes(ctx.eq("uid")))
