"""Cloud instance metadata: Azure's and Yandex Cloud's instance metadata services.

The metadata address (169.254.169.254) is only contacted when the machine's
DMI data names that cloud, so a query off that cloud sends nothing and gives
no rows; the requests and the detection are in host/cloudmeta.
"""

from __future__ import annotations

from ..sql.schema import TEXT, Column, table
from ._common import lazy_module

cloudmeta = lazy_module("streamq.host.cloudmeta")

# Set by an operator (or a test) to reach the metadata service at another address.
AZURE_ENDPOINT: str | None = None


def azure_compute() -> dict | None:
    if AZURE_ENDPOINT is not None:
        return cloudmeta.azure_compute(AZURE_ENDPOINT)
    return cloudmeta.azure_compute() if cloudmeta.on_azure() else None


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
        yield {column: cloudmeta.text(compute.get(key)) or None for column, key in _AZURE_FIELDS.items()}


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
            yield {
                "vm_id": cloudmeta.text(compute.get("vmId")),
                "key": cloudmeta.text(tag.get("name")),
                "value": cloudmeta.text(tag.get("value")),
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
        if not cloudmeta.on_yandex_cloud():
            return
        endpoints = [cloudmeta.METADATA_HOST]
    for endpoint in endpoints:
        data = cloudmeta.ycloud_instance(endpoint)
        if data is not None:
            yield cloudmeta.ycloud_row(data, endpoint)
