"""The Docker engine itself and its images, networks and volumes (host/dockerapi).

Ids are shown without ``sha256:`` and ``WHERE id = 'prefix'`` finds by prefix,
as osquery does; tags are joined by ','. No engine: no rows, one warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..sql.schema import BIGINT, INTEGER, TEXT, Column, QueryContext, table
from ._common import engine_rows, lazy_module

dockerapi = lazy_module("streamq.host.dockerapi")
if TYPE_CHECKING:
    from ..host.dockerapi import Engine

IMAGE_ID = Column("id", TEXT, "Image ID.", index=True)
_INFO_FLAGS = {
    "memory_limit": "MemoryLimit",
    "swap_limit": "SwapLimit",
    "kernel_memory": "KernelMemory",
    "cpu_cfs_period": "CpuCfsPeriod",
    "cpu_cfs_quota": "CpuCfsQuota",
    "cpu_shares": "CPUShares",
    "cpu_set": "CPUSet",
    "ipv4_forwarding": "IPv4Forwarding",
    "bridge_nf_iptables": "BridgeNfIptables",
    "bridge_nf_ip6tables": "BridgeNfIp6tables",
    "oom_kill_disable": "OomKillDisable",
}


def _matching(ctx: QueryContext, column: str, full_id: str) -> str | None:
    """The id a row shows: the full id, or the query's prefix of it; None if the query wants others."""
    wanted = ctx.eq(column)
    if wanted is None:
        return full_id
    return next((p for p in wanted if dockerapi.is_hex_prefix(p) and full_id.startswith(p.lower())), None)


def _image_ids(api: Engine, ctx: QueryContext) -> Iterator[tuple[str, str]]:
    """(id as the query names it, full id) of every image or of those WHERE id = ..."""
    for image in api.call("images") or ():
        full = dockerapi.strip_digest(image.get("Id")) or ""
        key = _matching(ctx, "id", full)
        if key is not None:
            yield key, full


