"""The machine and software a run measured, for the report's header."""

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from bench.procs import CPUS_AT_START

PACKAGES = ("Django", "channels", "daphne", "channels-redis", "redis", "Twisted", "websockets")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def package_version(*, name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def redis_version() -> str:
    try:
        return subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine_describe() -> dict:
    return {
        "nproc": os.cpu_count(),
        "cpus_allowed": sorted(CPUS_AT_START),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": {name: package_version(name=name) for name in PACKAGES},
        "redis_server": redis_version(),
        "memory_mb": int(Path("/proc/meminfo").read_text().split()[1]) // 1024,
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
    }
