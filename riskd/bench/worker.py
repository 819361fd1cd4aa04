"""``python -m riskd.bench.worker``: one measured process (riskd, or the bare websockets loop).

Protocol (see :mod:`riskd.bench.proc`): the first stdin line is the configuration
(``{"mode": "riskd" | "bare", ...}``), every later line a command answered by one stdout line.
Commands: ``start``, ``window`` (``seconds``, ``latency``), ``accuracy`` (riskd only),
``memory`` and ``stop``. Logs go to stderr, which the benchmark sends to a file.

A separate process per measurement, so each figure's CPU time and peak RSS belong to the thing
measured and to nothing else (the benchmark's own bookkeeping included).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import traceback
from typing import Any, Protocol

from riskd.bench.proc import memory_kib


class Probe(Protocol):
    async def start(self) -> dict[str, Any]: ...

    async def window(self, seconds: float, latency: bool = False) -> dict[str, Any]: ...

    async def accuracy(self, concurrency: int = 4) -> dict[str, Any]: ...

    async def stop(self) -> None: ...


def _probe(config: dict[str, Any]) -> Probe:
    mode = config["mode"]
    if mode == "riskd":
        from riskd.bench.probe import RiskdProbe

        return RiskdProbe(**config["riskd"])
    if mode == "bare":
        from riskd.bench.bare import BareProbe

        return _BareAdapter(BareProbe(**config["bare"]))
    raise ValueError(f"unknown worker mode {mode!r}")


class _BareAdapter:
    """The bare loop has no latency to record; give it the common window signature."""

    def __init__(self, probe: Any) -> None:
        self.probe = probe

    async def start(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.probe.start()
        return result

    async def window(self, seconds: float, latency: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = await self.probe.window(seconds)
        return result

    async def accuracy(self, concurrency: int = 4) -> dict[str, Any]:
        raise ValueError("the bare loop keeps no estimate")

    async def stop(self) -> None:
        await self.probe.stop()


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("apscheduler", "aiohttp", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    # One reader for the configuration line and the commands: a buffered sys.stdin.readline()
    # first could swallow commands sent right behind the configuration.
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config: dict[str, Any] = json.loads(await reader.readline())
    _configure_logging(config.get("log_level", "WARNING"))
    probe = _probe(config)
    started = False
    try:
        while line := await reader.readline():
            command: dict[str, Any] = json.loads(line)
            name = command.pop("cmd")
            try:
                if name == "stop":
                    break
                if name == "start":
                    result = await probe.start()
                    started = True
                elif name == "window":
                    result = await probe.window(**command)
                elif name == "accuracy":
                    result = await probe.accuracy(**command)
                elif name == "memory":
                    result = memory_kib()
                else:
                    raise ValueError(f"unknown command {name!r}")
            except Exception as exc:  # the parent reports it as the figure's error
                logging.getLogger("riskd.bench").exception("command %s failed", name)
                _answer({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                continue
            _answer({"ok": True, **result})
    finally:
        if started:
            await probe.stop()
        _answer({"ok": True, "stopped": True})


def main() -> None:
    """Entry point: read the configuration line, then serve commands until ``stop``/EOF."""
    try:
        asyncio.run(_serve())
    except Exception:
        traceback.print_exc()
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
