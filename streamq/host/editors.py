"""What users installed into their editors, read from their homes: VS Code's (and its forks')
extensions.json, JetBrains plugins' META-INF/plugin.xml, and the content scripts that
Chromium-family extensions declare in their manifests.

The readers take a (uid, home) pair, so tests point them at a home in a tmp dir.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator

from . import browsers, dirs
from .safefile import read_regular

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
    data = read_regular(path, max_bytes=_MAX_JSON)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8-sig", "replace"))
    except ValueError:
        return None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def vscode_rows(uid: int, home: str) -> Iterator[dict]:
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


def jetbrains_rows(uid: int, home: str) -> Iterator[dict]:
    base = os.path.join(home, ".local/share/JetBrains")
    for directory in dirs.subdirectories(base):
        product = _product(directory)
        if product is None:
            continue
        for plugin in dirs.subdirectories(os.path.join(base, directory)):
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


# --- Chromium content scripts -------------------------------------------------------------


def content_script_rows(homes: Iterable[tuple[int, str]]) -> Iterator[dict]:
    """One row per script and URL pattern of each extension's manifest content_scripts."""
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
