"""host/browsers: Chromium-family and Firefox profiles built in a tmp home, read as osquery does."""

from __future__ import annotations

import base64
import hashlib
import json

from streamq.host import browsers
from streamq.sql import schema
from streamq.tables import load_builtin


def chrome_id(key_b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(key_b64)).hexdigest()[:32]
    return digest.translate(str.maketrans("0123456789abcdef", "abcdefghijklmnop"))


def make_chrome_profile(home, rel=".config/google-chrome/Default", prefs_name="Preferences", with_profile_name=True):
    profile = home / rel
    profile.mkdir(parents=True)
    key = base64.b64encode(b"0\x82\x01\x22fake-der-public-key").decode()
    ext = profile / "Extensions" / "abcdefghijklmnopabcdefghijklmnop" / "1.2_0"
    ext.mkdir(parents=True)
    manifest = {
        "name": "__MSG_appName__",
        "version": "1.2",
        "description": "Plain description",
        "default_locale": "en",
        "update_url": "https://clients2.google.com/service/update2/crx",
        "author": {"email": "dev@example.org"},
        "background": {"persistent": True},
        "permissions": ["tabs", "storage", {"usbDevices": []}],
        "key": key,
    }
    (ext / "manifest.json").write_text(json.dumps(manifest))
    (ext / "_locales" / "en").mkdir(parents=True)
    (ext / "_locales" / "en" / "messages.json").write_text(json.dumps({"APPNAME": {"message": "Demo Extension"}}))
    orphan = profile / "Extensions" / "ponmlkjihgfedcbaponmlkjihgfedcba" / "0.1_0"
    orphan.mkdir(parents=True)
    (orphan / "manifest.json").write_text(json.dumps({"name": "Orphan", "version": "0.1"}))
    prefs = {
        "extensions": {
            "settings": {
                "abcdefghijklmnopabcdefghijklmnop": {
                    "path": "abcdefghijklmnopabcdefghijklmnop/1.2_0",
                    "state": 1,
                    "from_webstore": True,
                    "install_time": "13300000000000000",
                }
            }
        }
    }
    if with_profile_name:
        prefs["profile"] = {"name": "Person 1"}
    (profile / prefs_name).write_text(json.dumps(prefs))
    return profile, ext, orphan, key


def test_chrome_extensions_from_a_tmp_home(tmp_path):
    profile, ext, orphan, key = make_chrome_profile(tmp_path)
    rows = sorted(browsers.chrome_extension_rows([(1234, str(tmp_path))]), key=lambda r: r["name"])
    assert [r["name"] for r in rows] == ["Demo Extension", "Orphan"]
    demo, lone = rows
    assert demo["identifier"] == chrome_id(key)
    assert (demo["browser_type"], demo["uid"], demo["profile"], demo["profile_path"]) == (
        "chrome",
        1234,
        "Person 1",
        str(profile),
    )
    assert (demo["referenced"], demo["referenced_identifier"], demo["state"], demo["from_webstore"]) == (
        1,
        "abcdefghijklmnopabcdefghijklmnop",
        "1",
        "true",
    )
    assert demo["install_timestamp"] == 13300000000000000 // 1_000_000 - 11644473600
    assert (demo["author"], demo["persistent"], demo["permissions"], demo["path"]) == (
        "dev@example.org",
        1,
        "tabs, storage",
        str(ext),
    )
    assert demo["manifest_hash"] == hashlib.sha256((ext / "manifest.json").read_bytes()).hexdigest()
    assert json.loads(demo["manifest_json"])["key"] == key and demo["key"] == key
    assert (lone["referenced"], lone["identifier"], lone["persistent"], lone["state"]) == (
        0,
        "ponmlkjihgfedcbaponmlkjihgfedcba",
        0,
        None,
    )
    assert lone["path"] == str(orphan)


def test_opera_extensions_from_a_tmp_home(tmp_path):
    _profile, ext, _orphan, key = make_chrome_profile(
        tmp_path, ".config/opera", "Secure Preferences", with_profile_name=False
    )
    rows = sorted(browsers.opera_extension_rows([(42, str(tmp_path))]), key=lambda r: r["name"])
    assert [(r["uid"], r["name"], r["version"]) for r in rows] == [(42, "Demo Extension", "1.2"), (42, "Orphan", "0.1")]
    assert (rows[0]["identifier"], rows[0]["locale"], rows[0]["path"]) == (chrome_id(key), "en", str(ext))
    load_builtin()  # the declaration to compare with, also when this file runs alone
    spec = schema.REGISTRY["opera_extensions"]
    assert {k for r in rows for k in r} >= set(spec.column_names)
    # Opera is a Chromium browser: osquery lists it in chrome_extensions too
    assert {r["browser_type"] for r in browsers.chrome_extension_rows([(42, str(tmp_path))])} == {"opera"}


def test_firefox_addons_from_a_tmp_home(tmp_path):
    profile = tmp_path / ".mozilla" / "firefox" / "abcd1234.default-release"
    profile.mkdir(parents=True)
    addons = [
        {
            "id": "uBlock0@raymondhill.net",
            "type": "extension",
            "version": "1.50.0",
            "defaultLocale": {"name": "uBlock Origin", "creator": "Raymond Hill", "description": "Blocker"},
            "sourceURI": "https://addons.mozilla.org/x.xpi",
            "visible": True,
            "active": True,
            "userDisabled": False,
            "applyBackgroundUpdates": 1,
            "location": "app-profile",
            "path": str(profile / "extensions" / "uBlock0@raymondhill.net.xpi"),
        },
        {
            "id": "off@example.org",
            "type": "theme",
            "version": "1",
            "defaultLocale": {"name": "Off"},
            "active": False,
            "userDisabled": True,
        },
    ]
    (profile / "extensions.json").write_text(json.dumps({"schemaVersion": 35, "addons": addons}))
    (tmp_path / ".mozilla" / "firefox" / "no-extensions-file").mkdir()
    rows = sorted(browsers.firefox_addon_rows([(7, str(tmp_path))]), key=lambda r: r["identifier"])
    assert [r["identifier"] for r in rows] == ["off@example.org", "uBlock0@raymondhill.net"]
    off, ublock = rows
    assert ublock == {
        "uid": 7,
        "name": "uBlock Origin",
        "identifier": "uBlock0@raymondhill.net",
        "creator": "Raymond Hill",
        "type": "extension",
        "version": "1.50.0",
        "description": "Blocker",
        "source_url": "https://addons.mozilla.org/x.xpi",
        "visible": 1,
        "active": 1,
        "disabled": 0,
        "autoupdate": 1,
        "location": "app-profile",
        "path": addons[0]["path"],
    }
    assert (off["active"], off["disabled"], off["visible"]) == (0, 1, None)
