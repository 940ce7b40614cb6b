"""host/userfiles: shell history, crontab and sudoers parsers on bytes and files the tests write."""

from __future__ import annotations

import textwrap

from streamq.host import userfiles

CRON_TEXT = """\
# streamq test crontab
MAILTO = root
PATH=/usr/bin:/bin
*/5 * * * * root /usr/bin/true   --flag  "two  spaces"
@reboot root /usr/bin/streamq-test-boot
0 4 1 jan mon nobody echo monthly
bad line
"""


def test_unmetafy_utf8():
    text = "é→€".encode()
    metafied = bytearray()
    for b in text:  # zsh's metafy(): bytes 0x83..0xa2 are escaped
        metafied += bytes([0x83, b ^ 0x20]) if 0x83 <= b <= 0xA2 else bytes([b])
    assert userfiles.unmetafy(bytes(metafied)) == text


def test_parse_crontab():
    assert list(userfiles.parse_crontab(CRON_TEXT.encode())) == [
        (None, "*/5", "*", "*", "*", "*", 'root /usr/bin/true   --flag  "two  spaces"'),
        ("@reboot", None, None, None, None, None, "root /usr/bin/streamq-test-boot"),
        (None, "0", "4", "1", "jan", "mon", "nobody echo monthly"),
    ]


def test_sudoers_includes(tmp_path):
    d = tmp_path / "sudoers.d"
    d.mkdir()
    (d / "10-ops").write_text("%ops ALL=(ALL)   NOPASSWD: ALL\n")
    (d / "20-old.dpkg-old").write_text("skipped ALL=(ALL) ALL\n")
    (d / "30-backup~").write_text("skipped ALL=(ALL) ALL\n")
    (tmp_path / "extra").write_text("Defaults:bob !requiretty\n@include sudoers\n")  # a loop, cut
    main = tmp_path / "sudoers"
    main.write_text(
        textwrap.dedent(
            """\
            # comment
            Defaults\tenv_reset
            Cmnd_Alias SHUT = /sbin/halt, \\
                /sbin/reboot
            root ALL=(ALL:ALL) ALL
            #includedir sudoers.d
            @include extra
            #include
            """
        )
    )
    rows = list(userfiles.sudoers_rows(str(main)))
    src = str(main)
    assert rows == [
        (src, "Defaults", "env_reset"),
        (src, "Cmnd_Alias", "SHUT = /sbin/halt, /sbin/reboot"),
        (src, "root", "ALL=(ALL:ALL) ALL"),
        (src, "includedir", str(d)),
        (str(d / "10-ops"), "%ops", "ALL=(ALL) NOPASSWD: ALL"),
        (src, "@include", str(tmp_path / "extra")),
        (str(tmp_path / "extra"), "Defaults:bob", "!requiretty"),
        (str(tmp_path / "extra"), "@include", src),
    ]
