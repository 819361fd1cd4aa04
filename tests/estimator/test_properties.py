"""Properties: right after each anchor the estimate IS the polled equity, whatever the poll
says and whatever ticks came before; between polls it tracks the simulator within a cent a
position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskd.api2trade.models import AccountSummary, Position, Quote
from riskd.monitor.estimator import EquityEstimator
from riskd.monitor.tickfilter import TickFilter, TickFilterConfig
from riskd.sim import SimServer
from riskd.sim.market import DEFAULT_SPECS
from tests.estimator.helpers import T0, Clock, anchor, feed
from tests.estimator.test_maths import assert_tracks

# Known FX, crosses, metals, indices in EUR and USD, a suffixed name, and unknown instruments.
SYMBOLS = ("EURUSD", "USDJPY", "EURJPY", "GBPJPY", "XAUUSD", "GER40", "US30", "EURUSD.a", "NAS100")
CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "XXX")

prices = st.floats(min_value=0.01, max_value=100_000, allow_nan=False)
money = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@st.composite
def positions(draw: st.DrawFn) -> list[Position]:
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(SYMBOLS),
                st.sampled_from(("buy", "sell")),
                st.integers(1, 1000).map(lambda n: n / 100),
                prices,
                money,
                money,
                st.none() | money,
                st.none() | prices,
            ),
            max_size=6,
        )
    )
    return [
        Position(
            ticket=i + 1,
            symbol=symbol,
            order_type=side,
            volume=volume,
            open_price=open_price,
            profit=profit,
            swap=swap,
            commission=commission,
            current_price=current,
        )
        for i, (symbol, side, volume, open_price, profit, swap, commission, current) in enumerate(
            rows
        )
    ]


@st.composite
def summaries(draw: st.DrawFn, currency: str) -> AccountSummary:
    return AccountSummary(
        balance=draw(money),
        equity=draw(money),
        free_margin=draw(money),
        margin_level=0.0,
        currency=currency,
        credit=draw(st.none() | money),
        margin=draw(st.none() | st.floats(min_value=0, max_value=1e6)),
    )


@dataclass(frozen=True)
class Tick:
    symbol: str
    bid: float
    spread: float
    age_ms: int  # how far before "now" the tick is stamped (negative: in the future)


ticks = st.builds(
    Tick,
    st.sampled_from(SYMBOLS),
    prices | st.sampled_from((0.0, -1.0)),
    st.floats(min_value=-0.01, max_value=10, allow_nan=False),
    st.integers(-20_000, 40_000),
)


@settings(max_examples=150, deadline=None)
@given(
    currency=st.sampled_from(CURRENCIES),
    data=st.data(),
    rounds=st.integers(1, 4),
)
def test_the_estimate_is_the_polled_equity_right_after_each_anchor(
    currency: str, data: st.DataObject, rounds: int
) -> None:
    est = EquityEstimator(
        contract_sizes=data.draw(
            st.dictionaries(st.sampled_from(SYMBOLS), st.floats(0.001, 1e6)), label="overrides"
        )
    )
    now = T0
    for _ in range(rounds):
        summary = data.draw(summaries(currency), label="summary")
        book = data.draw(positions(), label="positions")
        quotes = [
            Quote(symbol=s, bid=b, ask=b * 1.0001, time=now)
            for s, b in data.draw(
                st.lists(st.tuples(st.sampled_from(SYMBOLS), prices)), label="quotes"
            )
        ]
        now += timedelta(seconds=1)
        assert est.anchor(summary, book, now, quotes) == summary.equity
        assert est.equity == summary.equity
        assert est.estimated_at == now
        assert {p.ticket for p in est.positions()} == {p.ticket for p in book}
        assert {p.ticket: p.profit for p in est.positions()} == {p.ticket: p.profit for p in book}
        for tick in data.draw(st.lists(ticks, max_size=30), label="ticks"):
            now += timedelta(milliseconds=1)
            moved = est.on_tick(
                tick.symbol,
                tick.bid,
                tick.bid + tick.spread,
                now - timedelta(milliseconds=tick.age_ms),
                now,
            )
            assert moved is None or moved == est.equity
        # Between anchors the running total is the anchor plus each position's move.
        views = est.positions()
        moves = sum(p.profit - p.polled_profit for p in views)
        scale = abs(summary.equity) + sum(abs(p.profit) + abs(p.polled_profit) for p in views)
        assert est.equity is not None
        assert abs(est.equity - (summary.equity + moves)) <= 1e-9 * scale + 1e-9


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    currency=st.sampled_from(("USD", "EUR", "GBP", "JPY")),
    book=st.lists(
        st.tuples(
            st.sampled_from(("EURUSD", "USDJPY", "EURJPY", "GBPJPY", "XAUUSD", "GER40", "US30")),
            st.sampled_from(("buy", "sell")),
            st.integers(1, 500).map(lambda n: n / 100),
        ),
        min_size=1,
        max_size=6,
    ),
    rounds=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from([s.symbol for s in DEFAULT_SPECS]),
                st.floats(min_value=0.99, max_value=1.01),
            ),
            max_size=8,
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_the_estimate_tracks_the_simulator_and_snaps_to_each_poll(
    sim: SimServer,
    currency: str,
    book: list[tuple[str, str, float]],
    rounds: list[list[tuple[str, float]]],
) -> None:
    for spec in DEFAULT_SPECS:  # every example starts from the same market
        sim.set_price(spec.symbol, spec.bid)
    account = sim.create_account(balance=1_000_000, currency=currency)
    for symbol, side, volume in book:
        sim.open_position(account, symbol, side, volume)
    # Moves of up to 1% per step are not misprints here: this property is about the maths.
    est = EquityEstimator(tick_filter=TickFilter(TickFilterConfig(jump_min_rel=1.0)))
    clock = Clock()
    for moves in rounds:
        summary = anchor(est, sim, account, clock)
        assert est.equity == summary.equity
        for symbol in sorted(est.symbols_needed()):
            feed(est, sim, clock, symbol)
        assert_tracks(est, sim, account)
        for symbol, factor in moves:
            sim.set_price(symbol, sim.quote(symbol).bid * factor)
            feed(est, sim, clock, symbol)
        assert_tracks(est, sim, account)
    assert est.counters["rederived"] == 0
