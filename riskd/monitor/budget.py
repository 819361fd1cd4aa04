"""A request budget shared by every poll job: bounded concurrency, and a pause on 429."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

log = logging.getLogger("riskd.poller")


class RequestBudget:
    """At most ``limit`` bridge requests in flight; after a 429, nobody starts one until the
    server's ``Retry-After`` has passed (all accounts share one API key's rate limit)."""

    def __init__(self, limit: int) -> None:
        self._gate = asyncio.Semaphore(limit)
        self._paused_until = 0.0
        self.rate_limited = 0

    def pause(self, seconds: float | None) -> None:
        """A 429 came back: hold every new request for ``seconds`` (1 s if unknown)."""
        self.rate_limited += 1
        until = time.monotonic() + (seconds if seconds is not None else 1.0)
        if until > self._paused_until:
            log.warning("bridge rate limit: pausing requests for %.1fs", until - time.monotonic())
            self._paused_until = until

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the pause to pass and a free slot, then hold it."""
        while (wait := self._paused_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        async with self._gate:
            yield
