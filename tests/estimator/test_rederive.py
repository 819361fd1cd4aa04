"""A wrong contract size is caught by the poll, re-derived, counted, and then tracks the sim."""

from __future__ import annotations

import pytest

from riskd.api2trade.models import AccountSummary, Position
from riskd.monitor.estimator import EquityEstimator, Tolerance
from riskd.sim import SimServer
from tests.estimator.helpers import T0, Clock, anchor, feed, move, poll
from tests.estimator.test_maths import assert_tracks


@pytest.mark.parametrize(
    ("currency", "symbol", "wrong", "right"),
    [
        ("EUR", "GER40", 25.0, 1.0),  # a broker whose index lot is 25 contracts: not this one
        ("USD", "XAUUSD", 10.0, 100.0),
        ("USD", "EURJPY", 1_000.0, 100_000.0),  # through the JPY -> USD conversion
    ],
)
def test_a_wrong_contract_size_is_rederived_from_the_poll(
    sim: SimServer, currency: str, symbol: str, wrong: float, right: float
) -> None:
    account = sim.create_account(currency=currency)
    ticket = sim.open_position(account, symbol, "buy", 2.0)
    sim.open_position(account, symbol, "sell", 0.5)
    sim.set_price(symbol, sim.quote(symbol).bid * 1.002)
    est = EquityEstimator(contract_sizes={symbol: wrong})
    unchecked = EquityEstimator(contract_sizes={symbol: wrong}, tolerance=Tolerance(absolute=1e12))
    clock = Clock()

    summary = anchor(est, sim, account, clock)
    anchor(unchecked, sim, account, clock)
    assert est.equity == summary.equity
    for s in sorted(est.symbols_needed()):
        feed(est, sim, clock, s)  # brings the JPY -> USD rate EURJPY's check waits for
        feed(unchecked, sim, clock, s)
    # One re-derivation: the size is learned per symbol, so the second position already
    # agrees with the poll.
    assert est.counters["rederived"] == 1
    assert est.learned_contract_sizes[symbol] == pytest.approx(right, rel=1e-3)
    assert {p.size_source for p in est.positions()} == {"learned"}
    assert unchecked.counters["rederived"] == 0
    assert_tracks(est, sim, account)

    for factor in (0.999, 1.0012, 0.9985):
        move(est, sim, clock, symbol, factor)
        feed(unchecked, sim, clock, symbol)
        assert_tracks(est, sim, account)
    polled, _ = poll(sim, account)
    assert unchecked.equity is not None
    assert abs(unchecked.equity - polled.equity) > 5.0  # what the check is for

    # The learned size agrees with the next poll: nothing more to re-derive or count.
    anchor(est, sim, account, clock)
    assert est.counters["rederived"] == 1
    assert est.position_profit(ticket) == next(
        p.profit for p in poll(sim, account)[1] if p.ticket == ticket
    )


def test_the_check_waits_for_the_conversion_rate(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    sim.open_position(account, "EURJPY", "buy", 1.0)
    sim.set_price("EURJPY", sim.quote("EURJPY").bid * 1.002)
    est = EquityEstimator(contract_sizes={"EURJPY": 10_000.0})
    clock = Clock()
    summary = anchor(est, sim, account, clock)
    feed(est, sim, clock, "EURJPY")
    assert est.counters["rederived"] == 0  # no JPY -> USD rate: nothing to compare yet
    assert est.equity == summary.equity
    feed(est, sim, clock, "USDJPY")
    assert est.counters["rederived"] == 1
    assert est.learned_contract_sizes["EURJPY"] == pytest.approx(100_000.0, rel=1e-4)
    assert_tracks(est, sim, account)


def test_a_right_override_is_kept(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    sim.open_position(account, "US30", "buy", 3.0)
    est = EquityEstimator(contract_sizes={"US30.cash": 1.0})  # suffixes are ignored
    clock = Clock()
    anchor(est, sim, account, clock)
    feed(est, sim, clock, "US30")
    move(est, sim, clock, "US30", 1.0017)
    anchor(est, sim, account, clock)
    assert est.counters["rederived"] == 0
    assert [p.size_source for p in est.positions()] == ["override"]


def summary(equity: float = 10_000.0, currency: str = "USD") -> AccountSummary:
    return AccountSummary(
        balance=10_000, equity=equity, free_margin=equity, margin_level=0, currency=currency
    )


def position(symbol: str, profit: float, price: float, side: str = "buy") -> Position:
    return Position.model_validate(
        {
            "ticket": 7,
            "symbol": symbol,
            "type": side,
            "volume": 1.0,
            "openPrice": 100.0,
            "profit": profit,
            "swap": 0.0,
            "currentPrice": price,
        }
    )


def test_within_tolerance_is_not_rederived() -> None:
    # US30 in a USD account, 1 contract per lot: 10 points are worth 10 USD.
    est = EquityEstimator()
    est.anchor(summary(), [position("US30", 10.9, 110.0)], T0)  # off by 0.9 < 1.0 absolute
    assert est.counters["rederived"] == 0
    est = EquityEstimator(tolerance=Tolerance(relative=0.0, absolute=0.5))
    est.anchor(summary(), [position("US30", 10.9, 110.0)], T0)
    assert est.counters["rederived"] == 1
    assert est.learned_contract_sizes["US30"] == pytest.approx(1.09)


def test_a_poll_no_size_explains_is_counted_not_learned() -> None:
    est = EquityEstimator()
    est.anchor(summary(), [position("US30", -10.0, 110.0)], T0)  # price up, buy lost?
    assert est.counters == {"rederived": 0, "unexplained": 1, "poll_valued": 0}
    assert est.learned_contract_sizes == {}


def test_an_unknown_instrument_is_valued_per_point_from_the_poll() -> None:
    est = EquityEstimator()
    start = summary(10_250.0)
    est.anchor(start, [position("NAS100", 250.0, 110.0)], T0)  # 25 USD a point
    assert est.counters["poll_valued"] == 1
    assert est.on_tick("NAS100", 112.0, 112.5, T0, T0) == pytest.approx(10_300.0)
    (view,) = est.positions()
    assert view.size_source == "poll"
    assert view.profit == pytest.approx(300.0)


def test_an_unknown_instrument_at_its_open_price_waits_for_the_next_poll() -> None:
    est = EquityEstimator()
    est.anchor(summary(), [position("NAS100", 0.0, 100.0)], T0)
    assert est.on_tick("NAS100", 112.0, 112.5, T0, T0) is None
    assert est.equity == 10_000.0
    assert [p.size_source for p in est.positions()] == ["none"]
