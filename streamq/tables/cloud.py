"""Cloud instance metadata: Azure's and Yandex Cloud's instance metadata services.

The metadata address (169.254.169.254) is only contacted when the machine's
DMI data names that cloud, so a query off that cloud sends nothing and gives
no rows; every request has a short timeout.
"""

from __future__ import annotations

import json

from ..sql.schema import TEXT, Column, table
from ._common import lazy_module

optional = lazy_module("streamq.host.optional")

METADATA_HOST = "http://169.254.169.254"
AZURE_API = "/metadata/instance?api-version=2021-02-01"
YCLOUD_API = "/computeMetadata/v1/instance/?recursive=true"
TIMEOUT = 2.0
DMI_ID = "/sys/class/dmi/id"
# Set by an operator (or a test) to reach the metadata service at another address.
AZURE_ENDPOINT: str | None = None


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


def _get_json(url: str, headers: dict[str, str]):
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read(1 << 20))
    except (OSError, ValueError) as err:
        optional.note_once(f"instance metadata at {url}: {err}")
        return None


def azure_compute() -> dict | None:
    endpoint = AZURE_ENDPOINT
    if endpoint is None:
        if not on_azure():
            return None
        endpoint = METADATA_HOST
    data = _get_json(endpoint + AZURE_API, {"Metadata": "true"})
    compute = data.get("compute") if isinstance(data, dict) else None
    return compute if isinstance(compute, dict) else None


_AZURE_FIELDS = {
    "location": "location",
    "name": "name",
    "offer": "offer",
    "publisher": "publisher",
    "sku": "sku",
    "version": "version",
    "os_type": "osType",
    "platform_update_domain": "platformUpdateDomain",
    "platform_fault_domain": "platformFaultDomain",
    "vm_id": "vmId",
    "vm_size": "vmSize",
    "subscription_id": "subscriptionId",
    "resource_group_name": "resourceGroupName",
    "placement_group_id": "placementGroupId",
    "vm_scale_set_name": "vmScaleSetName",
    "zone": "zone",
}


def _text(value) -> str | None:
    return None if value is None else str(value)


@table(
    "azure_instance_metadata",
    "This Azure VM's metadata from the instance metadata service; no row off Azure.",
    [
        Column(column, TEXT, f"{key} from the compute metadata.", index=column == "vm_id")
        for column, key in _AZURE_FIELDS.items()
    ],
    examples=("SELECT vm_id, vm_size, location, resource_group_name FROM azure_instance_metadata",),
    cost=1,
)
def gen_azure_instance_metadata(ctx):
    compute = azure_compute()
    if compute is not None:
        yield {column: _text(compute.get(key)) or None for column, key in _AZURE_FIELDS.items()}


@table(
    "azure_instance_tags",
    "Tags of this Azure VM from the instance metadata service; no rows off Azure.",
    [
        Column("vm_id", TEXT, "VM id."),
        Column("key", TEXT, "Tag name."),
        Column("value", TEXT, "Tag value."),
    ],
    examples=("SELECT key, value FROM azure_instance_tags",),
    cost=1,
)
def gen_azure_instance_tags(ctx):
    compute = azure_compute()
    if compute is None:
        return
    for tag in compute.get("tagsList") or ():
        if isinstance(tag, dict):
            yield {"vm_id": _text(compute.get("vmId")), "key": _text(tag.get("name")), "value": _text(tag.get("value"))}


def ycloud_row(data: dict, endpoint: str) -> dict:
    attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
    vendor = data.get("vendor") if isinstance(data.get("vendor"), dict) else {}
    zone = _text(data.get("zone")) or ""
    return {
        "instance_id": _text(data.get("id")),
        "folder_id": _text(vendor.get("folderId")) or (zone.split("/")[1] if zone.startswith("projects/") else None),
        "cloud_id": _text(vendor.get("cloudId")),
        "name": _text(data.get("name")),
        "description": _text(data.get("description")),
        "hostname": _text(data.get("hostname")),
        "zone": zone.rsplit("/", 1)[-1] or None,
        "ssh_public_key": _text(attributes.get("ssh-keys")),
        "serial_port_enabled": _text(attributes.get("serial-port-enable")),
        "metadata_endpoint": endpoint,
    }


@table(
    "ycloud_instance_metadata",
    "This Yandex Cloud VM's metadata; no row off Yandex Cloud unless `metadata_endpoint` names a service.",
    [
        Column("instance_id", TEXT, "Instance id.", index=True),
        Column("folder_id", TEXT, "Folder id."),
        Column("cloud_id", TEXT, "Cloud id."),
        Column("name", TEXT, "Instance name."),
        Column("description", TEXT, "Instance description."),
        Column("hostname", TEXT, "Host name."),
        Column("zone", TEXT, "Availability zone."),
        Column("ssh_public_key", TEXT, "SSH keys from the instance's metadata."),
        Column("serial_port_enabled", TEXT, "serial-port-enable attribute."),
        Column("metadata_endpoint", TEXT, "Metadata service queried (default http://169.254.169.254).", index=True),
    ],
    examples=("SELECT instance_id, name, zone FROM ycloud_instance_metadata",),
    cost=1,
)
def gen_ycloud_instance_metadata(ctx):
    endpoints = [e.rstrip("/") for e in ctx.eq("metadata_endpoint") or () if isinstance(e, str)]
    if not endpoints:
        if not on_yandex_cloud():
            return
        endpoints = [METADATA_HOST]
    for endpoint in endpoints:
        data = _get_json(endpoint + YCLOUD_API, {"Metadata-Flavor": "Google"})
        if isinstance(data, dict):
            yield ycloud_row(data, endpoint)
