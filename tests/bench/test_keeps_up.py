"""Figure 1's notion of keeping up, and the fleet plans: pure logic."""

from __future__ import annotations

from riskd.bench.fig_stream import KEEP_UP_AGE, Window, keeps_up
from riskd.bench.fleet import START_BIDS, SYMBOLS, plan_fleet
from riskd.bench.stats import Distribution
from riskd.instruments import lookup


def window(ticks: int, wall: float, age_p99: float | None) -> Window:
    age = None if age_p99 is None else Distribution(10, age_p99, age_p99, age_p99, 0.0, age_p99)
    return Window(ticks=ticks, wall=wall, cpu=wall / 2, age=age)


def test_keeping_up_needs_young_ticks_and_most_of_the_rate() -> None:
    assert keeps_up(window(10_000, 1.0, 0.005), 10_000)
    assert not keeps_up(window(10_000, 1.0, KEEP_UP_AGE), 10_000)  # ticks too old
    assert not keeps_up(window(8_000, 1.0, 0.005), 10_000)  # handled too little
    assert keeps_up(window(8_000, 1.0, 0.005), None)  # rate unknown: age decides
    assert not keeps_up(window(0, 1.0, None), 10_000)  # nothing arrived


def test_window_rates() -> None:
    w = window(20_000, 2.0, 0.001)
    assert w.rate == 10_000
    assert w.cpu_share == 0.5
    assert w.per_cpu_second == 20_000


def test_fleets_are_deterministic_and_stay_near_the_start_prices() -> None:
    plans = plan_fleet(50, 10, seed=7)
    assert plans == plan_fleet(50, 10, seed=7)
    assert plans != plan_fleet(50, 10, seed=8)
    assert {p.currency for p in plans} == {"USD", "EUR"}
    for plan in plans:
        assert len(plan.positions) == 10
        for pos in plan.positions:
            inst = lookup(pos.symbol)
            assert inst is not None
            assert pos.symbol in SYMBOLS
            assert pos.open_price is not None
            assert abs(pos.open_price - START_BIDS[pos.symbol]) <= 15 * inst.pip_size + 1e-9
