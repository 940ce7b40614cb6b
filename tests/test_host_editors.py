"""The readers behind vscode_extensions, jetbrains_plugins and chrome_extension_content_scripts,
on homes laid out as the editors write them."""

from __future__ import annotations

import json
import zipfile

from streamq.host import editors


def test_vscode_extensions_from_extensions_json(tmp_path):
    ext_dir = tmp_path / ".vscode" / "extensions"
    ext_dir.mkdir(parents=True)
    record = [
        {
            "identifier": {"id": "ms-python.python", "uuid": "f1f59ae4-9318-4f3c-a9b5-81b2eaa5f8a5"},
            "version": "2024.8.1",
            "location": {
                "$mid": 1,
                "fsPath": f"{ext_dir}/ms-python.python-2024.8.1",
                "path": f"{ext_dir}/ms-python.python-2024.8.1",
                "scheme": "file",
            },
            "relativeLocation": "ms-python.python-2024.8.1",
            "metadata": {
                "installedTimestamp": 1717171717123,
                "publisherId": "998b010b-e2af-44a5-a6cd-0b5fd3b9b6f8",
                "publisherDisplayName": "Microsoft",
                "isPreReleaseVersion": False,
            },
        }
    ]
    (ext_dir / "extensions.json").write_text(json.dumps(record))
    (tmp_path / ".cursor" / "extensions").mkdir(parents=True)
    (tmp_path / ".cursor" / "extensions" / "extensions.json").write_text(
        json.dumps([{**record[0], "version": "2024.9.0"}])
    )
    rows = list(editors.vscode_rows(1000, str(tmp_path)))
    assert rows[0] == {
        "name": "ms-python.python",
        "uuid": "f1f59ae4-9318-4f3c-a9b5-81b2eaa5f8a5",
        "version": "2024.8.1",
        "path": f"{ext_dir}/ms-python.python-2024.8.1",
        "publisher": "Microsoft",
        "publisher_id": "998b010b-e2af-44a5-a6cd-0b5fd3b9b6f8",
        "installed_at": 1717171717,
        "prerelease": 0,
        "uid": 1000,
        "vscode_edition": "vscode",
    }
    assert [(r["vscode_edition"], r["version"]) for r in rows[1:]] == [("cursor", "2024.9.0")]


def test_jetbrains_plugins_from_jars_and_unpacked(tmp_path):
    base = tmp_path / ".local/share/JetBrains"
    lib = base / "PyCharmCE2024.1" / "rainbow-brackets" / "lib"
    lib.mkdir(parents=True)
    with zipfile.ZipFile(lib / "rainbow-brackets.jar", "w") as z:
        z.writestr(
            "META-INF/plugin.xml",
            "<idea-plugin><id>izhangzhihao.rainbow.brackets</id><name>Rainbow Brackets</name>"
            '<version>2024.2.1</version><vendor email="x@y.z" url="https://x">izhangzhihao</vendor></idea-plugin>',
        )
    unpacked = base / "GoLand2023.3" / "local-plugin" / "META-INF"
    unpacked.mkdir(parents=True)
    (unpacked / "plugin.xml").write_text(
        "<idea-plugin><name>Local</name><version>0.1</version><vendor>me</vendor></idea-plugin>"
    )
    (base / "consentOptions").mkdir()  # not an IDE directory
    rows = sorted(editors.jetbrains_rows(1000, str(tmp_path)), key=lambda r: r["product_type"])
    assert [(r["product_type"], r["name"], r["version"], r["vendor"]) for r in rows] == [
        ("goland", "Local", "0.1", "me"),
        ("pycharm_community", "Rainbow Brackets", "2024.2.1", "izhangzhihao"),
    ]
    assert rows[1]["path"] == str(base / "PyCharmCE2024.1" / "rainbow-brackets")


def test_chrome_content_scripts(tmp_path):
    ext = tmp_path / ".config/google-chrome/Default/Extensions/abcdefghijklmnopabcdefghijklmnop/1.2_0"
    ext.mkdir(parents=True)
    (tmp_path / ".config/google-chrome/Default/Preferences").write_text("{}")
    manifest = {
        "name": "Helper",
        "version": "1.2",
        "manifest_version": 3,
        "content_scripts": [
            {"matches": ["https://*.example.com/*", "<all_urls>"], "js": ["content.js", "lib.js"]},
            {"matches": ["https://mail.test/*"], "css": ["only.css"]},
        ],
    }
    (ext / "manifest.json").write_text(json.dumps(manifest))
    rows = list(editors.content_script_rows([(1000, str(tmp_path))]))
    assert [(r["script"], r["match"]) for r in rows] == [
        ("content.js", "https://*.example.com/*"),
        ("content.js", "<all_urls>"),
        ("lib.js", "https://*.example.com/*"),
        ("lib.js", "<all_urls>"),
    ]
    assert {(r["browser_type"], r["identifier"], r["version"], r["uid"]) for r in rows} == {
        ("chrome", "abcdefghijklmnopabcdefghijklmnop", "1.2", 1000)
    }
