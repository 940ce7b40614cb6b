"""Model-specific registers of each CPU through the msr driver (/dev/cpu/<n>/msr, root only).

The registers are read by host/msr; a register the processor lacks is NULL.
Values are signed 64-bit, as osquery's BIGINT.
"""

from __future__ import annotations

from ..sql.schema import BIGINT, Column, table
from ._common import lazy_module

msr = lazy_module("streamq.host.msr")


@table(
    "msr",
    "Model-specific registers of each CPU: turbo, performance state, RAPL power (needs root and the msr driver).",
    [
        Column("processor_number", BIGINT, "CPU number."),
        Column("turbo_disabled", BIGINT, "1 when turbo boost is disabled (IA32_MISC_ENABLE bit 38)."),
        Column("turbo_ratio_limit", BIGINT, "MSR_TURBO_RATIO_LIMIT."),
        Column("platform_info", BIGINT, "MSR_PLATFORM_INFO."),
        Column("perf_ctl", BIGINT, "IA32_PERF_CTL, low 16 bits: the requested performance state."),
        Column("perf_status", BIGINT, "IA32_PERF_STATUS: the current performance state."),
        Column("feature_control", BIGINT, "IA32_FEATURE_CONTROL (VMX and lock bits)."),
        Column("rapl_power_limit", BIGINT, "MSR_PKG_POWER_LIMIT."),
        Column("rapl_energy_status", BIGINT, "MSR_PKG_ENERGY_STATUS."),
        Column("rapl_power_units", BIGINT, "MSR_RAPL_POWER_UNIT."),
    ],
    examples=("SELECT processor_number, turbo_disabled, feature_control FROM msr",),
    cost=10,
)
def gen_msr(ctx):
    yield from msr.msr_rows()
