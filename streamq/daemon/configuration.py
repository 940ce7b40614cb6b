"""The daemon's config file: read (or the embedded default), checked as `run --check` checks it,
and handed to the tables that read config. `run` uses these at start and on each SIGHUP."""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING

from ..config import loader as config_mod
from ..config.sections import Config
from ..errors import ConfigError
from ..host import dockerapi

if TYPE_CHECKING:
    from .check import Report

log = logging.getLogger("streamq.daemon.app")


def default_config_text() -> str:
    return resources.files("streamq").joinpath("default.toml").read_text(encoding="utf-8")


def load_config(path: str | None) -> Config:
    """The config at ``path``, or the embedded default when there is none."""
    if path is None:
        return config_mod.parse(default_config_text(), "<embedded default config>")
    return config_mod.load(path)


def configure_tables(config: Config) -> None:
    """Hand the tables that read config their sections: the Docker engine's socket,
    prometheus_metrics' targets, yara's signature groups."""
    from ..host import yarascan
    from ..tables import web

    dockerapi.configure(socket=config.docker.socket, timeout=config.docker.timeout)
    web.configure_prometheus(config.prometheus_targets.urls, config.prometheus_targets.timeout)
    yarascan.SIGNATURE_GROUPS.clear()
    yarascan.SIGNATURE_GROUPS.update(config.yara.signatures)


def checked(config: Config) -> Report:
    """streamq.daemon.check's report, its warnings logged; ConfigError if `run --check` would fail."""
    from .check import check  # here, not at the top: `query -c` configures tables without the checks

    report = check(config)
    if report.errors:
        raise ConfigError("; ".join(report.errors))
    for warning in report.warnings:
        log.warning("%s", warning)
    for name, why in report.skipped.items():
        log.warning("pack query %s skipped: %s", name, why)
    return report
