"""Cloud instance metadata services (Azure's, Yandex Cloud's) and whether this machine is on that cloud.

A service is only worth asking when the machine's DMI data names its cloud: off
that cloud the link-local address answers nothing and a request would cost its
whole timeout. Every request has a short timeout.
"""

from __future__ import annotations

import json
from typing import Any

from . import optional, webclient

METADATA_HOST = "http://169.254.169.254"
AZURE_API = "/metadata/instance?api-version=2021-02-01"
YCLOUD_API = "/computeMetadata/v1/instance/?recursive=true"
TIMEOUT = 2.0
DMI_ID = "/sys/class/dmi/id"
_MAX_ANSWER = 1 << 20


def _dmi(name: str, root: str = DMI_ID) -> str:
    try:
        with open(f"{root}/{name}", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def on_azure(root: str = DMI_ID) -> bool:
    # Azure VMs carry this chassis asset tag (and Microsoft as the system vendor).
    return _dmi("chassis_asset_tag", root) == "7783-7084-3265-9085-8269-3286-77"


def on_yandex_cloud(root: str = DMI_ID) -> bool:
    return "yandex" in (_dmi("sys_vendor", root) + _dmi("product_name", root) + _dmi("bios_vendor", root)).lower()


def get_json(url: str, headers: dict[str, str]) -> Any:
    """The service's JSON answer, or None (said once) when it does not give one."""
    try:
        status, body = webclient.http_get(url, headers, TIMEOUT, _MAX_ANSWER)
        if status != 200:
            raise OSError(f"HTTP {status}")
        return json.loads(body)
    except (OSError, ValueError) as err:
        optional.note_once(f"instance metadata at {url}: {err}")
        return None


def azure_compute(endpoint: str = METADATA_HOST) -> dict | None:
    """The "compute" object of Azure's instance metadata."""
    data = get_json(endpoint + AZURE_API, {"Metadata": "true"})
    compute = data.get("compute") if isinstance(data, dict) else None
    return compute if isinstance(compute, dict) else None


def ycloud_instance(endpoint: str = METADATA_HOST) -> dict | None:
    """Yandex Cloud's instance metadata (its GCE-compatible API, recursive)."""
    data = get_json(endpoint + YCLOUD_API, {"Metadata-Flavor": "Google"})
    return data if isinstance(data, dict) else None


def text(value) -> str | None:
    return None if value is None else str(value)


def ycloud_row(data: dict, endpoint: str) -> dict:
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
    vendor = data.get("vendor") if isinstance(data.get("vendor"), dict) else {}
    zone = text(data.get("zone")) or ""
    return {
        "instance_id": text(data.get("id")),
        "folder_id": text(vendor.get("folderId")) or (zone.split("/")[1] if zone.startswith("projects/") else None),
        "cloud_id": text(vendor.get("cloudId")),
        "name": text(data.get("name")),
        "description": text(data.get("description")),
        "hostname": text(data.get("hostname")),
        "zone": zone.rsplit("/", 1)[-1] or None,
        "ssh_public_key": text(attributes.get("ssh-keys")),
        "serial_port_enabled": text(attributes.get("serial-port-enable")),
        "metadata_endpoint": endpoint,
    }
