"""Processes the benchmark measures: CPU-time and memory readers, and the worker protocol.

A worker (``python -m riskd.bench.worker``) is driven over its stdin/stdout with one JSON
object per line: the first line configures it, then each command line gets exactly one answer
line, ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. Its stderr (riskd's own log)
goes to a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class WorkerError(RuntimeError):
    """A worker failed a command, died, or did not answer in time."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all threads), from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def memory_kib(pid: int | str = "self") -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of a process, in KiB, from /proc/PID/status."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


@dataclass(slots=True)
class ProcessClock:
    """CPU share of another process over a window: ``mark()``, then ``share()``."""

    pid: int
    _cpu: float = 0.0
    _wall: float = 0.0

    def mark(self) -> None:
        self._cpu, self._wall = cpu_seconds(self.pid), time.monotonic()

    def share(self) -> float:
        """CPU seconds per wall second since :meth:`mark` (1.0 = one full core)."""
        wall = time.monotonic() - self._wall
        return (cpu_seconds(self.pid) - self._cpu) / wall if wall > 0 else 0.0


class WorkerProcess:
    """The parent's side of one worker process."""

    def __init__(self, config: dict[str, Any], log_path: Path) -> None:
        self._config = config
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise WorkerError("the worker is not running")
        return self._proc.pid

    async def start(self) -> None:
        """Spawn the worker and send it its configuration."""
        with self._log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "riskd.bench.worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                # A tick window answer can be large (latency samples are summarised in the
                # worker, but subscription lists of 1,000 accounts are not small).
                limit=16 * 1024 * 1024,
            )
        await self._send(self._config)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._proc is not None
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self._proc.stdin.drain()

    async def request(self, cmd: str, timeout: float = 120.0, **args: Any) -> dict[str, Any]:
        """Send one command and return its answer; WorkerError on failure or timeout."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise WorkerError("the worker is not running")
        try:
            async with asyncio.timeout(timeout):
                await self._send({"cmd": cmd, **args})
                line = await proc.stdout.readline()
        except TimeoutError:
            raise WorkerError(f"worker gave no answer to {cmd!r} within {timeout:.0f} s") from None
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line:
            raise WorkerError(f"worker exited during {cmd!r} (see {self._log_path})")
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise WorkerError(f"worker failed {cmd!r}: {answer.get('error')}")
        return answer

    async def stop(self) -> None:
        """Ask the worker to stop, then make sure it is gone."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(b'{"cmd": "stop"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
        try:
            async with asyncio.timeout(15.0):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
