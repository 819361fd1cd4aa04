"""What the benchmark ran on: CPU, cores, memory, OS, Python and the versions that matter."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import riskd


@dataclass(frozen=True, slots=True)
class Machine:
    """Machine details printed above the table."""

    cpu: str
    cores: int
    usable_cores: int
    memory_gib: float | None
    os: str
    python: str
    riskd: str
    libraries: str

    def lines(self) -> list[str]:
        """The details as ``key: value`` lines."""
        memory = "unknown" if self.memory_gib is None else f"{self.memory_gib:.1f} GiB"
        return [
            f"machine: {self.cpu}, {self.cores} cores ({self.usable_cores} usable), {memory} RAM",
            f"os:      {self.os}",
            f"python:  {self.python}",
            f"riskd:   {self.riskd} ({self.libraries})",
        ]


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _memory_gib(meminfo: Path = Path("/proc/meminfo")) -> float | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> Machine:
    """Read this machine's details (Linux ``/proc`` where available, else ``platform``)."""
    cores = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = cores
    libs = ", ".join(
        f"{name} {_version(name)}" for name in ("websockets", "aiohttp", "uvicorn", "starlette")
    )
    return Machine(
        cpu=_cpu_model(),
        cores=cores,
        usable_cores=usable,
        memory_gib=_memory_gib(),
        os=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        riskd=riskd.__version__,
        libraries=libs,
    )
