"""One tick stream per account, feeding the watcher.

The receive loop only parses and hands over (``Watcher.on_tick`` never awaits), so a slow
consumer cannot make websockets drop the connection on a keepalive timeout. Each
(re)connection takes a fresh REST snapshot, because ticks were lost while it was down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from riskd.api2trade import AsyncApi2TradeClient
from riskd.api2trade.backoff import Backoff
from riskd.api2trade.exceptions import Api2TradeError
from riskd.monitor.book import AccountBook
from riskd.monitor.poller import Poller
from riskd.monitor.watcher import Watcher

log = logging.getLogger("riskd.stream")

_YIELD_EVERY = 32


@dataclass(frozen=True, slots=True)
class StreamingSettings:
    """Whether accounts are streamed, and the reconnect policy (seconds)."""

    enabled: bool = True
    reconnect_base: float = 0.5
    reconnect_cap: float = 30.0
    stable_after: float = 10.0


class StreamConsumer:
    """Runs a ``TickStream`` per account and hands every tick to the watcher."""

    def __init__(
        self,
        client: AsyncApi2TradeClient,
        watcher: Watcher,
        poller: Poller,
        settings: StreamingSettings,
    ) -> None:
        self._client = client
        self._watcher = watcher
        self._poller = poller
        self._settings = settings
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._refreshes: set[asyncio.Task[None]] = set()

    def start(self, books: list[AccountBook]) -> None:
        for book in books:
            self._tasks[book.info.id] = asyncio.get_running_loop().create_task(
                self._consume(book), name=f"stream {book.info.id}"
            )

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._refreshes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _consume(self, book: AccountBook) -> None:
        s = self._settings
        stream = self._client.open_stream(
            book.info.id,
            sorted(book.estimator.symbols_needed()),
            on_connect=lambda: self._on_connect(book),
            backoff=Backoff(base=s.reconnect_base, cap=s.reconnect_cap),
            stable_after=s.stable_after,
        )
        book.stream = stream
        on_tick = self._watcher.on_tick
        handled = 0
        try:
            async for tick in stream:
                on_tick(book, tick, time.perf_counter())
                handled += 1
                if handled % _YIELD_EVERY == 0:
                    # websockets hands out buffered frames without suspending; under a flood
                    # this loop would starve timers (polls, checks, keepalive) without it.
                    await asyncio.sleep(0)
        except Api2TradeError as exc:
            # Refused credentials or an unknown account: polling carries on alone.
            log.error("account=%s stream stopped: %s; rules run on polls only", book.info.id, exc)
        except Exception:
            # A bug must not pass silently, nor take polling down with it.
            log.exception("account=%s stream consumer crashed; rules run on polls only",
                          book.info.id)  # fmt: skip
        finally:
            book.stream = None
            await stream.aclose()

    def _on_connect(self, book: AccountBook) -> None:
        """Ticks were lost while disconnected: take a fresh snapshot now (in the background,
        so the receive loop starts at once)."""
        if book.stream is None or book.stream.stats.connects <= 1:
            # First connection: start-up just polled and the schedule polls again shortly;
            # refreshing here would double every account's start-up requests.
            return
        log.info("account=%s stream reconnected: refreshing from REST", book.info.id)
        task = asyncio.get_running_loop().create_task(
            self._refresh(book), name=f"refresh {book.info.id}"
        )
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, book: AccountBook) -> None:
        await self._poller.poll_positions(book)
        await self._poller.poll_summary(book)
