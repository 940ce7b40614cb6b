"""host/unitfiles: systemd's unit file rules (enablement, masking, aliases) on a tree the test builds."""

from __future__ import annotations

from streamq.host import unitfiles


def test_unit_files_rules_on_a_constructed_tree(tmp_path):
    lib, etc = tmp_path / "lib", tmp_path / "etc"
    (etc / "multi-user.target.wants").mkdir(parents=True)
    lib.mkdir()
    (lib / "a.service").write_text(
        "[Unit]\nDescription=First \\\n# a comment\n  line\nno equals sign here\n[Service]\nUser=nobody\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    (lib / "b.service").write_text("[Unit]\nDescription=B\n[Install]\nWantedBy=multi-user.target\n")
    (lib / "c.socket").write_text("orphan=1\n[Unit]\nDescription=C\n")
    (lib / "d.service").write_text("[Unit]\nDescription=D\n[Install]\nAlso=c.socket\n")
    (lib / "t@.service").write_text("[Unit]\nDescription=template\n")
    (lib / "e.service").write_text("")
    (lib / "bad.service").mkdir()  # cannot be read as a file
    (etc / "m.service").symlink_to("/dev/null")
    (etc / "alias.service").symlink_to(lib / "b.service")
    (etc / "multi-user.target.wants" / "a.service").symlink_to(lib / "a.service")
    (lib / "README").write_text("not a unit")
    rows = {r["id"]: r for r in unitfiles.unit_rows(dirs=(str(etc), str(lib)), config_dirs=(str(etc),))}
    assert sorted(rows) == ["a.service", "b.service", "bad.service", "c.socket", "d.service", "e.service", "m.service"]
    assert rows["a.service"]["description"] == "First    line"  # systemd keeps the indent of a continuation
    assert rows["a.service"]["user"] == "nobody"
    states = {name: (r["load_state"], r.get("unit_file_state")) for name, r in rows.items()}
    assert states == {
        "a.service": ("loaded", "enabled"),
        "b.service": ("loaded", "enabled"),  # an Alias= link in /etc enables its target
        "bad.service": ("error", None),
        "c.socket": ("loaded", "static"),
        "d.service": ("loaded", "indirect"),
        "e.service": ("masked", "masked"),
        "m.service": ("masked", "masked"),
    }
