"""Browser add-ons in a user's home: Chromium-family extensions (Chrome, Brave, Edge, Opera...) and Firefox add-ons.

The readers take ``(uid, home)`` pairs (:func:`streamq.host.accounts.user_homes`
gives them for every local user), so tests point them at a home in a tmp dir.
Profiles the user never created simply yield nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator

from ..text import fsdecode
from . import dirs, procfs

Home = tuple[int, str]


# (browser_type, profile root relative to the home), as osquery names them on Linux.
CHROME_BROWSERS = (
    ("chrome", ".config/google-chrome"),
    ("chrome", ".config/google-chrome-beta"),
    ("chrome", ".config/google-chrome-unstable"),
    ("brave", ".config/BraveSoftware/Brave-Browser"),
    ("chromium", ".config/chromium"),
    ("chromium", "snap/chromium/common/chromium"),
    ("yandex", ".config/yandex-browser-beta"),
    ("yandex", ".config/yandex-browser"),
    ("edge", ".config/microsoft-edge"),
    ("edge_beta", ".config/microsoft-edge-beta"),
    ("opera", ".config/opera"),
)


OPERA_BROWSERS = (
    ("opera", ".config/opera"),
    ("opera", ".config/opera-beta"),
    ("opera", ".config/opera-developer"),
)


_PREFERENCES = ("Preferences", "Secure Preferences")


def chrome_profiles(home: str, browsers=CHROME_BROWSERS) -> Iterator[tuple[str, str]]:
    """(browser_type, profile directory) for each profile under ``home``.

    A browser root is a profile itself when it holds a Preferences file
    (Opera), otherwise its subdirectories that do are ("Default", "Profile 1").
    """
    for browser, rel in browsers:
        root = f"{home.rstrip('/')}/{rel}"
        if _is_profile(root):
            yield browser, root
            continue
        try:
            subdirs = sorted(os.listdir(root))
        except OSError:
            continue
        for sub in subdirs:
            path = f"{root}/{fsdecode(sub)}"
            if _is_profile(path):
                yield browser, path


def _is_profile(path: str) -> bool:
    return any(os.path.isfile(f"{path}/{name}") for name in _PREFERENCES)


def _load_json(path: str):
    data = procfs.read_or_none(path)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def chrome_extensions_of_profile(profile: str) -> list[dict]:
    """Extensions of one profile: the Extensions/<id>/<version> folders plus those the preferences reference.

    Each dict has the manifest-derived fields, ``path``, ``referenced`` and the
    profile settings (``referenced_identifier``, ``state``, ``from_webstore``,
    ``install_time``) when the preferences mention it.
    """
    settings: dict[str, tuple[str, dict]] = {}  # extension path -> (id, settings object)
    for name in _PREFERENCES:
        prefs = _load_json(f"{profile}/{name}")
        ext = prefs.get("extensions") if isinstance(prefs, dict) else None
        entries = (ext.get("settings") or ext.get("opsettings")) if isinstance(ext, dict) else None
        if not isinstance(entries, dict):
            continue
        for ext_id, obj in entries.items():
            if isinstance(obj, dict) and isinstance(obj.get("path"), str):
                path = obj["path"] if obj["path"].startswith("/") else f"{profile}/Extensions/{obj['path']}"
                settings.setdefault(os.path.normpath(path), (ext_id, obj))
    paths: dict[str, str | None] = {}  # extension path -> id from the folder name
    ext_root = f"{profile}/Extensions"
    for ext_id in dirs.subdirectories(ext_root):
        for version in dirs.subdirectories(f"{ext_root}/{ext_id}"):
            paths[os.path.normpath(f"{ext_root}/{ext_id}/{version}")] = ext_id
    for path in settings:
        paths.setdefault(path, None)
    rows = []
    for path, folder_id in paths.items():
        ext = chrome_extension_from_dir(path)
        if ext is None:
            continue
        ref = settings.get(path)
        ext["referenced"] = int(ref is not None)
        ext.update(
            dict.fromkeys(("referenced_identifier", "state", "from_webstore", "install_time", "install_timestamp"))
        )
        if ref is not None:
            ref_id, obj = ref
            ext["referenced_identifier"] = ref_id
            ext["state"] = _setting_text(obj.get("state"))
            ext["from_webstore"] = _setting_text(obj.get("from_webstore"))
            ext["install_time"] = _setting_text(obj.get("install_time") or obj.get("first_install_time"))
            ext["install_timestamp"] = webkit_to_unix(ext["install_time"])
        ext["identifier"] = ext.pop("key_identifier") or (ref[0] if ref else folder_id)
        rows.append(ext)
    return rows


def _setting_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def webkit_to_unix(value: str | None) -> int | None:
    """Chrome's microseconds since 1601-01-01 as unix seconds, or None."""
    try:
        seconds = int(value) // 1_000_000 - 11_644_473_600
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def chrome_extension_from_dir(path: str) -> dict | None:
    """Manifest-derived fields of one unpacked extension directory, or None without a readable manifest."""
    import hashlib

    raw = procfs.read_or_none(f"{path}/manifest.json")
    if raw is None:
        return None
    try:
        manifest = json.loads(raw.decode("utf-8-sig", "replace"))
    except ValueError:
        return None
    if not isinstance(manifest, dict):
        return None
    locale = manifest.get("default_locale") if isinstance(manifest.get("default_locale"), str) else None
    messages = _locale_messages(path, locale or manifest.get("current_locale") or "en")

    def text(key: str) -> str | None:
        value = manifest.get(key)
        if isinstance(value, dict) and key == "author":
            value = value.get("email") or value.get("name")
        if not isinstance(value, str):
            return None
        return localize(value, messages)

    background = manifest.get("background")
    persistent = background.get("persistent") if isinstance(background, dict) else None
    permissions = manifest.get("permissions")
    optional = manifest.get("optional_permissions")
    key = manifest.get("key") if isinstance(manifest.get("key"), str) else None
    return {
        "name": text("name"),
        "version": text("version"),
        "description": text("description"),
        "default_locale": locale,
        "current_locale": text("current_locale"),
        "update_url": text("update_url"),
        "author": text("author"),
        "persistent": int(persistent is True or str(persistent).lower() == "true"),
        "path": path,
        "permissions": _join_strings(permissions),
        "permissions_json": json.dumps(permissions) if permissions is not None else None,
        "optional_permissions": _join_strings(optional),
        "optional_permissions_json": json.dumps(optional) if optional is not None else None,
        "manifest_hash": hashlib.sha256(raw).hexdigest(),
        "manifest_json": json.dumps(manifest, separators=(",", ":"), ensure_ascii=False),
        "key": key,
        "key_identifier": extension_id_from_key(key),
    }


