"""Security agents installed on the host, read from their own files: the Carbon Black sensor.

No rows where the agent is not installed.
"""

from __future__ import annotations

from ..sql.schema import INTEGER, TEXT, Column, table
from ._common import lazy_module

carbonblack = lazy_module("streamq.host.carbonblack")


def _flag(name: str, what: str) -> Column:
    return Column(name, INTEGER, f"1 if the sensor is configured to {what}, 0 if not; NULL when not set.")


@table(
    "carbon_black_info",
    "The Carbon Black sensor's id, settings and send queues, from /var/lib/cb.",
    [
        Column("sensor_id", INTEGER, "Sensor id on the Carbon Black server (from sensor.id)."),
        Column("config_name", TEXT, "Sensor group (ConfigName)."),
        _flag("collect_store_files", "send binaries back to the server"),
        _flag("collect_module_loads", "capture module loads"),
        _flag("collect_module_info", "collect metadata of binaries"),
        _flag("collect_file_mods", "collect file modifications"),
        _flag("collect_reg_mods", "collect registry modifications"),
        _flag("collect_net_conns", "collect network connections"),
        _flag("collect_processes", "collect process events"),
        _flag("collect_cross_processes", "collect cross-process events"),
        _flag("collect_emet_events", "collect EMET events"),
        _flag("collect_data_file_writes", "collect writes of non-binary files"),
        _flag("collect_process_user_context", "collect the user running a process"),
        _flag("collect_sensor_operations", "collect sensor operations"),
        Column("log_file_disk_quota_mb", INTEGER, "Event file disk quota, MB."),
        Column("log_file_disk_quota_percentage", INTEGER, "Event file disk quota, percent of the disk."),
        Column("protection_disabled", INTEGER, "1 if tamper protection is disabled."),
        Column("sensor_ip_addr", TEXT, "IP address of the sensor, when the settings give it."),
        Column("sensor_backend_server", TEXT, "URL of the Carbon Black server (SensorBackendServer)."),
        Column("event_queue", INTEGER, "Bytes of event files waiting to be sent."),
        Column("binary_queue", INTEGER, "Bytes of stored binaries waiting to be sent."),
    ],
    examples=("SELECT sensor_id, config_name, sensor_backend_server FROM carbon_black_info",),
    cost=1,
)
def gen_carbon_black_info(ctx):
    row = carbonblack.sensor_row()
    if row is not None:
        yield row
