"""host/autostart: a boot tree built in a tmp dir (systemd links, SysV, rc.local, XDG autostart, cron @reboot)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import needs_root
from streamq.host import autostart


def _write(path, text: str, mode: int = 0o644, uid: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, uid)


def _link(target: str, path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


@pytest.fixture
def tree():
    """A root directory holding one of each kind of startup item (and broken ones)."""
    root = tempfile.mkdtemp(prefix="streamq-startup-")
    os.chmod(root, 0o755)  # the unprivileged test below walks it as nobody
    r = Path(root)
    lib, etc = r / "lib/systemd/system", r / "etc/systemd/system"
    wants = etc / "multi-user.target.wants"
    _write(lib / "foo.service", "[Unit]\nDescription=Foo\n[Service]\nExecStart=-/usr/bin/foo --bar 1\nUser=nobody\n")
    _write(etc / "foo.service.d/override.conf", "[Service]\nUser=daemon\n")
    _link("/lib/systemd/system/foo.service", wants / "foo.service")
    _write(etc / "local.service", "[Service]\nExecStart=/opt/local/run\n[Install]\nWantedBy=multi-user.target\n")
    _link("../local.service", wants / "local.service")
    _write(lib / "broken.service", "this is not = a unit\n[Service\nExecStart\nnonsense line\n")
    _link("/lib/systemd/system/broken.service", wants / "broken.service")
    _link("/dev/null", etc / "masked.service")
    _link("/etc/systemd/system/masked.service", wants / "masked.service")
    _link("/lib/systemd/system/gone.service", wants / "gone.service")
    (lib / "dir.service").mkdir()  # a "unit file" that cannot be read as one
    _link("/lib/systemd/system/dir.service", wants / "dir.service")
    _write(lib / "getty@.service", "[Service]\nExecStart=/sbin/agetty %I\n")
    _link("/lib/systemd/system/getty@.service", etc / "getty.target.wants/getty@tty1.service")
    _link("/lib/systemd/system/foo.service", etc / "dbus-org.example.service")  # an alias, not a boot link
    _write(lib / "tick.timer", "[Timer]\nOnCalendar=daily\n")
    _link("/lib/systemd/system/tick.timer", etc / "timers.target.wants/tick.timer")

    _write(r / "etc/init.d/svc", "#!/bin/sh\n", 0o755)
    _write(r / "etc/init.d/off", "#!/bin/sh\n", 0o755)
    _write(r / "etc/init.d/README", "not a script\n")
    _link("../init.d/svc", r / "etc/rc2.d/S01svc")
    _link("../init.d/svc", r / "etc/rc0.d/K01svc")
    _link("../init.d/off", r / "etc/rc0.d/K01off")
    _write(r / "etc/rc.local", "#!/bin/sh\ntouch /run/booted\n", 0o755)

    _write(
        r / "etc/xdg/autostart/app.desktop", "[Desktop Entry]\nName=App\nName[de]=Anw\nExec=/usr/bin/app --start %U\n"
    )
    _write(r / "etc/xdg/autostart/hidden.desktop", "[Desktop Entry]\nName=Hidden\nExec=hid\nHidden=true\n")
    _write(
        r / "etc/passwd",
        "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n",
    )
    _write(r / "home/bob", "a file where a home directory should be\n")
    auto = r / "home/alice/.config/autostart"
    _write(auto / "mine.desktop", "[Desktop Entry]\nName=Mine\nExec='/opt/my app/run' -x\n", uid=1000)
    _write(auto / "planted.desktop", "[Desktop Entry]\nName=Planted\nExec=/bin/evil\n", uid=4242)  # not alice's
    _write(auto / "off.desktop", "[Desktop Entry]\nName=Off\nExec=off\nX-GNOME-Autostart-enabled=false\n", uid=1000)
    _write(r / "home/alice/.config/autostart-scripts/boot.sh", "#!/bin/sh\n", 0o755, uid=1000)

    _write(
        r / "etc/crontab",
        "SHELL=/bin/sh\n@reboot root /usr/local/bin/boot-task --now\n17 * * * * root run-parts /etc/cron.hourly\n",
    )
    _write(r / "etc/cron.d/pkg", "@reboot\tdaemon\t/usr/sbin/pkg-reboot\n@daily root /bin/daily\n")
    _write(r / "var/spool/cron/crontabs/alice", "# user crontab\n@reboot /home/alice/bin/start.sh arg\n")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _by_name(rows) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_systemd_links_in_a_tree(tree):
    rows = _by_name(autostart.systemd_items(tree))
    assert set(rows) == {
        "foo.service",
        "local.service",
        "broken.service",
        "masked.service",
        "gone.service",
        "dir.service",
        "getty@tty1.service",
        "tick.timer",
    }
    foo = rows["foo.service"]
    assert foo == {
        "name": "foo.service",
        "path": "/lib/systemd/system/foo.service",
        "args": "/usr/bin/foo --bar 1",
        "type": "systemd unit",
        "source": "/etc/systemd/system/multi-user.target.wants/",
        "status": "enabled",
        "username": "daemon",  # the drop-in wins over the unit file
    }
    assert rows["local.service"]["path"] == "/etc/systemd/system/local.service"
    assert rows["broken.service"]["status"] == "bad-setting"
    assert rows["masked.service"]["status"] == "masked"
    assert rows["gone.service"]["status"] == "not-found" and rows["gone.service"]["path"] is None
    assert rows["dir.service"]["status"] == "error"
    getty = rows["getty@tty1.service"]
    assert (getty["path"], getty["args"], getty["status"]) == (
        "/lib/systemd/system/getty@.service",
        "/sbin/agetty %I",
        "enabled",
    )
    assert (
        rows["tick.timer"]["args"] is None
        and rows["tick.timer"]["source"] == "/etc/systemd/system/timers.target.wants/"
    )


def test_sysv_and_rc_local_in_a_tree(tree):
    rows = _by_name(autostart.initd_items(tree))
    assert set(rows) == {"svc", "off"}  # README is not executable
    assert rows["svc"]["status"] == "enabled" and rows["svc"]["path"] == "/etc/init.d/svc"
    assert rows["off"]["status"] == "disabled"  # only a K link, in runlevel 0
    assert rows["svc"]["source"] == "/etc/init.d/" and rows["svc"]["type"] == "Startup Item"
    [local] = autostart.rc_local_items(tree)
    assert (local["path"], local["status"]) == ("/etc/rc.local", "enabled")
    os.chmod(os.path.join(tree, "etc/rc.local"), 0o644)
    assert [r["status"] for r in autostart.rc_local_items(tree)] == ["disabled"]


def test_xdg_autostart_in_a_tree(tree):
    rows = _by_name(autostart.xdg_items(tree))
    assert set(rows) == {"App", "Hidden", "Mine", "Off", "boot.sh"}  # Planted belongs to someone else
    app = rows["App"]
    assert (app["path"], app["args"], app["status"], app["username"]) == ("/usr/bin/app", "--start %U", "enabled", None)
    assert app["source"] == "/etc/xdg/autostart/"
    assert rows["Hidden"]["status"] == "disabled" and rows["Off"]["status"] == "disabled"
    mine = rows["Mine"]
    assert (mine["path"], mine["args"], mine["username"]) == ("/opt/my app/run", "-x", "alice")
    assert mine["source"] == "/home/alice/.config/autostart/"
    assert rows["boot.sh"]["path"] == "/home/alice/.config/autostart-scripts/boot.sh"


def test_cron_reboot_in_a_tree(tree):
    rows = sorted(autostart.cron_items(tree), key=lambda r: r["source"])
    assert [(r["source"], r["username"], r["path"], r["args"]) for r in rows] == [
        ("/etc/cron.d/pkg", "daemon", "/usr/sbin/pkg-reboot", None),
        ("/etc/crontab", "root", "/usr/local/bin/boot-task", "--now"),
        ("/var/spool/cron/crontabs/alice", "alice", "/home/alice/bin/start.sh", "arg"),
    ]
    assert {r["type"] for r in rows} == {"cron"} and rows[1]["name"] == "boot-task"


def test_whole_tree_keeps_going_past_broken_items(tree):
    rows = list(autostart.startup_items(tree))
    kinds = {r["type"] for r in rows}
    assert kinds == {"systemd unit", "Startup Item", "rc.local", "cron"}
    assert all(set(r) == {"name", "path", "args", "type", "source", "status", "username"} for r in rows)


@needs_root
def test_unreadable_homes_are_skipped(tree):
    """As nobody, alice's home (mode 700) cannot be listed: her items are missing, the rest is there."""
    os.chmod(os.path.join(tree, "home/alice"), 0o700)
    list(autostart.startup_items(tree))  # import everything the child needs while still root
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to nobody and reports the names it saw, or the error
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            names = [r["name"] for r in autostart.startup_items(tree)]
            os.write(write_end, json.dumps(names).encode())
            os._exit(0)
        except BaseException as err:
            os.write(write_end, json.dumps(repr(err)).encode())
            os._exit(1)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = json.loads(pipe.read() or b"null")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, answer
    assert "App" in answer and "foo.service" in answer and "boot-task" in answer
    assert not set(answer) & {"Mine", "boot.sh"}
