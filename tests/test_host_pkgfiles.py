"""host/pkgfiles: yum.conf and .repo files written by the test."""

from __future__ import annotations

from streamq.host import pkgfiles


def test_yum_sources_from_conf_and_repo_files(tmp_path):
    etc = tmp_path / "etc"
    (etc / "repos").mkdir(parents=True)
    (etc / "yum.conf").write_text(
        "[main]\ngpgcheck=1\nreposdir=/etc/repos\n\n[inline]\nname=Inline repo\nbaseurl=http://mirror.test/inline\n"
    )
    (etc / "repos" / "base.repo").write_text(
        "[baseos]\nname=BaseOS $releasever\nmetalink=https://mirrors.test/metalink?repo=baseos\n"
        "enabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/KEY\n\n[debug]\nname=Debug\nmirrorlist=http://m.test/list\nenabled=0\n"
    )
    (etc / "repos" / "notes.txt").write_text("[ignored]\nname=x\n")
    rows = pkgfiles.yum_source_rows(str(tmp_path))
    assert [(r["name"], r["source"]) for r in rows] == [
        ("Inline repo", "/etc/yum.conf"),
        ("BaseOS $releasever", "/etc/repos/base.repo"),
        ("Debug", "/etc/repos/base.repo"),
    ]
    assert (
        rows[1]["metalink"] == "https://mirrors.test/metalink?repo=baseos"
        and rows[1]["gpgkey"] == "file:///etc/pki/rpm-gpg/KEY"
    )
    assert (rows[2]["enabled"], rows[2]["mirrorlist"], rows[2]["baseurl"]) == ("0", "http://m.test/list", None)