def _join_strings(value) -> str | None:
    if not isinstance(value, list):
        return None
    return ", ".join(v for v in value if isinstance(v, str))


def _locale_messages(path: str, locale: str) -> dict[str, str]:
    doc = _load_json(f"{path}/_locales/{locale}/messages.json")
    if not isinstance(doc, dict):
        return {}
    # Chrome matches message names case-insensitively.
    return {
        k.lower(): v["message"] for k, v in doc.items() if isinstance(v, dict) and isinstance(v.get("message"), str)
    }


def localize(value: str, messages: dict[str, str]) -> str:
    """Resolve a ``__MSG_name__`` placeholder from the extension's messages; other strings pass through."""
    if value.startswith("__MSG_") and value.endswith("__"):
        return messages.get(value[6:-2].lower(), value)
    return value


def extension_id_from_key(key: str | None) -> str | None:
    """Chrome's extension ID for a manifest ``key``: sha256 of the DER key, first 32 hex digits mapped to a-p."""
    if not key:
        return None
    import base64
    import binascii
    import hashlib

    try:
        der = base64.b64decode(key, validate=False)
    except (binascii.Error, ValueError):
        return None
    if not der:
        return None
    digest = hashlib.sha256(der).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


def _profile_name(profile: str) -> str | None:
    for name in _PREFERENCES:
        prefs = _load_json(f"{profile}/{name}")
        if isinstance(prefs, dict) and isinstance(prefs.get("profile"), dict):
            value = prefs["profile"].get("name")
            if isinstance(value, str) and value:
                return value
    return None


def chrome_extension_rows(homes: Iterable[Home], browsers=CHROME_BROWSERS) -> Iterator[dict]:
    """chrome_extensions rows for the given (uid, home) pairs."""
    for uid, home in homes:
        for browser, profile in chrome_profiles(home, browsers):
            profile_name = _profile_name(profile)
            for ext in chrome_extensions_of_profile(profile):
                ext.pop("key_identifier", None)
                ext.update(browser_type=browser, uid=uid, profile=profile_name, profile_path=profile)
                yield ext


def opera_extension_rows(homes: Iterable[Home]) -> Iterator[dict]:
    """opera_extensions rows for the given (uid, home) pairs."""
    for row in chrome_extension_rows(homes, OPERA_BROWSERS):
        row["locale"] = row["default_locale"]
        yield row


FIREFOX_ROOTS = (".mozilla/firefox", "snap/firefox/common/.mozilla/firefox")


def firefox_profiles(home: str) -> list[str]:
    """Profile directories (those with an extensions.json) under ``home``."""
    profiles = []
    for rel in FIREFOX_ROOTS:
        root = f"{home.rstrip('/')}/{rel}"
        profiles += [f"{root}/{d}" for d in dirs.subdirectories(root) if os.path.isfile(f"{root}/{d}/extensions.json")]
    return profiles


def firefox_addons_of_profile(profile: str) -> list[dict]:
    """Rows for the add-ons listed in a profile's extensions.json (without uid)."""
    doc = _load_json(f"{profile}/extensions.json")
    addons = doc.get("addons") if isinstance(doc, dict) else None
    if not isinstance(addons, list):
        return []
    rows = []
    for addon in addons:
        if not isinstance(addon, dict):
            continue
        locale = addon.get("defaultLocale") if isinstance(addon.get("defaultLocale"), dict) else {}
        disabled = any(addon.get(k) is True for k in ("softDisabled", "softDisable", "appDisabled", "userDisabled"))
        rows.append(
            {
                "name": _str(locale.get("name")),
                "identifier": _str(addon.get("id")),
                "creator": _str(locale.get("creator")),
                "type": _str(addon.get("type")),
                "version": _str(addon.get("version")),
                "description": _str(locale.get("description")),
                "source_url": _str(addon.get("sourceURI")),
                "visible": _flag(addon.get("visible")),
                "active": _flag(addon.get("active")),
                "disabled": int(disabled),
                "autoupdate": _flag(addon.get("applyBackgroundUpdates")),
                "location": _str(addon.get("location")),
                "path": _str(addon.get("path") or addon.get("descriptor")),
            }
        )
    return rows


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _flag(value) -> int | None:
    if isinstance(value, (bool, int)):
        return int(value)
    return None


def firefox_addon_rows(homes: Iterable[Home]) -> Iterator[dict]:
    """firefox_addons rows for the given (uid, home) pairs."""
    for uid, home in homes:
        for profile in firefox_profiles(home):
            for row in firefox_addons_of_profile(profile):
                row["uid"] = uid
                yield row
