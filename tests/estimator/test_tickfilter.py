"""Bad ticks are dropped and counted by reason, and never move equity; real gaps get through."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from riskd.monitor.estimator import EquityEstimator
from riskd.monitor.tickfilter import DROP_REASONS, DropReason, TickFilter, TickFilterConfig
from riskd.sim import SimServer
from tests.estimator.helpers import T0, Clock, anchor, feed

S = "EURUSD"


def warmed(flt: TickFilter, clock: Clock, n: int = 50, mid: float = 1.0850) -> float:
    """Feed ``n`` ticks alternating half a pip around ``mid``; returns the last bid."""
    bid = mid
    for i in range(n):
        bid = mid + (0.00005 if i % 2 else -0.00005)
        now = clock()
        assert flt.check(S, bid, bid + 0.0001, now, now) is None
    return bid


def only(flt: TickFilter, reason: DropReason, count: int = 1) -> None:
    expected = dict.fromkeys(DROP_REASONS, 0)
    expected[reason] = count
    assert dict(flt.dropped) == expected


@pytest.mark.parametrize(
    ("bid", "ask"),
    [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (math.nan, 1.0), (1.0, math.inf), (math.inf, math.inf)],
)
def test_non_positive(bid: float, ask: float) -> None:
    flt = TickFilter()
    assert flt.check(S, bid, ask, T0, T0) == "non_positive"
    only(flt, "non_positive")
    assert flt.symbols() == frozenset()  # a dropped tick teaches nothing


def test_crossed_but_a_zero_spread_is_fine() -> None:
    flt = TickFilter()
    assert flt.check(S, 1.0851, 1.0850, T0, T0) == "crossed"
    assert flt.check(S, 1.0850, 1.0850, T0, T0) is None
    only(flt, "crossed")


def test_out_of_order_but_equal_times_are_fine() -> None:
    flt = TickFilter()
    t = T0 + timedelta(seconds=1)
    assert flt.check(S, 1.0850, 1.0851, t, t) is None
    assert flt.check(S, 1.0851, 1.0852, t, t) is None  # same millisecond
    assert flt.check(S, 1.0852, 1.0853, t - timedelta(milliseconds=1), t) == "out_of_order"
    assert flt.last_time(S) == t
    only(flt, "out_of_order")
    # Other symbols have their own order.
    assert flt.check("USDJPY", 150.0, 150.01, T0, t) is None


def test_stale_relative_to_now() -> None:
    flt = TickFilter(TickFilterConfig(max_age=timedelta(seconds=5)))
    now = T0 + timedelta(minutes=1)
    assert flt.check(S, 1.0850, 1.0851, now - timedelta(seconds=5, milliseconds=1), now) == "stale"
    assert flt.check(S, 1.0850, 1.0851, now - timedelta(seconds=5), now) is None
    only(flt, "stale")


def test_future_ticks_cannot_freeze_a_symbol() -> None:
    flt = TickFilter(TickFilterConfig(max_future=timedelta(seconds=2)))
    assert flt.check(S, 1.0850, 1.0851, T0 + timedelta(days=365), T0) == "future"
    # Had it been accepted, every later tick would be out of order.
    assert flt.check(S, 1.0850, 1.0851, T0, T0) is None
    only(flt, "future")


def test_untimed_ticks_skip_the_time_rules() -> None:
    flt = TickFilter()
    assert flt.check(S, 1.0850, 1.0851, None, T0) is None
    assert flt.check(S, 1.0850, 1.0851, T0 + timedelta(hours=1), T0) == "future"
    assert flt.check(S, 1.0851, 1.0852, None, T0) is None
    assert flt.last_time(S) is None


def test_a_misprint_is_dropped_and_the_next_good_tick_is_not() -> None:
    flt = TickFilter()
    clock = Clock()
    bid = warmed(flt, clock)
    now = clock()
    assert flt.check(S, bid * 1.01, bid * 1.01 + 0.0001, now, now) == "jump"  # 108 pips
    now = clock()
    assert flt.check(S, bid, bid + 0.0001, now, now) is None
    only(flt, "jump")
    assert flt.gaps == 0


def test_a_quiet_markets_first_real_move_is_not_a_jump() -> None:
    flt = TickFilter()
    clock = Clock()
    for _ in range(30):  # nothing moves: the volatility estimate is 0
        now = clock()
        assert flt.check(S, 1.0850, 1.0851, now, now) is None
    now = clock()
    # 10 pips: infinitely many EWMAs, but under the 0.2% floor (21.7 pips).
    assert flt.check(S, 1.0860, 1.0861, now, now) is None
    only(flt, "jump", 0)


def test_volatility_raises_the_bar() -> None:
    """The same 0.3% move is a jump in a calm market and not in a wild one."""
    calm, wild = TickFilter(), TickFilter()
    clock = Clock()
    for i in range(100):
        now = clock()
        calm.check(S, 1.0850 + (0.00005 if i % 2 else 0), 1.0851, now, now)
        swing = 0.0006 if i % 2 else 0.0  # 6 pips a tick: 10 EWMAs is 60 pips
        wild.check(S, 1.0850 + swing, 1.0851 + swing, now, now)
    now = clock()
    assert calm.check(S, 1.0883, 1.0884, now, now) == "jump"
    assert wild.check(S, 1.0883, 1.0884, now, now) is None


def test_a_persistent_gap_becomes_the_new_level() -> None:
    flt = TickFilter()
    clock = Clock()
    warmed(flt, clock)
    results = []
    for k in range(4):
        bid = 1.0950 + 0.0001 * k  # a 100-pip gap, then the market carries on from there
        now = clock()
        results.append(flt.check(S, bid, bid + 0.0001, now, now))
    assert results == ["jump", "jump", None, None]
    only(flt, "jump", 2)
    assert flt.gaps == 1


def test_a_crash_gets_through_and_then_every_tick_of_it_does() -> None:
    """Each tick 1% below the last: far from each other too, but all on one side."""
    flt = TickFilter()
    clock = Clock()
    bid = warmed(flt, clock)
    results = []
    for _ in range(8):
        bid *= 0.99
        now = clock()
        results.append(flt.check(S, bid, bid + 0.0001, now, now))
    assert results == ["jump", "jump"] + [None] * 6
    assert flt.gaps == 1


def test_an_inconsistent_run_of_misprints_never_becomes_a_level() -> None:
    flt = TickFilter()
    clock = Clock()
    bid = warmed(flt, clock)
    for k in range(10):
        wild = bid * (1.02 if k % 2 else 0.98)
        now = clock()
        assert flt.check(S, wild, wild + 0.0001, now, now) == "jump"
    assert flt.gaps == 0


def test_seed_sets_the_reference_without_counting() -> None:
    flt = TickFilter()
    clock = Clock()
    warmed(flt, clock)
    now = clock()
    assert flt.seed(S, 1.0950, 1.0951, now)  # a REST quote after a reconnect
    now = clock()
    assert flt.check(S, 1.0950, 1.0951, now, now) is None
    assert not flt.seed(S, 1.0, 1.0001, now - timedelta(seconds=1))  # older than a tick
    assert not flt.seed(S, 1.0, 0.9, now)
    only(flt, "jump", 0)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_age"):
        TickFilterConfig(max_age=timedelta(0))
    with pytest.raises(ValueError, match="jump_k"):
        TickFilterConfig(jump_k=0)
    with pytest.raises(ValueError, match="ewma_alpha"):
        TickFilterConfig(ewma_alpha=1.5)
    with pytest.raises(ValueError, match="persist_ticks"):
        TickFilterConfig(persist_ticks=0)


# -- through the estimator ---------------------------------------------------------------------


def test_dropped_ticks_do_not_move_equity(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    sim.open_position(account, S, "buy", 2.0)
    sim.open_position(account, "USDJPY", "sell", 1.0)
    est = EquityEstimator()
    clock = Clock()
    anchor(est, sim, account, clock)
    for symbol in ("EURUSD", "USDJPY"):
        feed(est, sim, clock, symbol)
    equity = est.equity
    q = sim.quote(S)
    now = clock()
    bad = [
        (S, 0.0, q.ask, now, now),
        (S, q.bid, -1.0, now, now),
        (S, q.ask + 0.001, q.ask, now, now),
        (S, q.bid + 0.0005, q.ask + 0.0005, now - timedelta(milliseconds=5), now),
        # in order, but five minutes old by the caller's clock
        (S, q.bid + 0.0005, q.ask + 0.0005, now, now + timedelta(minutes=5)),
        (S, q.bid + 0.0005, q.ask + 0.0005, now + timedelta(minutes=5), now),
        (S, q.bid * 1.05, q.ask * 1.05, now, now),
        ("USDJPY", 15.0, 15.01, now, now),  # a misprint on a conversion symbol
    ]
    for symbol, bid, ask, t, n in bad:
        assert est.on_tick(symbol, bid, ask, t, n) is None
        assert est.equity == equity
    assert dict(est.tick_filter.dropped) == {
        "non_positive": 2,
        "crossed": 1,
        "out_of_order": 1,
        "stale": 1,
        "future": 1,
        "jump": 2,
    }


def test_a_persistent_gap_moves_equity_on_its_third_tick(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    sim.open_position(account, "XAUUSD", "buy", 1.0)
    est = EquityEstimator()
    clock = Clock()
    anchor(est, sim, account, clock)
    feed(est, sim, clock, "XAUUSD")
    before = est.equity
    sim.set_price("XAUUSD", 2300.00)  # gold gaps 50 USD down (2.1%) and stays there
    assert feed(est, sim, clock, "XAUUSD") is None
    assert feed(est, sim, clock, "XAUUSD") is None
    after = feed(est, sim, clock, "XAUUSD")
    assert after is not None
    assert before is not None
    assert after == pytest.approx(before - 50.0 * 100, abs=0.01)
    summary = anchor(est, sim, account, clock)
    assert summary.equity == pytest.approx(after, abs=0.01)


def test_the_filter_forgets_symbols_the_account_stops_watching(sim: SimServer) -> None:
    account = sim.create_account(currency="USD")
    ticket = sim.open_position(account, "EURJPY", "buy", 1.0)
    est = EquityEstimator()
    clock = Clock()
    anchor(est, sim, account, clock)
    for symbol in ("EURJPY", "USDJPY"):
        feed(est, sim, clock, symbol)
    assert est.tick_filter.symbols() == {"EURJPY", "USDJPY"}
    broker = sim.sim.broker
    sim.call(lambda: broker.close(broker.require(account), ticket))
    anchor(est, sim, account, clock)
    assert est.tick_filter.symbols() == frozenset()
    assert est.symbols_needed() == set()
