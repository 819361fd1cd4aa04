"""The tick path's quiet band in the daemon: ticks inside it decide without evaluating, a tick
leaving it is evaluated (and a breach acted on), and the periodic check skips quiet accounts
except for its display refresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from riskd.api2trade import Quote
from riskd.service import Service
from riskd.sim import SimServer
from tests.daemon.conftest import (
    MAX_LOSS_1000,
    RecordingAlerter,
    service_settings,
    wait_until,
)


async def _watched(sim: SimServer, tmp_path: Path) -> tuple[Service, str]:
    """One account holding 1 lot EURUSD (max-loss floor 99,000), polled once each way."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0, open_price=1.08500)
    settings = service_settings(sim, tmp_path / "state.sqlite", account)
    service = Service(settings, alerter=RecordingAlerter())
    book = service.books[account]
    await service.poller.poll_summary(book)
    await service.poller.poll_positions(book)
    return service, account


def _tick(service: Service, account: str, bid: float) -> None:
    quote = Quote(symbol="EURUSD", bid=bid, ask=bid + 0.0001, time=datetime.now(UTC))
    service.watcher.on_tick(service.books[account], quote, time.perf_counter())


async def test_ticks_inside_the_band_skip_evaluation_and_a_crossing_tick_does_not(
    sim: SimServer, tmp_path: Path
) -> None:
    service, account = await _watched(sim, tmp_path)
    book = service.books[account]
    try:
        _tick(service, account, 1.08490)  # -10 USD: evaluated, band computed
        first = book.evaluation
        equity = book.estimator.equity
        assert equity is not None and book.band is not None
        assert book.band.lo < equity < book.band.hi
        _tick(service, account, 1.08470)  # -30 USD: inside the band
        assert book.evaluation is first  # decided without a new evaluation
        # A poll that changes nothing the rules read but equity keeps the band: only the
        # numbers are refreshed (headroom follows the polled equity, -15 USD at 1.08485).
        band = book.band
        sim.set_price("EURUSD", 1.08485, 1.08495)
        await service.poller.poll_summary(book)
        await service.poller.poll_positions(book)
        assert book.band is band and book.requiet(datetime.now(UTC))
        assert book.evaluation is not None and book.evaluation is not first
        assert book.evaluation.verdicts[0].headroom == pytest.approx(985.0)
        # A new balance (a deposit) is something the rules read: the full check runs.
        sim.set_balance(account, 100_050.0)
        await service.poller.poll_summary(book)
        assert not book.requiet(datetime.now(UTC))
        second = book.evaluation
        assert second is not None and second.verdicts[0].value == pytest.approx(100_035.0)
        # 1,100 USD down (equity 98,950) crosses the 99,000 floor: evaluated, latched,
        # confirmation started.
        # (The bad-tick filter takes a jump this size once it persists for three ticks.)
        sim.set_price("EURUSD", 1.07400, 1.07410)
        for bid in (1.07400, 1.07401, 1.07400):
            _tick(service, account, bid)
            if book.confirming:
                break
        assert book.evaluation is second  # the breach goes to the confirmation, not the book
        assert book.confirming and book.band is None
        await service.watcher.drain()
        assert book.evaluation is not None and book.evaluation.verdicts[0].latched
    finally:
        await service.stop()


async def test_the_periodic_check_skips_quiet_accounts_but_refreshes_them(
    sim: SimServer, tmp_path: Path
) -> None:
    service, account = await _watched(sim, tmp_path)
    book = service.books[account]
    try:
        _tick(service, account, 1.08490)
        quiet = book.evaluation
        await service.watcher.check_periodic(book, refresh=False)
        assert book.evaluation is quiet
        await service.watcher.check_periodic(book, refresh=True)
        assert book.evaluation is not quiet
        # Without a band (no tick since this check) the account is always checked.
        book.keep_band(None)
        checked = book.evaluation
        await service.watcher.check_periodic(book, refresh=False)
        assert book.evaluation is not checked
    finally:
        await service.stop()


