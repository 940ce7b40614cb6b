"""host/mdstat: /proc/mdstat parsed from a captured file (arrays in recovery, resync, spares, failed drives)."""

from __future__ import annotations

from streamq.host import mdstat

MDSTAT = b"""Personalities : [raid1] [raid6] [raid5] [raid4] [linear]
md1 : active raid5 sdc1[3](S) sdb1[1] sda1[0](F) sdd1[2]
      209584128 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/2] [_UU]
      [=>...................]  recovery =  8.5% (8768/102336) finish=0.1min speed=8768K/sec
      bitmap: 1/1 pages [4KB], 65536KB chunk

md0 : active raid1 loop1[1] loop0[0]
      102336 blocks super 1.2 [2/2] [UU]
      resync=DELAYED

unused devices: <none>
"""


def test_personalities_and_arrays_from_mdstat():
    stat = mdstat.parse_mdstat(MDSTAT)
    assert stat.personalities == ["raid1", "raid6", "raid5", "raid4", "linear"]
    assert [a.name for a in stat.arrays] == ["md1", "md0"] and stat.unused == "<none>"
    md1 = stat.arrays[0]
    assert (md1.status, md1.level, md1.size) == ("active", "raid5", 209584128)
    assert md1.drives == [("sdc1", 3, "(S)"), ("sdb1", 1, ""), ("sda1", 0, "(F)"), ("sdd1", 2, "")]
    assert md1.other == "super 1.2 level 5, 512k chunk, algorithm 2"
    assert md1.actions["recovery"] == ("8.5% (8768/102336)", "0.1min", "8768K/sec")
    assert md1.bitmap == ("1/1 pages [4KB]", "65536KB chunk", None)
    assert stat.arrays[1].actions["resync"] == ("DELAYED", None, None)
