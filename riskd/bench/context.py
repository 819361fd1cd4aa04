"""What every figure of a benchmark run shares: settings, the simulator, and its helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskd.bench.proc import WorkerProcess
from riskd.bench.simproc import SimControl, SimProcess


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """Sizes, rates and durations of one run. :data:`FULL` is the benchmark; :data:`QUICK` a
    smoke run of the same machinery (its figures mean little)."""

    quick: bool = False
    seed: int = 1
    market_rate: float = 28.0
    """Random-walk ticks/s of an ordinary busy market: 2 per symbol per second over the 14
    symbols (figures 4 and 5; figures 1 and 2 are stress rates)."""
    # Figures 1, 2 and 5: the stream fleet.
    accounts: int = 100
    positions: int = 10
    latency_rate: float = 10_000.0  # ticks/s delivered, summed over the accounts' streams
    overdrive_rate: float = 2_500.0  # random-walk ticks/s: more than the simulator can send
    settle: float = 1.0
    window: float = 8.0
    bare_latency_window: float = 3.0
    ramp_steps: int = 8
    ramp_settle: float = 0.5
    ramp_window: float = 2.0
    accuracy_rounds: int = 6
    accuracy_gap: float = 1.0  # walk between rounds, so estimates drift from their anchors
    # Figure 3.
    breaches: int = 10
    poll_interval: float = 10.0
    step_spacing: float = 0.4
    # Figure 4.
    scale_accounts: int = 1_000
    scale_positions: int = 3
    scale_summary_interval: float = 5.0
    scale_positions_interval: float = 10.0
    scale_window: float = 15.0
    scale_idle_window: float = 5.0

    @property
    def scale_settle(self) -> float:
        """Longest wait for start-up's extra polls to finish before figure 4 measures."""
        return 4 * self.scale_summary_interval


FULL = BenchSettings()
QUICK = BenchSettings(
    quick=True,
    accounts=8,
    positions=10,
    latency_rate=1_000.0,
    overdrive_rate=400.0,
    settle=0.2,
    window=0.5,
    bare_latency_window=0.5,
    ramp_steps=1,
    ramp_settle=0.1,
    ramp_window=0.5,
    accuracy_rounds=1,
    accuracy_gap=0.3,
    breaches=2,
    poll_interval=1.0,
    step_spacing=0.2,
    scale_accounts=30,
    scale_positions=2,
    scale_summary_interval=1.0,
    scale_positions_interval=2.0,
    scale_window=0.5,
    scale_idle_window=0.3,
)


@dataclass(slots=True)
class BenchContext:
    """The running simulator and where the run keeps its logs and state files."""

    settings: BenchSettings
    sim: SimProcess
    control: SimControl
    log_dir: Path
    timings: dict[str, float] = field(default_factory=dict)

    def worker(self, name: str, config: dict[str, Any]) -> WorkerProcess:
        """A worker process (not started) logging to ``<log_dir>/<name>.log``."""
        return WorkerProcess(config, self.log_dir / f"{name}.log")

    def state_dir(self, name: str) -> str:
        """A fresh directory for one riskd worker's SQLite state."""
        path = self.log_dir / f"{name}-state"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def riskd_config(self, name: str, accounts: Collection[str], **options: Any) -> dict[str, Any]:
        """A riskd worker configuration for ``accounts`` on this run's simulator."""
        return {
            "mode": "riskd",
            "riskd": {
                "base_url": self.sim.base_url,
                "api_key": self.sim.api_key,
                "accounts": list(accounts),
                "state_dir": self.state_dir(name),
                **options,
            },
        }

    async def wait_streams(
        self, accounts: Collection[str], timeout: float = 60.0
    ) -> dict[str, list[str]]:
        """Wait until every account has a live stream with subscriptions; returns them.

        Read from the simulator's side (``stream_stats``), so it holds for riskd and for the
        bare loop alike without looking inside either.
        """
        wanted = set(accounts)
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.control.stream_stats()
            subscribed = {
                s["account_id"]: list(s["symbols"])
                for s in stats
                if s["account_id"] in wanted and s["symbols"]
            }
            if len(subscribed) == len(wanted):
                return subscribed
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"only {len(subscribed)} of {len(wanted)} streams subscribed after "
                    f"{timeout:.0f} s"
                )
            await asyncio.sleep(0.2)

    async def dropped(self) -> int:
        """Messages the simulator discarded so far because a client read too slowly."""
        return sum(int(s["dropped"]) for s in await self.control.stream_stats())
