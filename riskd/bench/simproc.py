"""The simulator as a separate process (``riskd sim``), driven over its ``/_sim`` HTTP routes.

A separate process so that its CPU (random walk, fan-out, REST answers) is never counted as
riskd's, and so both get a core of their own on a two-core machine. It listens on 127.0.0.1
only. Its request log stamps arrivals with ``time.monotonic()``, which on Linux is the
system-wide CLOCK_MONOTONIC: directly comparable with ``time.monotonic()`` and
``time.perf_counter()`` taken in the benchmark's own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from riskd.bench.proc import ProcessClock

_BANNER_TIMEOUT = 30.0
_BASE_URL = re.compile(r"base URL:\s+(\S+)")
_WS_URL = re.compile(r"stream URL:\s+(\S+)")
_API_KEY = re.compile(r"API key:\s+(\S+)")


class SimError(RuntimeError):
    """The simulator process failed or refused a control call."""


class SimProcess:
    """``python -m riskd sim`` on a free loopback port, with the random walk stopped.

    Its stderr (uvicorn and simulator warnings) goes to ``log_path``.
    """

    def __init__(self, seed: int, log_path: Path) -> None:
        self._seed = seed
        self._log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[bytes] | None = None
        self.base_url = ""
        self.ws_url = ""
        self.api_key = ""

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise SimError("the simulator is not running")
        return self._proc.pid

    async def start(self) -> None:
        """Start the process and read its banner for the URLs and the key."""
        with self._log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "riskd", "--log-level", "WARNING", "sim",
                "--host", "127.0.0.1", "--port", "0", "--seed", str(self._seed),
                "--tick-rate", "0", "--no-demo-account",
                stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            async with asyncio.timeout(_BANNER_TIMEOUT):
                while not (self.base_url and self.ws_url and self.api_key):
                    line = (await stdout.readline()).decode(errors="replace")
                    if not line:
                        raise SimError(f"the simulator exited at start (see {self._log_path})")
                    for pattern, attr in (
                        (_BASE_URL, "base_url"),
                        (_WS_URL, "ws_url"),
                        (_API_KEY, "api_key"),
                    ):
                        if (match := pattern.search(line)) is not None:
                            setattr(self, attr, match.group(1))
        except TimeoutError:
            await self.stop()
            raise SimError(f"no banner from the simulator within {_BANNER_TIMEOUT:.0f} s") from None
        # Nothing else is printed on stdout; drain it anyway so a chatty line never blocks it.
        self._drain = asyncio.get_running_loop().create_task(stdout.read())

    def clock(self) -> ProcessClock:
        """CPU-time reader of the simulator process."""
        return ProcessClock(self.pid)

    async def stop(self) -> None:
        """SIGTERM (the simulator shuts down cleanly), then SIGKILL after 10 s."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(10.0):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


class SimControl:
    """The simulator's ``/_sim`` control routes over HTTP (same names as ``Simulator``)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        # Made inside the benchmark's running loop (aiohttp sessions belong to one loop).
        self._base = base_url.rstrip("/")
        self._http = aiohttp.ClientSession(
            headers={"x-api-key": api_key},
            timeout=aiohttp.ClientTimeout(total=30.0),
            connector=aiohttp.TCPConnector(limit=32),
        )

    async def aclose(self) -> None:
        await self._http.close()

    async def _send(self, method: str, route: str, **kwargs: Any) -> Any:
        async with self._http.request(method, self._base + route, **kwargs) as response:
            if response.status != 200:
                raise SimError(f"{route} answered {response.status}: {await response.text()}")
            return await response.json()

    async def call(self, name: str, **kwargs: Any) -> Any:
        """``POST /_sim/<name>`` with keyword arguments; returns the control's result."""
        return (await self._send("POST", f"/_sim/{name}", json=kwargs))["result"]

    async def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """The simulator's request log (oldest first), optionally for one path."""
        params = {"path": path} if path is not None else {}
        records: list[dict[str, Any]] = (await self._send("GET", "/_sim/requests", params=params))[
            "result"
        ]
        return records

    async def clear_requests(self) -> None:
        """Empty the request log (so later reads stay small)."""
        await self._send("DELETE", "/_sim/requests")

    async def set_tick_rate(self, rate: float) -> None:
        """Random-walk ticks per second across all symbols (0 stops the walk)."""
        await self.call("set_tick_rate", rate=rate)

    async def stream_stats(self) -> list[dict[str, Any]]:
        """Per live stream connection: account_id, symbols, queued, dropped."""
        stats: list[dict[str, Any]] = await self.call("stream_stats")
        return stats
