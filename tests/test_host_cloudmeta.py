"""Which cloud this machine is on, from DMI files laid out as the kernel shows them."""

from __future__ import annotations

from streamq.host import cloudmeta


def test_dmi_detection(tmp_path):
    (tmp_path / "chassis_asset_tag").write_text("7783-7084-3265-9085-8269-3286-77\n")
    (tmp_path / "sys_vendor").write_text("Yandex\n")
    assert cloudmeta.on_azure(str(tmp_path)) and cloudmeta.on_yandex_cloud(str(tmp_path))
    assert not cloudmeta.on_azure(str(tmp_path / "missing"))
