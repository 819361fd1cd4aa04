"""The estimate against the simulator's own P&L (the same money.py, cent-rounded per position).

Prices move on the simulator with ``set_price`` and the same prices reach the estimator as
ticks (through the default tick filter: every step is a realistic move). The estimate must stay
within a cent per position of the polled equity, and each position's estimated profit within a
cent of its polled profit.
"""

from __future__ import annotations

import pytest

from riskd.monitor.estimator import EquityEstimator
from riskd.sim import SimServer
from tests.estimator.helpers import CENT, FLOAT_SLACK, Clock, anchor, feed, move, poll

SYMBOLS = ("EURUSD", "USDJPY", "EURJPY", "XAUUSD", "GER40")

# Each step moves every watched symbol a little (under the jump filter's 0.2% floor); the
# direction differs per symbol so conversions and positions move against each other.
STEPS = (1.0012, 0.9991, 1.0017, 1.0009, 0.9983, 0.9988)


def assert_tracks(est: EquityEstimator, sim: SimServer, account: str) -> None:
    summary, positions = poll(sim, account)
    assert est.equity is not None
    assert abs(est.equity - summary.equity) <= CENT * len(positions) + FLOAT_SLACK
    for p in positions:
        estimated = est.position_profit(p.ticket)
        assert estimated is not None
        assert abs(estimated - p.profit) <= CENT + FLOAT_SLACK, p.symbol


def run_steps(est: EquityEstimator, sim: SimServer, account: str, clock: Clock) -> None:
    for i, step in enumerate(STEPS):
        for j, symbol in enumerate(sorted(est.symbols_needed())):
            move(est, sim, clock, symbol, step if (i + j) % 2 else 2.0 - step)
        assert_tracks(est, sim, account)


@pytest.mark.parametrize("currency", ["USD", "EUR"])
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_buy_and_sell_track_the_simulator(sim: SimServer, currency: str, symbol: str) -> None:
    account = sim.create_account(balance=50_000, currency=currency)
    sim.open_position(account, symbol, "buy", 1.3)
    sim.open_position(account, symbol, "sell", 0.7)
    est = EquityEstimator()
    clock = Clock()

    summary = anchor(est, sim, account, clock)
    assert est.equity == summary.equity
    # What a fresh stream subscription delivers first: the current prices. They are the
    # prices the poll was valued at, so nothing moves.
    for s in sorted(est.symbols_needed()):
        assert feed(est, sim, clock, s) is None
    assert est.equity == summary.equity
    assert all(p.priced for p in est.positions())

    run_steps(est, sim, account, clock)
    summary = anchor(est, sim, account, clock)
    assert est.equity == summary.equity
    run_steps(est, sim, account, clock)
    assert est.counters["rederived"] == 0
    assert sum(est.tick_filter.dropped.values()) == 0


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_a_mixed_book_tracks_the_simulator(sim: SimServer, currency: str) -> None:
    """All five symbols at once: EURUSD is both a position and a conversion symbol."""
    account = sim.create_account(balance=250_000, currency=currency, credit=1_000)
    for k, symbol in enumerate(SYMBOLS):
        sim.open_position(account, symbol, "buy", 0.4 + k / 10)
        ticket = sim.open_position(account, symbol, "sell", 1.1 - k / 10)
        sim.set_swap(account, ticket, -3.21 * (k + 1))
    est = EquityEstimator()
    clock = Clock()
    # A poll taken after prices already moved: the anchor values at the polled prices.
    for symbol in SYMBOLS:
        sim.set_price(symbol, sim.quote(symbol).bid * 1.0015)
    summary = anchor(est, sim, account, clock)
    assert est.equity == summary.equity
    for s in sorted(est.symbols_needed()):
        feed(est, sim, clock, s)
    assert_tracks(est, sim, account)
    run_steps(est, sim, account, clock)
    assert est.equity is not None
    assert summary.margin is not None
    assert est.margin == summary.margin
    assert est.margin_level == est.equity / summary.margin * 100


def test_positions_are_valued_from_the_poll_until_their_prices_arrive(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    ticket = sim.open_position(account, "EURJPY", "buy", 1.0)
    est = EquityEstimator()
    clock = Clock()
    summary = anchor(est, sim, account, clock)
    (view,) = est.positions()
    assert not view.priced  # USDJPY (the JPY -> USD rate) is not known yet

    # EURJPY moves, but with no rate the position is still worth what the poll said.
    move(est, sim, clock, "EURJPY", 1.001)
    assert est.equity == summary.equity
    assert est.position_profit(ticket) == summary.profit

    # The rate arrives: from now on the EURJPY move since the poll counts.
    feed(est, sim, clock, "USDJPY")
    assert est.positions()[0].priced
    assert_tracks(est, sim, account)
    move(est, sim, clock, "USDJPY", 0.999)
    assert_tracks(est, sim, account)


def test_a_tick_of_an_unwatched_symbol_changes_nothing(sim: SimServer) -> None:
    account = sim.create_account()
    sim.open_position(account, "EURUSD", "buy", 1.0)
    est = EquityEstimator()
    clock = Clock()
    anchor(est, sim, account, clock)
    now = clock()
    assert est.on_tick("GBPUSD", 1.27, 1.2701, now, now) is None
    assert "GBPUSD" not in est.tick_filter.symbols()


def test_margin_level_follows_the_estimate(sim: SimServer) -> None:
    account = sim.create_account(balance=10_000, currency="USD")
    est = EquityEstimator()
    clock = Clock()
    assert est.equity is None
    assert est.margin_level == 0.0
    anchor(est, sim, account, clock)
    assert est.margin_level == 0.0  # no margin in use, as MetaTrader reports it

    sim.open_position(account, "EURUSD", "buy", 2.0)
    summary = anchor(est, sim, account, clock)
    assert est.margin_level == pytest.approx(summary.margin_level, abs=0.005)  # wire rounds
    equity = move(est, sim, clock, "EURUSD", 0.999)
    assert equity is not None
    assert summary.margin is not None
    assert est.margin_level == equity / summary.margin * 100
    assert est.estimated_at == clock.now
    assert est.anchored_at is not None
    assert est.anchored_at < clock.now