MARGIN_GUARD = """
- name: margin
  kind: margin_level
  below: 150%
  action: alert
"""


async def test_a_margin_change_is_news_only_to_a_margin_rule(
    sim: SimServer, tmp_path: Path
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0, open_price=1.08500)
    for rules, still_quiet in ((MAX_LOSS_1000, True), (MARGIN_GUARD, False)):
        state = tmp_path / f"state-{still_quiet}.sqlite"
        settings = service_settings(sim, state, account, rules)
        service = Service(settings, alerter=RecordingAlerter())
        book = service.books[account]
        try:
            sim.set_price("EURUSD", 1.08500, 1.08510)
            await service.poller.poll_summary(book)
            await service.poller.poll_positions(book)
            _tick(service, account, 1.08490)
            assert book.band is not None
            # The broker's margin follows the price; the balance does not.
            sim.set_price("EURUSD", 1.08480, 1.08490)
            before = book.summary
            await service.poller.poll_summary(book)
            assert book.summary is not None and before is not None
            assert book.summary.margin != before.margin
            assert book.requiet(datetime.now(UTC)) is still_quiet
        finally:
            await service.stop()


@pytest.mark.parametrize("roll_fails_first", [False, True])
async def test_a_quiet_account_still_rolls_its_day_and_enforces_it(
    sim: SimServer, tmp_path: Path, roll_fails_first: bool
) -> None:
    """The first event after the reset is a tick (which does not roll the day), or the first
    roll fails: the day must still be rolled and its daily loss enforced."""
    reset = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    rules = (
        "- name: daily\n  kind: daily_loss\n  limit: 5%\n  limit_of: initial_balance\n"
        f'  baseline: balance\n  action: close_all\n  reset: {{at: "{reset:%H:%M}", zone: UTC}}\n'
    )
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 50.0, open_price=1.08500)  # 500 USD a pip
    settings = service_settings(sim, tmp_path / "state.sqlite", account, rules)
    service = Service(settings, alerter=RecordingAlerter(), clock=clock)
    book = service.books[account]

    def tick(bid: float) -> None:
        quote = Quote(symbol="EURUSD", bid=bid, ask=round(bid + 0.0001, 5), time=clock())
        service.watcher.on_tick(book, quote, time.perf_counter())

    try:
        offset[0] = (reset - timedelta(seconds=10)) - datetime.now(UTC)
        await service.poller.poll_positions(book)
        await service.poller.poll_summary(book)
        tick(1.08499)
        offset[0] = (reset + timedelta(seconds=1)) - datetime.now(UTC)
        if roll_fails_first:
            sim.faults.fail_next(20, path="/AccountSummary")
            await service.watcher.check_periodic(book, refresh=False)  # the roll fails
            sim.faults.reset()
        tick(1.08498)  # the first tick of the new day
        await service.watcher.check_periodic(book, refresh=False)  # rolls the day now
        assert book.states["daily"].period_start == reset
        for pips in range(1, 17):  # -8,000 USD: through the 5,000 daily floor
            bid = round(1.08498 - pips * 0.0001, 5)
            sim.set_price("EURUSD", bid, round(bid + 0.0001, 5))
            tick(bid)
        await service.watcher.drain()
        assert book.states["daily"].latched
        await wait_until(lambda: sim.requests.count(path="/OrderClose") >= 1)
    finally:
        await service.stop()


async def test_metrics_follow_the_estimate_of_a_quiet_account(
    sim: SimServer, tmp_path: Path
) -> None:
    service, account = await _watched(sim, tmp_path)
    book = service.books[account]
    try:
        _tick(service, account, 1.08490)  # -10 USD: evaluated, band computed
        kept = book.evaluation
        _tick(service, account, 1.08470)  # -30 USD: inside the band, not evaluated
        assert book.evaluation is kept
        text = service.metrics.exposition().decode()
        line = next(
            row
            for row in text.splitlines()
            if row.startswith("riskd_rule_headroom{") and 'rule="max-loss"' in row
        )
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(970.0)  # 99,970 - 99,000
    finally:
        await service.stop()
