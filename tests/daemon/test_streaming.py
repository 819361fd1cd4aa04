"""Ticks drive the rules: a breach on the stream is confirmed and flattened once, reconnects
resubscribe and refresh from REST, and subscriptions follow positions."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from riskd.service import Service, ServiceSettings
from riskd.sim import SimServer
from tests.daemon.conftest import RecordingAlerter, service_settings, wait_until


def _slow_polls(settings: ServiceSettings) -> ServiceSettings:
    """Polls far apart, so only the stream can see what happens in the test."""
    poll = replace(settings.poll, summary_interval=60.0, positions_interval=60.0,
                   check_interval=60.0)  # fmt: skip
    return replace(settings, poll=poll)


async def test_breach_on_ticks_is_confirmed_and_flattened_once(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    tickets = [sim.open_position(account, "EURUSD", "buy", 1.0),
               sim.open_position(account, "EURUSD", "buy", 0.5)]  # fmt: skip
    service = Service(_slow_polls(service_settings(sim, tmp_path / "s.sqlite", account)),
                      alerter=alerter)  # fmt: skip
    await service.start()
    try:
        book = service.books[account]
        await wait_until(lambda: book.stream is not None and book.stream.connected)
        # The start-up poll and the schedule's first run.
        await wait_until(lambda: sim.requests.count(path="/AccountSummary") >= 2)
        summaries = sim.requests.count(path="/AccountSummary")
        bid = 1.08500
        while not alerter.events().count("breach"):  # a pip a tick: $150 a tick
            bid = round(bid - 0.0001, 5)
            sim.set_price("EURUSD", bid, round(bid + 0.0001, 5))

            # One tick at a time: wait until the estimate took it (or it breached).
            def took(b: float = bid) -> bool:
                return "breach" in alerter.events() or _near(book, b)

            await wait_until(took)
            assert bid > 1.07, "no breach seen"
        await wait_until(lambda: sim.positions(account) == [])
        await wait_until(lambda: "flatten_done" in alerter.events())
        closes = Counter(r.body["ticket"] for r in sim.requests.records(path="/OrderClose"))
        assert closes == Counter({t: 1 for t in tickets})
        breach = next(a for a in alerter.alerts if a.event == "breach")
        assert breach.fields["threshold"] == "99,000.00 USD"
        # Seen on the tick that crossed: within one tick ($150) of the floor.
        equity = float(breach.fields["value"].split()[0].replace(",", ""))
        assert 98_850.0 <= equity <= 99_000.0
        # The confirmation summary (and the refresh after the flatten) are the only polls.
        assert sim.requests.count(path="/AccountSummary") - summaries <= 2
    finally:
        await service.stop()


def _near(book: object, bid: float) -> bool:
    """The estimate has taken the tick at ``bid`` (its EURUSD mid moved there)."""
    from riskd.monitor.book import AccountBook

    assert isinstance(book, AccountBook)
    return any(abs(p.profit - (bid - p.open_price) * 100_000 * p.volume) < 0.01
               for p in book.estimator.positions())  # fmt: skip


async def test_reconnect_resubscribes_and_takes_a_fresh_snapshot(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    service = Service(_slow_polls(service_settings(sim, tmp_path / "s.sqlite", account)),
                      alerter=alerter)  # fmt: skip
    await service.start()
    try:
        book = service.books[account]
        await wait_until(lambda: book.stream is not None and book.stream.connected)
        polls = sim.requests.count(path="/Positions"), sim.requests.count(path="/AccountSummary")
        assert sim.drop_streams() == 1
        await wait_until(lambda: book.stream is not None and book.stream.stats.reconnects == 1)
        await wait_until(lambda: sim.requests.count(path="/Positions") > polls[0]
                         and sim.requests.count(path="/AccountSummary") > polls[1])  # fmt: skip
        before = book.estimator.equity
        assert before is not None
        sim.set_price("EURUSD", 1.08400, 1.08410)
        await wait_until(lambda: book.estimator.equity != before)
        assert book.estimator.equity == pytest.approx(before - 100.0)  # 10 pips on 1 lot
    finally:
        await service.stop()


async def test_subscriptions_follow_positions(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    sim.set_price("USDJPY", 150.000, 150.010)
    account = sim.create_account(balance=100_000.0)
    first = sim.open_position(account, "EURUSD", "buy", 1.0)
    service = Service(_slow_polls(service_settings(sim, tmp_path / "s.sqlite", account)),
                      alerter=alerter)  # fmt: skip
    await service.start()
    try:
        book = service.books[account]
        await wait_until(lambda: book.stream is not None and book.stream.connected)
        assert book.stream is not None
        assert set(book.stream.symbols) == {"EURUSD"}
        sim.open_position(account, "EURJPY", "sell", 1.0)  # needs USDJPY to convert
        await service.poller.poll_positions(book)
        assert set(book.stream.symbols) == {"EURUSD", "EURJPY", "USDJPY"}
        with_jpy = book.estimator.equity
        # The new symbols' first quotes arrive with the subscription; small steps from the
        # current price then move the estimate once both EURJPY and USDJPY are known.
        bid = sim.quote("EURJPY").bid
        for _ in range(50):
            bid = round(bid + 0.01, 3)
            sim.set_price("EURJPY", bid)
            try:
                await wait_until(lambda: book.estimator.equity != with_jpy, timeout=0.1)
                break
            except TimeoutError:
                continue
        assert book.estimator.equity != with_jpy

        from riskd.api2trade import Api2TradeClient

        with Api2TradeClient(api_key=sim.api_key, base_url=sim.base_url) as trader:
            trader.orders.close(account, first)
        await service.poller.poll_positions(book)
        assert set(book.stream.symbols) == {"EURJPY", "USDJPY"}
    finally:
        await service.stop()


NO_CONFIRM = """
- name: max-loss
  kind: max_loss
  limit: 1000
  action: close_all
  confirm: false
