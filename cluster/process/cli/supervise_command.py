"""``pgfleet supervise``: the supervisor's options from flags > config file > environment, and running it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from ..settings import SettingsError, load_settings
from ..supervisor import SupervisorOptions, run_supervisor
from .console_command import supervised_console


def supervisor_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """``load_settings`` with ``supervise``'s flags on top."""
    flags = {
        "app": args.app,
        "workers": args.workers,
        "name": args.name,
        "queues": args.queues,
        "grace": args.grace,
        "metrics_port": args.metrics_port,
        "boot_deadline": args.boot_deadline,
        "system_database_url": args.database_url,
        "embedded_data_dir": args.data_dir,
        "log_level": args.log_level,
    }
    return load_settings(args.config, flags, environ)


def supervisor_options_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``cluster.process.supervisor.SupervisorOptions`` for these settings."""
    if not settings.get("app"):
        raise SettingsError("nothing to supervise: pass APP or set 'app' in the config file (or PGFLEET_APP)")
    return {
        "app": settings["app"],
        "workers": settings["workers"],
        "name": settings["name"],
        "queues": settings["queues"],
        "grace_sec": float(settings["grace"]),
        "metrics_port": settings["metrics_port"],
        "worker_config": dict(settings["worker_config"]),
        "boot_deadline_sec": float(settings["boot_deadline"]),
    }


def build_supervisor_options(args: argparse.Namespace, environ: Mapping[str, str]) -> SupervisorOptions:
    """``SupervisorOptions`` from flags > config file > environment. Raises ``SettingsError``."""
    return SupervisorOptions(**supervisor_options_kwargs(supervisor_settings(args, environ)))


def _supervise(args: argparse.Namespace) -> int:
    options = build_supervisor_options(args, os.environ)
    with supervised_console(args, options.worker_config):  # --console-port: the web console too
        return int(run_supervisor(options))
