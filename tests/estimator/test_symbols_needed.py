"""What the stream must subscribe to: position symbols plus their conversion symbols."""

from __future__ import annotations

import pytest

from riskd.api2trade.models import AccountSummary, Position
from riskd.monitor.estimator import EquityEstimator
from riskd.sim import SimServer
from tests.estimator.helpers import T0, Clock, anchor

CASES = [
    ("USD", "EURUSD", {"EURUSD"}),
    ("USD", "USDJPY", {"USDJPY"}),
    ("USD", "EURJPY", {"EURJPY", "USDJPY"}),
    ("USD", "XAUUSD", {"XAUUSD"}),
    ("USD", "GER40", {"GER40", "EURUSD"}),
    ("EUR", "EURUSD", {"EURUSD"}),
    ("EUR", "USDJPY", {"USDJPY", "EURJPY"}),
    ("EUR", "EURJPY", {"EURJPY"}),
    ("EUR", "XAUUSD", {"XAUUSD", "EURUSD"}),
    ("EUR", "GER40", {"GER40"}),
]


@pytest.mark.parametrize(("currency", "symbol", "needed"), CASES)
def test_symbols_needed(sim: SimServer, currency: str, symbol: str, needed: set[str]) -> None:
    account = sim.create_account(currency=currency)
    sim.open_position(account, symbol, "sell", 0.5)
    est = EquityEstimator()
    assert est.symbols_needed() == set()
    anchor(est, sim, account, Clock())
    assert est.symbols_needed() == needed


def test_symbols_follow_the_positions(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    est = EquityEstimator()
    clock = Clock()
    t1 = sim.open_position(account, "EURJPY", "buy", 1.0)
    sim.open_position(account, "XAUUSD", "buy", 1.0)
    anchor(est, sim, account, clock)
    assert est.symbols_needed() == {"EURJPY", "USDJPY", "XAUUSD"}
    broker = sim.sim.broker
    sim.call(lambda: broker.close(broker.require(account), t1))  # on the simulator's loop
    anchor(est, sim, account, clock)
    assert est.symbols_needed() == {"XAUUSD"}


def test_conversion_symbols_carry_the_broker_suffix() -> None:
    summary = AccountSummary(
        balance=10_000, equity=10_000, free_margin=10_000, margin_level=0, currency="EUR"
    )
    gold = Position(
        ticket=1, symbol="XAUUSD.a", order_type="buy", volume=1, open_price=2350, profit=0, swap=0
    )
    est = EquityEstimator()
    est.anchor(summary, [gold], T0)
    assert est.symbols_needed() == {"XAUUSD.a", "EURUSD.a"}


def test_unknown_currencies_need_only_the_position_symbol() -> None:
    summary = AccountSummary(
        balance=10_000, equity=10_000, free_margin=10_000, margin_level=0, currency="USD"
    )
    index = Position(
        ticket=1, symbol="NAS100", order_type="buy", volume=1, open_price=18000, profit=0, swap=0
    )
    est = EquityEstimator()
    est.anchor(summary, [index], T0)
    assert est.symbols_needed() == {"NAS100"}