"""


async def test_rule_can_opt_out_of_confirmation(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    settings = service_settings(sim, tmp_path / "s.sqlite", account, rules=NO_CONFIRM)
    service = Service(_slow_polls(settings), alerter=alerter)
    await service.start()
    try:
        book = service.books[account]
        await wait_until(lambda: book.stream is not None and book.stream.connected)
        await wait_until(lambda: sim.requests.count(path="/AccountSummary") >= 2)
        summaries = sim.requests.count(path="/AccountSummary")
        bid = 1.08500
        while "breach" not in alerter.events():
            bid = round(bid - 0.0005, 5)  # 5 pips a tick: $50
            assert bid > 1.07, "no breach seen"
            sim.set_price("EURUSD", bid, round(bid + 0.0001, 5))

            def took(b: float = bid) -> bool:
                return "breach" in alerter.events() or _near(book, b)

            await wait_until(took)
        await wait_until(lambda: sim.requests.count(path="/OrderClose") == 1)
        first_close = sim.requests.records(path="/OrderClose")[0].at
        confirmations = [
            r for r in sim.requests.records(path="/AccountSummary") if r.at < first_close
        ]
        assert len(confirmations) == summaries  # no summary between the tick and the close
    finally:
        await service.stop()


async def test_polls_at_different_prices_do_not_count_a_move_twice(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    """Positions polled at one price, the summary at another: the next tick at the summary's
    price must leave the estimate at the broker's equity, not move it again."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    service = Service(_slow_polls(service_settings(sim, tmp_path / "s.sqlite", account)),
                      alerter=alerter)  # fmt: skip
    await service.start()
    try:
        book = service.books[account]
        await wait_until(lambda: book.stream is not None and book.stream.connected)
        # Let the schedule's first runs pass, so only this test's polls interleave with ticks.
        await wait_until(lambda: sim.requests.count(path="/AccountSummary") >= 2
                         and sim.requests.count(path="/Positions") >= 2)  # fmt: skip
        await service.poller.poll_positions(book)
        sim.set_price("EURUSD", 1.08400, 1.08410)  # -10 pips: -100
        await wait_until(
            lambda: book.estimator.equity == pytest.approx(sim.summary(account)["equity"])
        )
        await service.poller.poll_summary(book)  # newer than the positions, at the new price
        sim.set_price("EURUSD", 1.08400, 1.08410)  # the same price again, as a tick
        sim.set_price("EURUSD", 1.08399, 1.08409)  # and a tenth of a pip lower: -1
        expected = sim.summary(account)["equity"]
        await wait_until(lambda: book.estimator.equity == pytest.approx(expected))

        sim.set_price("EURUSD", 1.08300, 1.08310)  # -99.9 more
        await service.poller.poll_positions(book)  # positions newer than the summary now
        sim.set_price("EURUSD", 1.08300, 1.08310)
        sim.set_price("EURUSD", 1.08310, 1.08320)  # +10
        expected = sim.summary(account)["equity"]
        await wait_until(lambda: book.estimator.equity == pytest.approx(expected))
    finally:
        await service.stop()


STALE_DATA_PRESET = (Path(__file__).resolve().parents[2] / "rules" / "stale-data.yaml").read_text()


@pytest.mark.parametrize("streaming", [True, False])
async def test_stale_tick_rule_does_not_fire_at_start_up(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter, streaming: bool
) -> None:
    """The first evaluation runs before the stream connects (or with no stream at all):
    "no tick yet" is not "no tick for a minute"."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    settings = service_settings(sim, tmp_path / "s.sqlite", account, rules=STALE_DATA_PRESET)
    settings = replace(settings, streaming=replace(settings.streaming, enabled=streaming))
    service = Service(settings, alerter=alerter)
    await service.start()
    try:
        book = service.books[account]
        checks = sim.requests.count(path="/AccountSummary")
        await wait_until(lambda: sim.requests.count(path="/AccountSummary") >= checks + 3)
        assert book.evaluation is not None
        assert book.evaluation.verdict("stale-data").status.value == "ok"
        assert "stale" not in alerter.events()
    finally:
        await service.stop()
