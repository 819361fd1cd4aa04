"""``riskd demo``: riskd guarding an FTMO account through a sell-off, on the simulator.

No key and no account: the simulator runs in-process on a free loopback port with a demo
account holding positions; the real daemon (the same ``Service`` as ``riskd run``) watches it
with the FTMO 2-Step preset. A scripted sell-off walks equity down through the warnings to
the daily floor; riskd confirms the breach, flattens the account and locks it out, and closes
the position the "trader" opens afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from riskd.actions.alerts import Alert
from riskd.actions.enforcer import EnforcementSettings
from riskd.api2trade import ClientSettings
from riskd.engine import Status, load_account_rules
from riskd.monitor.poller import PollSettings
from riskd.monitor.watcher import WatchSettings
from riskd.service import AccountSpec, Service, ServiceSettings
from riskd.sim import SimServer

PRESET = Path(__file__).resolve().parent.parent / "rules" / "ftmo-2step.yaml"
INITIAL = 100_000.0

_MARKS = {
    "warn": "!  WARNING",
    "breach": "X  BREACH",
    "flatten_done": "#  FLATTENED",
    "flatten_failed": "X  FLATTEN FAILED",
    "lockout_close": "#  LOCKOUT",
    "recovered": "+  RECOVERED",
    "lockout_cleared": "+  LOCKOUT CLEARED",
}


class TerminalAlerter:
    """Prints alerts for people watching the demo (the daemon's alert interface)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.events: list[str] = []
        self.changed = asyncio.Event()

    def send(self, alert: Alert) -> None:
        self.events.append(alert.event)
        self.changed.set()
        mark = _MARKS.get(alert.event)
        if mark is None:
            return
        print(f"    {mark}  {alert.title}", file=self._out)
        print(f"        {alert.body}", file=self._out, flush=True)


def _row(service: Service, account: str) -> str:
    book = service.books[account]
    evaluation = book.current(datetime.now(UTC))
    if book.summary is None or evaluation is None:
        return "  waiting for the first poll..."
    equity = book.estimator.equity if book.estimator.equity is not None else book.summary.equity
    parts = [f"  equity {equity:>11,.2f} (polled {book.summary.equity:>10,.2f})"]
    for verdict in evaluation.verdicts:
        if verdict.kind not in ("daily_loss", "max_loss") or verdict.threshold is None:
            continue
        label = "daily floor" if verdict.kind == "daily_loss" else "max floor"
        used = "" if verdict.used is None else f" {verdict.used:4.0%} used"
        parts.append(f"{label} {verdict.threshold:>10,.2f}{used} [{verdict.status.value}]")
    return " | ".join(parts) + f" | positions {len(book.positions or [])}"


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        return False
    return True


async def run_demo(out: TextIO = sys.stdout, speed: float = 1.0) -> int:
    """Run the demo; ``speed`` > 1 compresses every interval (tests use it). Returns 0 when
    riskd flattened and locked out the account as it should, 1 otherwise."""
    if not PRESET.is_file():
        print(f"riskd demo: preset {PRESET} not found (run from a clone of riskd)", file=out)
        return 1
    rules = tuple(load_account_rules([PRESET]))
    step = 0.5 / speed
    with tempfile.TemporaryDirectory(prefix="riskd-demo-") as tmp, SimServer(tick_rate=0) as sim:
        sim.set_price("EURUSD", 1.08500, 1.08508)
        sim.set_price("XAUUSD", 2350.00, 2350.30)
        account = sim.create_account(balance=INITIAL, login="demo", server="FTMO-Demo")
        sim.open_position(account, "EURUSD", "buy", 5.0)
        sim.open_position(account, "XAUUSD", "buy", 1.0)
        settings = ServiceSettings(
            client=ClientSettings(api_key=sim.api_key, base_url=sim.base_url),
            state_path=str(Path(tmp) / "state.sqlite"),
            accounts=(AccountSpec(account, "FTMO 100k (demo)", INITIAL, rules),),
            poll=PollSettings(
                summary_interval=4 * step,
                positions_interval=4 * step,
                start_jitter=0,
                check_interval=step / 2,
            ),
            watch=WatchSettings(confirm_breach=True),
            enforcement=EnforcementSettings(round_pause=0.1),
        )
        alerter = TerminalAlerter(out)
        service = Service(settings, alerter=alerter)
        print("riskd demo: an FTMO 2-Step 100k account on the built-in simulator", file=out)
        print(
            f"  rules: {PRESET.name} (daily loss 5% from the midnight Prague balance, "
            "max loss 10%), both lockout",
            file=out,
        )
        print(
            "  positions: buy 5.00 EURUSD, buy 1.00 XAUUSD. Polls every 2 s; equity is also\n"
            "  estimated on every tick of the stream. A sell-off starts now.\n",
            file=out,
            flush=True,
        )
        await service.start()
        try:
            flattened = await _sell_off(sim, service, account, alerter, out, step)
            locked = flattened and await _trader_tries_again(
                sim, service, account, alerter, out, step
            )
        finally:
            await service.stop()
    verdicts = service.books[account].evaluation
    daily = (
        next((v for v in verdicts.verdicts if v.kind == "daily_loss"), None) if verdicts else None
    )
    print("", file=out)
    if flattened and locked and daily is not None and daily.status is Status.LATCHED:
        reset = daily.next_reset.strftime("%Y-%m-%d %H:%M UTC") if daily.next_reset else "?"
        print(
            f"Done: riskd flattened the account at the daily floor and kept it flat.\n"
            f"The lockout lasts until the FTMO day resets ({reset} = 00:00 Europe/Prague).",
            file=out,
        )
        return 0
    print("Demo did not go as expected (see above).", file=out)
    return 1


async def _sell_off(
    sim: SimServer,
    service: Service,
    account: str,
    alerter: TerminalAlerter,
    out: TextIO,
    step: float,
) -> bool:
    """A pip a tick on EURUSD (and 20 cents on gold): -$70 of equity per tick, ten ticks per
    printed row. Polls run every two seconds; the ticks are what riskd reacts to."""
    bid, gold = 1.08500, 2350.00
    for i in range(1, 400):
        bid = round(bid - 0.0001, 5)
        gold = round(gold - 0.2, 2)
        sim.set_prices([("EURUSD", bid, round(bid + 0.00008, 5)), ("XAUUSD", gold, gold + 0.3)])
        await asyncio.sleep(step / 10)
        if i % 10 == 0:
            print(_row(service, account), file=out, flush=True)
        if "flatten_done" in alerter.events:
            print(_row(service, account), file=out, flush=True)
            return True
    return await _until(lambda: "flatten_done" in alerter.events, 10)


async def _trader_tries_again(
    sim: SimServer,
    service: Service,
    account: str,
    alerter: TerminalAlerter,
    out: TextIO,
    step: float,
) -> bool:
    await asyncio.sleep(step * 2)
    print(_row(service, account), file=out)
    print(
        "\n  The trader opens a new EURUSD position while the account is locked out...",
        file=out,
        flush=True,
    )
    sim.open_position(account, "EURUSD", "buy", 1.0)
    closed = await _until(
        lambda: "lockout_close" in alerter.events and not sim.positions(account), 10
    )
    await asyncio.sleep(step * 2)
    print(_row(service, account), file=out, flush=True)
    return closed


def main(speed: float = 1.0) -> int:
    """Entry point of ``riskd demo``."""
    # The demo's own output tells the story; log lines would drown it (unless debugging).
    root = logging.getLogger()
    if root.level > logging.DEBUG:
        root.setLevel(logging.ERROR)
    return asyncio.run(run_demo(speed=speed))
