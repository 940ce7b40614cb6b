"""The Carbon Black (EDR / Response) Linux sensor's own files, for carbon_black_info.

The sensor keeps its state under /var/lib/cb: ``sensor.id`` (the sensor's
64-bit id as 16 hex digits; the server's sensor id is the low five, as osquery
reads it), ``sensorsettings.ini`` (a ``[CB]`` section of ``Key=Value`` lines,
values percent-encoded: ``ConfigName=Default%20Group``) and the queues of data
not yet sent (``events*`` files; ``filedata`` and ``metadata`` of stored binaries).
Pure readers with the directory as a parameter, so a test can give a fixture tree.
"""

from __future__ import annotations

import configparser
import os
from urllib.parse import unquote

from ..text import decode

CB_DIR = "/var/lib/cb"  # a test points it at a fixture tree
SECTION = "CB"

# column -> the [CB] key it comes from; integer columns first.
INTEGER_KEYS = {
    "collect_store_files": "CollectStoreFiles",
    "collect_module_loads": "CollectModuleLoads",
    "collect_module_info": "CollectModuleInfo",
    "collect_file_mods": "CollectFileMods",
    "collect_reg_mods": "CollectRegMods",
    "collect_net_conns": "CollectNetConns",
    "collect_processes": "CollectProcesses",
    "collect_cross_processes": "CollectCrossProcess",
    "collect_emet_events": "CollectEmetEvents",
    "collect_data_file_writes": "CollectDataFileWrites",
    "collect_process_user_context": "CollectProcessUserContext",
    "collect_sensor_operations": "CollectSensorOperations",
    "log_file_disk_quota_mb": "LogFileDiskQuotaMb",
    "log_file_disk_quota_percentage": "LogFileDiskQuotaPercentage",
    "protection_disabled": "ProtectionDisabled",
}
TEXT_KEYS = {
    "config_name": "ConfigName",
    "sensor_ip_addr": "SensorIpAddr",
    "sensor_backend_server": "SensorBackendServer",
}


def parse_sensor_id(data: bytes) -> int | None:
    """The sensor id in ``sensor.id``: the low five of its 16 hex digits (osquery's reading); None if malformed."""
    text = data.strip()
    if len(text) != 16:
        return None
    try:
        return int(text[11:], 16)
    except ValueError:
        return None


def parse_sensorsettings(data: bytes) -> dict:
    """The columns ``sensorsettings.ini`` gives; a key it lacks, or a malformed file, gives none."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=(";", "#"))
    parser.optionxform = str  # keys are CamelCase, and case matters
    try:
        parser.read_string(decode(data))
    except configparser.ParsingError:
        pass  # raised after the whole file was read: the malformed lines are skipped, the rest stands
    except configparser.Error:
        return {}  # no section header at the top: not the sensor's format
    if not parser.has_section(SECTION):
        return {}
    section = parser[SECTION]
    row: dict = {}
    for column, key in INTEGER_KEYS.items():
        value = section.get(key)
        try:
            row[column] = int(value.strip()) if value is not None else None
        except ValueError:
            row[column] = None  # not a number: unknown
    for column, key in TEXT_KEYS.items():
        value = section.get(key)
        row[column] = unquote(value.strip()) if value is not None else None
    return row


def queue_sizes(root: str) -> tuple[int, int]:
    """(binary_queue, event_queue): bytes of stored binaries and of event files waiting below ``root``."""
    binary = events = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            is_binary = name in ("filedata", "metadata")
            if not is_binary and os.path.splitext(name)[0] != "events":
                continue
            try:
                size = os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue  # sent and removed while we walked
            if is_binary:
                binary += size
            else:
                events += size
    return binary, events


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def sensor_row(root: str | None = None) -> dict | None:
    """The carbon_black_info row, or None when no sensor is installed under ``root`` (default CB_DIR)."""
    root = root or CB_DIR
    sensor_id = _read(os.path.join(root, "sensor.id"))
    settings = _read(os.path.join(root, "sensorsettings.ini"))
    if sensor_id is None and settings is None:
        return None
    row = {"sensor_id": parse_sensor_id(sensor_id) if sensor_id is not None else None}
    row.update(parse_sensorsettings(settings or b""))
    row["binary_queue"], row["event_queue"] = queue_sizes(root)
    return row
