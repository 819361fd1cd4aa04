"""The baseline of figure 1: a bare websockets receive-and-parse loop.

The least any consumer of the stream must do: one ``websockets.asyncio.client`` connection per
account, the same subscriptions riskd made, and ``json.loads`` of every frame. Nothing else:
no model validation, no estimate, no rules.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from riskd.bench.stats import Distribution

_CONNECT_TIMEOUT = 30.0
_AGE_SAMPLE_MASK = 63  # as riskd's probe: the age of every 64th tick


class BareProbe:
    """Counts the frames ``json.loads`` parsed across all connections."""

    def __init__(self, ws_url: str, api_key: str, subscriptions: Mapping[str, Sequence[str]]):
        self._ws_url = ws_url
        self._headers = {"x-api-key": api_key}
        self._subscriptions = subscriptions
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = 0
        self._all_connected = asyncio.Event()
        self.ticks = 0
        self._ages: list[float] = []
        self.errors: list[str] = []

    async def start(self) -> dict[str, Any]:
        """Open every connection and subscribe; returns once all are subscribed."""
        for account, symbols in self._subscriptions.items():
            self._tasks.append(asyncio.create_task(self._run(account, list(symbols))))
        if not self._subscriptions:
            self._all_connected.set()
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            await self._all_connected.wait()
        return {"connections": self._connected}

    async def _run(self, account: str, symbols: list[str]) -> None:
        url = f"{self._ws_url}?{urlencode({'id': account})}"
        try:
            async with connect(url, additional_headers=self._headers, compression=None) as ws:
                await ws.send(json.dumps({"action": "subscribe", "symbols": symbols}))
                self._connected += 1
                if self._connected == len(self._subscriptions):
                    self._all_connected.set()
                loads = json.loads
                async for frame in ws:
                    message = loads(frame)
                    self.ticks += 1
                    if not self.ticks & _AGE_SAMPLE_MASK and "time" in message:
                        stamped = datetime.fromisoformat(message["time"]).timestamp()
                        self._ages.append(time.time() - stamped)
        except (OSError, ConnectionClosed) as exc:
            self.errors.append(f"{account}: {type(exc).__name__}: {exc}")

    async def window(self, seconds: float) -> dict[str, Any]:
        """Frames parsed, CPU used and sampled tick ages over ``seconds`` of wall time."""
        self._ages = []
        ticks0, cpu0, wall0 = self.ticks, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - wall0
        return {
            "ticks": self.ticks - ticks0,
            "wall": wall,
            "cpu": time.process_time() - cpu0,
            "age": Distribution.of(self._ages).to_json() if self._ages else None,
            "errors": len(self.errors),
        }

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
