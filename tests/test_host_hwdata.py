"""host/hwdata: the pci.ids parser and the SMBIOS entry point, on bytes the test writes."""

from __future__ import annotations

import struct

from streamq.host import hwdata

PCI_IDS = b"""# comment
8086  Intel Corporation
\t0d57  Example Host Bridge
\t\t1af4 1100  QEMU Virtual Machine
1af4  Red Hat, Inc.
\t1041  Virtio 1.0 network device
C 02  Network controller
\t00  Ethernet controller
\t80  Network controller
"""


def test_parse_pci_ids_keeps_only_wanted_vendors():
    names = hwdata.parse_ids(PCI_IDS, {"8086"})
    assert names.vendors == {"8086": "Intel Corporation"}
    assert names.devices == {("8086", "0d57"): "Example Host Bridge"}
    assert names.subsystems == {("8086", "0d57", "1af4", "1100"): "QEMU Virtual Machine"}
    assert names.classes == {"02": "Network controller"}
    assert names.subclasses[("02", "80")] == "Network controller"
    assert hwdata.parse_ids(PCI_IDS).devices[("1af4", "1041")] == "Virtio 1.0 network device"


def test_smbios_entry_point_length():
    ep3 = b"_SM3_" + bytes(7) + struct.pack("<I", 1234) + bytes(8)
    ep2 = b"_SM_" + bytes(18) + struct.pack("<H", 777) + bytes(8)
    assert hwdata.smbios_table_length(ep3) == 1234 and hwdata.smbios_table_length(ep2) == 777
    assert hwdata.smbios_table_length(b"junk") is None
