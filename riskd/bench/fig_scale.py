"""Figure 4: one riskd process watching 1,000 accounts, polled every 5 s, with their streams.

The riskd worker watches the scale fleet (1,000 accounts x 3 positions by default) with the
daemon's default schedule (summary every 5 s, positions every 10 s, polls spread over the
interval) and one stream per account, while the simulator's random walk runs at a steady
market-like rate. After one summary interval of settling, the CPU share is the process's CPU
time (every thread, user + system) over a wall-clock window, first with the walk stopped (the
cost of polling alone, side by side) and then with it running; peak RSS is the process's
``VmHWM`` at the end (start-up included).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from riskd.bench import fmt
from riskd.bench.context import BenchContext
from riskd.bench.fleet import RULES_YAML, SYMBOLS
from riskd.bench.proc import WorkerError, WorkerProcess
from riskd.bench.report import Check, Figure, Target
from riskd.bench.simproc import SimError

_MB = 1_000_000 / 1024  # KiB per MB
_POLLS = ("/AccountSummary", "/Positions")
_SETTLE_SLICE = 1.0
_SETTLED = 1.25  # polls done per second at most this times the schedule's: start-up is over


async def run_scale_figure(ctx: BenchContext, accounts: Sequence[str]) -> Figure:
    """Figure 4."""
    s = ctx.settings
    fig = Figure(4, f"scale: {len(accounts):,} accounts, polled every "
                 f"{s.scale_summary_interval:g} s, + streams")  # fmt: skip
    try:
        await _measure(ctx, fig, accounts)
    except (WorkerError, SimError, TimeoutError, OSError) as exc:
        fig.error = str(exc)
    return fig


async def _measure(ctx: BenchContext, fig: Figure, accounts: Sequence[str]) -> None:
    s = ctx.settings
    config = ctx.riskd_config(
        "scale",
        accounts,
        rules=RULES_YAML,
        summary_interval=s.scale_summary_interval,
        positions_interval=s.scale_positions_interval,
    )
    worker = ctx.worker("scale-riskd", config)
    await worker.start()
    try:
        started = await worker.request("start", timeout=300)
        subscriptions = await ctx.wait_streams(accounts, timeout=180)
        due = len(accounts) * (1 / s.scale_summary_interval + 1 / s.scale_positions_interval)
        settled = await _settle(ctx, due, s.scale_summary_interval, s.scale_settle)
        idle = await _window(ctx, worker, s.scale_idle_window)
        await ctx.control.set_tick_rate(s.market_rate)
        await asyncio.sleep(s.settle)
        market = await _window(ctx, worker, s.scale_window)
        memory = await worker.request("memory")
    finally:
        await ctx.control.set_tick_rate(0)
        await worker.stop()
    peak_mb = int(memory["VmHWM"]) / _MB
    rss_mb = int(memory["VmRSS"]) / _MB
    subs = sum(len(v) for v in subscriptions.values())
    cpu_share = market.cpu_share
    fig.measured = [
        f"CPU {cpu_share:.2f} core, peak RSS {peak_mb:,.0f} MB",
        f"(RSS at the end {rss_mb:,.0f} MB)",
        f"{fmt.rate(market.ticks)} ticks, {fmt.rate(market.polls)} polls done",
    ]
    fig.baseline = [
        f"walk stopped (polls only): {idle.cpu_share:.2f} core, {fmt.rate(idle.polls)} polls done",
        f"polls due: {fmt.rate(due)}",
    ]
    fig.checks = [
        Check("CPU < 0.5 core", cpu_share, Target(0.5, "below")),
        Check("peak RSS < 200 MB", peak_mb, Target(200.0, "below")),
    ]
    fig.notes = [
        f"{len(accounts):,} accounts x {s.scale_positions} positions (80% USD, 20% EUR), "
        f"FTMO-style rules, summary every {s.scale_summary_interval:g} s and positions every "
        f"{s.scale_positions_interval:g} s (spread over the interval), one stream per account "
        f"({subs:,} subscriptions over {len(SYMBOLS)} symbols). Random walk at "
        f"{s.market_rate:g} ticks/s over the {len(SYMBOLS)} symbols (about "
        f"{s.market_rate / len(SYMBOLS):.0f} per symbol per second, a busy market), which fans "
        f"out to {fmt.rate(market.ticks)} ticks into riskd.",
        f"CPU share = process CPU time (all threads, user + system) / wall over "
        f"{market.wall:.1f} s with the walk running, after {settled} and a {idle.wall:.1f} s "
        f"window with the walk stopped (polling, the once-a-second rule check of every "
        f"account, keepalives: the side-by-side figure). Polls done = "
        f"/AccountSummary + /Positions requests reaching the simulator in the window. "
        f"Start-up took {float(started['startup_seconds']):.1f} s (first polls of every "
        f"account). Peak RSS = VmHWM of the riskd process (MB = 10^6 bytes), start-up "
        f"included. The simulator used {market.sim_share:.2f} core serving it.",
    ]


async def _settle(ctx: BenchContext, due: float, least: float, most: float) -> str:
    """Wait until start-up's extra polls are done: at least ``least`` seconds (one summary
    interval), then until the poll rate is about what the schedule says, at most ``most``
    seconds in all. Says how it went, for the notes."""
    began = time.monotonic()
    await asyncio.sleep(least)
    while True:
        await ctx.control.clear_requests()
        await asyncio.sleep(_SETTLE_SLICE)
        done = sum([len(await ctx.control.requests(path=p)) for p in _POLLS]) / _SETTLE_SLICE
        waited = time.monotonic() - began
        if done <= _SETTLED * due:
            return f"{waited:.0f} s for start-up's polls to settle"
        if waited >= most:
            return (
                f"{waited:.0f} s of settling (start-up's polls had not settled: "
                f"{fmt.rate(done)} done vs {fmt.rate(due)} due)"
            )


@dataclass(frozen=True, slots=True)
class _Window:
    wall: float
    cpu_share: float
    ticks: float  # per second
    polls: float  # per second
    sim_share: float


async def _window(ctx: BenchContext, worker: WorkerProcess, seconds: float) -> _Window:
    """One measured window: riskd's CPU and ticks, polls seen by the simulator, its CPU."""
    await ctx.control.clear_requests()
    sim_clock = ctx.sim.clock()
    sim_clock.mark()
    answer = await worker.request("window", seconds=seconds, timeout=seconds + 60)
    sim_share = sim_clock.share()
    polls = sum([len(await ctx.control.requests(path=p)) for p in _POLLS])
    wall = float(answer["wall"])
    return _Window(
        wall=wall,
        cpu_share=float(answer["cpu"]) / wall,
        ticks=int(answer["ticks"]) / wall,
        polls=polls / wall,
        sim_share=sim_share,
    )