@table(
    "docker_images",
    "Docker images held by the engine.",
    [
        Column("id", TEXT, "Image ID."),
        Column("created", BIGINT, "Creation time, unix seconds."),
        Column("size_bytes", BIGINT, "Size, bytes."),
        Column("tags", TEXT, "Repository tags, joined by ','."),
    ],
    examples=("SELECT id, tags, size_bytes FROM docker_images",),
    cost=100,
)
@engine_rows
def gen_docker_images(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for image in api.call("images") or ():
        yield {
            "id": dockerapi.strip_digest(image.get("Id")),
            "created": image.get("Created"),
            "size_bytes": image.get("Size"),
            "tags": ",".join(image.get("RepoTags") or ()),
        }


@table(
    "docker_image_labels",
    "Labels of Docker images.",
    [IMAGE_ID, Column("key", TEXT, "Label key."), Column("value", TEXT, "Label value.")],
    examples=("SELECT id, key, value FROM docker_image_labels",),
    cost=100,
)
@engine_rows
def gen_docker_image_labels(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for image in api.call("images") or ():
        key = _matching(ctx, "id", dockerapi.strip_digest(image.get("Id")) or "")
        if key is not None:
            for label, value in (image.get("Labels") or {}).items():
                yield {"id": key, "key": label, "value": value}


@table(
    "docker_image_layers",
    "The layers of Docker images, base layer first.",
    [
        IMAGE_ID,
        Column("layer_id", TEXT, "Layer ID (digest of its content)."),
        Column("layer_order", INTEGER, "Position of the layer, 1 for the base layer."),
    ],
    examples=("SELECT id, layer_id, layer_order FROM docker_image_layers",),
    cost=100,
)
@engine_rows
def gen_docker_image_layers(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, full in _image_ids(api, ctx):
        image = api.call("inspect_image", full)
        layers = ((image or {}).get("RootFS") or {}).get("Layers") or ()
        for order, layer in enumerate(layers, 1):
            yield {"id": key, "layer_id": dockerapi.strip_digest(layer), "layer_order": order}


@table(
    "docker_image_history",
    "How Docker images were built: one row per step, newest first.",
    [
        IMAGE_ID,
        Column("created", BIGINT, "When the step ran, unix seconds."),
        Column("size", BIGINT, "Bytes the step added."),
        Column("created_by", TEXT, "The instruction that made the step."),
        Column("tags", TEXT, "Tags of the step's image, joined by ','."),
        Column("comment", TEXT, "Comment of the step."),
    ],
    examples=("SELECT id, created_by, size FROM docker_image_history",),
    cost=100,
)
@engine_rows
def gen_docker_image_history(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, full in _image_ids(api, ctx):
        for step in api.call("history", full) or ():
            yield {
                "id": key,
                "created": step.get("Created"),
                "size": step.get("Size"),
                "created_by": step.get("CreatedBy"),
                "tags": ",".join(step.get("Tags") or ()),
                "comment": step.get("Comment"),
            }


@table(
    "docker_info",
    "The Docker engine: its counts, drivers and the host it sees.",
    [
        Column("id", TEXT, "Engine ID."),
        Column("containers", INTEGER, "Containers."),
        Column("containers_running", INTEGER, "Running containers."),
        Column("containers_paused", INTEGER, "Paused containers."),
        Column("containers_stopped", INTEGER, "Stopped containers."),
        Column("images", INTEGER, "Images."),
        Column("storage_driver", TEXT, "Storage driver."),
        Column("memory_limit", INTEGER, "1 if memory limits are supported."),
        Column("swap_limit", INTEGER, "1 if swap limits are supported."),
        Column("kernel_memory", INTEGER, "1 if kernel memory limits are supported."),
        Column("cpu_cfs_period", INTEGER, "1 if the CFS period is supported."),
        Column("cpu_cfs_quota", INTEGER, "1 if the CFS quota is supported."),
        Column("cpu_shares", INTEGER, "1 if CPU shares are supported."),
        Column("cpu_set", INTEGER, "1 if CPU sets are supported."),
        Column("ipv4_forwarding", INTEGER, "1 if IPv4 forwarding is on."),
        Column("bridge_nf_iptables", INTEGER, "1 if bridged traffic passes iptables."),
        Column("bridge_nf_ip6tables", INTEGER, "1 if bridged traffic passes ip6tables."),
        Column("oom_kill_disable", INTEGER, "1 if disabling the OOM killer is supported."),
        Column("logging_driver", TEXT, "Default logging driver."),
        Column("cgroup_driver", TEXT, "cgroup driver (cgroupfs or systemd)."),
        Column("kernel_version", TEXT, "Kernel version."),
        Column("os", TEXT, "Operating system."),
        Column("os_type", TEXT, "Operating system type."),
        Column("architecture", TEXT, "Hardware architecture."),
        Column("cpus", INTEGER, "CPUs."),
        Column("memory", BIGINT, "Memory, bytes."),
        Column("http_proxy", TEXT, "HTTP proxy."),
        Column("https_proxy", TEXT, "HTTPS proxy."),
        Column("no_proxy", TEXT, "Hosts reached without the proxy."),
        Column("name", TEXT, "Host name."),
        Column("server_version", TEXT, "Engine version."),
        Column("root_dir", TEXT, "Engine's data root directory."),
    ],
    examples=("SELECT server_version, storage_driver, containers_running FROM docker_info",),
    cost=1,
)
@engine_rows
def gen_docker_info(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    info = api.call("info")
    if info:
        row = {
            "id": info.get("ID"),
            "containers": info.get("Containers"),
            "containers_running": info.get("ContainersRunning"),
            "containers_paused": info.get("ContainersPaused"),
            "containers_stopped": info.get("ContainersStopped"),
            "images": info.get("Images"),
            "storage_driver": info.get("Driver"),
            "logging_driver": info.get("LoggingDriver"),
            "cgroup_driver": info.get("CgroupDriver"),
            "kernel_version": info.get("KernelVersion"),
            "os": info.get("OperatingSystem"),
            "os_type": info.get("OSType"),
            "architecture": info.get("Architecture"),
            "cpus": info.get("NCPU"),
            "memory": info.get("MemTotal"),
            "http_proxy": info.get("HttpProxy"),
            "https_proxy": info.get("HttpsProxy"),
            "no_proxy": info.get("NoProxy"),
            "name": info.get("Name"),
            "server_version": info.get("ServerVersion"),
            "root_dir": info.get("DockerRootDir"),
        }
        row.update({column: int(bool(info.get(key))) for column, key in _INFO_FLAGS.items()})
        yield row


@table(
    "docker_version",
    "Version and build of the Docker engine.",
    [
        Column("version", TEXT, "Engine version."),
        Column("api_version", TEXT, "API version."),
        Column("min_api_version", TEXT, "Oldest API version served."),
        Column("git_commit", TEXT, "Git commit of the build."),
        Column("go_version", TEXT, "Go version of the build."),
        Column("os", TEXT, "Operating system."),
        Column("arch", TEXT, "Hardware architecture."),
        Column("kernel_version", TEXT, "Kernel version."),
        Column("build_time", TEXT, "Build time."),
    ],
    examples=("SELECT version, api_version FROM docker_version",),
    cost=1,
)
@engine_rows
def gen_docker_version(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    v = api.call("version")
    if v:
        yield {
            "version": v.get("Version"),
            "api_version": v.get("ApiVersion"),
            "min_api_version": v.get("MinAPIVersion"),
            "git_commit": v.get("GitCommit"),
            "go_version": v.get("GoVersion"),
            "os": v.get("Os"),
            "arch": v.get("Arch"),
            "kernel_version": v.get("KernelVersion"),
            "build_time": v.get("BuildTime"),
        }


def _networks(api: Engine, ctx: QueryContext) -> Iterator[tuple[str, dict]]:
    for network in api.call("networks") or ():
        key = _matching(ctx, "id", network.get("Id") or "")
        if key is not None:
            yield key, network


@table(
    "docker_networks",
    "Docker networks.",
    [
        Column("id", TEXT, "Network ID.", index=True),
        Column("name", TEXT, "Network name."),
        Column("driver", TEXT, "Network driver."),
        Column("created", BIGINT, "Creation time, unix seconds."),
        Column("enable_ipv6", INTEGER, "1 if IPv6 is enabled."),
        Column("subnet", TEXT, "Subnet of the first IPAM configuration."),
        Column("gateway", TEXT, "Gateway of the first IPAM configuration."),
    ],
    examples=("SELECT id, name, driver, subnet FROM docker_networks",),
    cost=100,
)
@engine_rows
def gen_docker_networks(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, n in _networks(api, ctx):
        ipam = ((n.get("IPAM") or {}).get("Config") or [{}])[0]
        yield {
            "id": key,
            "name": n.get("Name"),
            "driver": n.get("Driver"),
            "created": dockerapi.unix_time(n.get("Created")),
            "enable_ipv6": int(bool(n.get("EnableIPv6"))),
            "subnet": ipam.get("Subnet"),
            "gateway": ipam.get("Gateway"),
        }


@table(
    "docker_network_labels",
    "Labels of Docker networks.",
    [Column("id", TEXT, "Network ID.", index=True), Column("key", TEXT, "Label key."), Column("value", TEXT, "Value.")],
    examples=("SELECT id, key, value FROM docker_network_labels",),
    cost=100,
)
@engine_rows
def gen_docker_network_labels(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for key, n in _networks(api, ctx):
        for label, value in (n.get("Labels") or {}).items():
            yield {"id": key, "key": label, "value": value}


def _volumes(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    names = ctx.eq("name")
    for volume in (api.call("volumes") or {}).get("Volumes") or ():
        if names is None or volume.get("Name") in names:
            yield volume


@table(
    "docker_volumes",
    "Docker volumes.",
    [
        Column("name", TEXT, "Volume name.", index=True),
        Column("driver", TEXT, "Volume driver."),
        Column("mount_point", TEXT, "Where the volume's data lives on the host."),
        Column("type", TEXT, "Filesystem type option of the volume (the driver's 'type' option)."),
    ],
    examples=("SELECT name, driver, mount_point FROM docker_volumes",),
    cost=100,
)
@engine_rows
def gen_docker_volumes(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for v in _volumes(api, ctx):
        yield {
            "name": v.get("Name"),
            "driver": v.get("Driver"),
            "mount_point": v.get("Mountpoint"),
            "type": (v.get("Options") or {}).get("type"),
        }


@table(
    "docker_volume_labels",
    "Labels of Docker volumes.",
    [
        Column("name", TEXT, "Volume name.", index=True),
        Column("key", TEXT, "Label key.", index=True),
        Column("value", TEXT, "Label value."),
    ],
    examples=("SELECT name, key, value FROM docker_volume_labels",),
    cost=100,
)
@engine_rows
def gen_docker_volume_labels(api: Engine, ctx: QueryContext) -> Iterator[dict]:
    for v in _volumes(api, ctx):
        for label, value in (v.get("Labels") or {}).items():
            yield {"name": v.get("Name"), "key": label, "value": value}
