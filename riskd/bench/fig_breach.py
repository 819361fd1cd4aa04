"""Figure 3: breach reaction, riskd (ticks, confirmation on) against a 10 s polling monitor.

Setup: ``2 x breaches`` accounts, each holding one 10-lot EURUSD buy opened so that the i-th
step of a price staircase (EURUSD bid down 2 pips per step) takes its equity from 100 USD above
its max-loss floor (100,000 - 1,000) to 100 USD below it. Half are watched by riskd (its own
process, streaming on, confirmation on, the default 5 s / 10 s polling), the other half by
polling monitors in the benchmark process, one per account, written like the SDK's example
monitor: ``summary(); if equity <= floor: close_all(); sleep(interval)``, each started at a
random phase of its interval. Step ``i`` crosses the floor of riskd's i-th account and of the
i-th polled account at the same instant; the random walk is stopped, so the staircase is the
only thing moving the price.

Reaction = arrival of the account's first ``/OrderClose`` at the simulator (its request log,
``time.monotonic()``) minus the moment just before the benchmark sent the crossing price to the
simulator's control route (also ``time.monotonic()``; CLOCK_MONOTONIC is system-wide). The tick
is published a little after that moment, so the figure over-states every reaction by the
control call's transit (reported).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from riskd.api2trade import AsyncApi2TradeClient
from riskd.bench import fmt
from riskd.bench.context import BenchContext
from riskd.bench.fleet import BALANCE
from riskd.bench.proc import WorkerError
from riskd.bench.report import Check, Figure, Target
from riskd.bench.simproc import SimError
from riskd.bench.stats import Distribution

SYMBOL = "EURUSD"
START_BID = 1.08500
STEP = 0.0002  # 2 pips: well inside the bad-tick filter's jump threshold (0.2% of the price)
LOTS = 10.0  # 100 USD per pip
LIMIT = 1_000.0
FLOOR = BALANCE - LIMIT
MARGIN = 100.0  # equity this far above the floor before the crossing step, this far below after

RULES = f"""
- name: max-loss
  kind: max_loss
  limit: {LIMIT:.0f}
  action: close_all
  severity: critical
