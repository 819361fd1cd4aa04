"""The measured riskd: the daemon's own ``Service`` with streaming on, plus what the bench reads.

Nothing here changes how riskd works: the probe builds the same ``Service`` as ``riskd run``
(polling, streams, estimator, rules, enforcer, SQLite state), registers a tick observer on the
watcher, and answers the benchmark's questions about it:

- ticks handled and tick-to-decision latencies, from ``watcher.tick_observer``
  (``decided - received``: from the parsed tick leaving the stream iterator to the end of its
  evaluation, both ``time.perf_counter()``);
- the age of ticks when decided (wall clock now minus the simulator's time stamp on the tick,
  millisecond resolution), sampled on every 64th tick: whether riskd keeps up with the stream;
- CPU time of the whole process (``time.process_time()``: every thread, user + system);
- its estimate of each account against a fresh ``/AccountSummary`` (figure 5).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from riskd.actions.enforcer import EnforcementSettings
from riskd.api2trade import AsyncApi2TradeClient, ClientSettings
from riskd.bench.stats import Distribution
from riskd.engine import parse_rules
from riskd.monitor.poller import PollSettings
from riskd.monitor.streams import StreamingSettings
from riskd.monitor.watcher import TickTiming, WatchSettings
from riskd.service import AccountSpec, Service, ServiceSettings

_AGE_SAMPLE_MASK = 63  # sample the tick age on every 64th tick


class RiskdProbe:
    """One riskd ``Service`` watching ``accounts`` on the simulator at ``base_url``."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        accounts: Sequence[str],
        rules: str,
        state_dir: str,
        initial_balance: float = 100_000.0,
        summary_interval: float = 5.0,
        positions_interval: float = 10.0,
        confirm: bool = True,
    ) -> None:
        client = ClientSettings(api_key=api_key, base_url=base_url, timeout=10.0)
        compiled = tuple(parse_rules(rules))
        self.settings = ServiceSettings(
            client=client,
            state_path=str(Path(state_dir) / "state.sqlite"),
            accounts=tuple(
                AccountSpec(account, f"bench-{i}", initial_balance, compiled)
                for i, account in enumerate(accounts)
            ),
            # Polls are spread over the whole interval, as a long-running daemon's would be.
            poll=PollSettings(
                summary_interval=summary_interval,
                positions_interval=positions_interval,
                start_jitter=summary_interval,
            ),
            watch=WatchSettings(confirm_breach=confirm),
            enforcement=EnforcementSettings(),
            streaming=StreamingSettings(enabled=True),
        )
        self.service = Service(self.settings)
        self._sampler = AsyncApi2TradeClient(settings=client)
        self.ticks = 0
        self.moved = 0
        self._latencies: list[float] | None = None
        self._ages: list[float] = []
        # Chain to whatever riskd itself observes ticks with (its metrics), so the measured
        # tick path is the production one plus this.
        self._chained = self.service.watcher.tick_observer
        self.service.watcher.tick_observer = self._observe

    def _observe(self, timing: TickTiming) -> None:
        # On riskd's tick path: keep it to a few attribute updates.
        if self._chained is not None:
            self._chained(timing)
        self.ticks += 1
        if timing.moved:
            self.moved += 1
        if self._latencies is not None:
            self._latencies.append(timing.decided - timing.received)
        if not self.ticks & _AGE_SAMPLE_MASK:
            # The filter remembers the time stamp of the last tick it accepted for the symbol:
            # this tick's, unless it was dropped (then an older one: still "behind").
            book = self.service.books[timing.account_id]
            stamped = book.estimator.tick_filter.last_time(timing.symbol)
            if stamped is not None:
                self._ages.append(time.time() - stamped.timestamp())

    async def start(self) -> dict[str, Any]:
        """Start the service (first polls done, streams opening)."""
        began = time.perf_counter()
        await self.service.start()
        return {"startup_seconds": time.perf_counter() - began}

    async def window(self, seconds: float, latency: bool = False) -> dict[str, Any]:
        """Ticks handled, CPU used and (when asked) the latency distribution over ``seconds``."""
        self._latencies = [] if latency else None
        self._ages = []
        ticks0, moved0 = self.ticks, self.moved
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        samples, self._latencies = self._latencies, None
        return {
            "ticks": self.ticks - ticks0,
            "moved": self.moved - moved0,
            "wall": wall,
            "cpu": cpu,
            "latency": Distribution.of(samples).to_json() if samples else None,
            "age": Distribution.of(self._ages).to_json() if self._ages else None,
        }

    async def accuracy(self, concurrency: int = 4) -> dict[str, Any]:
        """Each account's estimate and last poll next to a fresh summary.

        Returns ``[estimate, last polled equity, fresh equity]`` triples. The estimate is read
        when the fresh summary's answer arrives: what riskd believed at the moment a poll
        would have told it the truth. The last poll is what a polling-only monitor believes.
        """
        gate = asyncio.Semaphore(concurrency)
        triples: list[list[float]] = []
        missing = 0

        async def one(account: str) -> None:
            nonlocal missing
            async with gate:
                fresh = await self._sampler.accounts.summary(account)
            book = self.service.books[account]
            estimate = book.estimator.equity
            if estimate is None or book.summary is None:
                missing += 1
            else:
                triples.append([estimate, book.summary.equity, fresh.equity])

        await asyncio.gather(*(one(a) for a in self.service.books))
        return {"triples": triples, "missing": missing}

    async def stop(self) -> None:
        await self.service.stop()
        await self._sampler.aclose()