"""

_LEAD_IN = 0.5  # between starting the monitors and the first step


def _open_price(step: int) -> float:
    """Open price whose max-loss floor is crossed by staircase step ``step`` (1-based)."""
    crossing_bid = START_BID - step * STEP
    return round(crossing_bid + (LIMIT + MARGIN) / (LOTS * 100_000.0), 5)


@dataclass(slots=True)
class _Crossing:
    sent: float  # monotonic, just before the control call
    answered: float  # monotonic, when it returned


async def _create(ctx: BenchContext, steps: int) -> list[str]:
    accounts = []
    for step in range(1, steps + 1):
        account: str = await ctx.control.call("create_account", balance=BALANCE)
        await ctx.control.call(
            "open_position",
            account_id=account,
            symbol=SYMBOL,
            side="buy",
            volume=LOTS,
            open_price=_open_price(step),
        )
        accounts.append(account)
    return accounts


async def _polling_monitor(
    client: AsyncApi2TradeClient, account: str, phase: float, interval: float
) -> None:
    """The SDK example's prop-firm monitor: a summary every ``interval``, close_all at the
    floor."""
    await asyncio.sleep(phase)
    while True:
        summary = await client.accounts.summary(account)
        if summary.equity <= FLOOR:
            await client.orders.close_all(account)
            return
        await asyncio.sleep(interval)


async def _first_closes(ctx: BenchContext, accounts: Sequence[str]) -> dict[str, float]:
    firsts: dict[str, float] = {}
    for record in await ctx.control.requests(path="/OrderClose"):
        account = record["account_id"]
        if account in accounts and account not in firsts:
            firsts[account] = float(record["at"])
    return firsts


async def _wait_closes(ctx: BenchContext, accounts: Sequence[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(await _first_closes(ctx, accounts)) < len(accounts):
        if time.monotonic() > deadline:
            return
        await asyncio.sleep(0.25)


async def run_breach_figure(ctx: BenchContext) -> Figure:
    """Figure 3."""
    s = ctx.settings
    fig = Figure(3, f"breach reaction (confirmation on) vs {s.poll_interval:g} s polling")
    try:
        await _measure(ctx, fig)
    except (WorkerError, SimError, TimeoutError, OSError) as exc:
        fig.error = str(exc)
    return fig


async def _measure(ctx: BenchContext, fig: Figure) -> None:
    s = ctx.settings
    steps = s.breaches
    await ctx.control.set_tick_rate(0)
    await ctx.control.call("set_price", symbol=SYMBOL, bid=START_BID)
    guarded = await _create(ctx, steps)
    polled = await _create(ctx, steps)
    worker = ctx.worker("breach-riskd", ctx.riskd_config("breach", guarded, rules=RULES))
    client = AsyncApi2TradeClient(api_key=ctx.sim.api_key, base_url=ctx.sim.base_url)
    rng = random.Random(f"breach:{s.seed}")
    monitors: list[asyncio.Task[None]] = []
    crossings: list[_Crossing] = []
    await worker.start()
    try:
        await worker.request("start", timeout=60)
        await ctx.wait_streams(guarded)
        await ctx.control.clear_requests()
        for account in polled:
            phase = rng.uniform(0.0, s.poll_interval)
            monitors.append(
                asyncio.create_task(_polling_monitor(client, account, phase, s.poll_interval))
            )
        await asyncio.sleep(_LEAD_IN)
        for step in range(1, steps + 1):
            sent = time.monotonic()
            await ctx.control.call(
                "set_price", symbol=SYMBOL, bid=round(START_BID - step * STEP, 5)
            )
            crossings.append(_Crossing(sent, time.monotonic()))
            await asyncio.sleep(s.step_spacing)
        await _wait_closes(ctx, [*guarded, *polled], s.poll_interval + 10.0)
        firsts = await _first_closes(ctx, [*guarded, *polled])
    finally:
        for task in monitors:
            task.cancel()
        await asyncio.gather(*monitors, return_exceptions=True)
        await client.aclose()
        await worker.stop()

    riskd = [firsts[a] - c.sent for a, c in zip(guarded, crossings, strict=True) if a in firsts]
    polling = [firsts[a] - c.sent for a, c in zip(polled, crossings, strict=True) if a in firsts]
    if len(riskd) < steps or len(polling) < steps:
        fig.error = (
            f"closes seen for {len(riskd)}/{steps} riskd and {len(polling)}/{steps} polled "
            f"accounts (see {ctx.log_dir})"
        )
        return
    r, p = Distribution.of(riskd), Distribution.of(polling)
    speedup = p.mean / r.mean
    transit = max(c.answered - c.sent for c in crossings)
    fig.measured = [
        f"p50 {fmt.ms(r.p50)}, max {fmt.ms(r.max)}",
        f"(mean {fmt.ms(r.mean)}, {r.count} breaches)",
    ]
    fig.baseline = [
        f"polling: mean {fmt.secs(p.mean)}",
        f"(p50 {fmt.secs(p.p50)}, max {fmt.secs(p.max)}, {p.count} breaches)",
        f"riskd {speedup:,.0f}x faster (mean)",
    ]
    fig.checks = [
        Check("max < 250 ms", r.max, Target(0.250, "below")),
        Check(">= 20x faster", speedup, Target(20.0, "at_least")),
    ]
    fig.notes = [
        f"{steps} floors crossed one at a time by a staircase of {SYMBOL} ticks "
        f"({STEP / 0.0001:.0f} pips every {s.step_spacing:g} s; each account holds a "
        f"{LOTS:g}-lot buy and a {LIMIT:,.0f} USD max-loss floor). riskd: its own process, "
        f"streaming, confirmation on (a fresh /AccountSummary before any close), default "
        f"5 s/10 s polling. Reaction = first /OrderClose arriving at the simulator (its "
        f"request log) - the moment before the crossing price was sent to the simulator; this "
        f"over-states each reaction by the control call's transit (at most "
        f"{fmt.ms(transit)} here).",
        f"Polling monitor: the SDK example's loop (summary every {s.poll_interval:g} s, "
        f"close_all when equity <= floor), one per account at a random phase, on "
        f"{steps} other accounts crossed by the same ticks; expected mean about "
        f"{s.poll_interval / 2:g} s (half the interval) plus the close_all's positions read.",
    ]
