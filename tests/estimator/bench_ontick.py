"""How long one ``EquityEstimator.on_tick`` takes: ``python -m tests.estimator.bench_ontick``.

Not a test (timings stay out of pass/fail tests): it prints microseconds per tick for a USD
account holding 10 positions (a buy and a smaller sell on each of EURUSD, USDJPY, EURJPY, XAUUSD
and GER40), fed a random walk over the symbols it needs; then the same ticks through the filter
alone, through the unfiltered ``apply``, and ticks of a symbol the account does not watch.
No simulator: the estimator is pure.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from riskd.api2trade.models import AccountSummary, Position, Quote
from riskd.monitor.estimator import EquityEstimator
from riskd.monitor.tickfilter import TickFilter

START = {
    "EURUSD": (1.0850, 0.0001),
    "USDJPY": (150.000, 0.01),
    "EURJPY": (162.750, 0.01),
    "XAUUSD": (2350.00, 0.1),
    "GER40": (18500.00, 1.0),
}
AT = datetime(2026, 1, 5, 12, tzinfo=UTC)

TickRow = tuple[str, float, float, datetime]


def build() -> EquityEstimator:
    """An estimator anchored on 10 positions, with every price known."""
    positions = [
        Position(
            ticket=i,
            symbol=symbol,
            order_type=side,
            volume=1.0 if side == "buy" else 0.3,
            open_price=START[symbol][0],
            profit=0.0,
            swap=0.0,
            current_price=START[symbol][0],
        )
        for i, (symbol, side) in enumerate((s, side) for s in START for side in ("buy", "sell"))
    ]
    summary = AccountSummary(
        balance=100_000.0, equity=100_000.0, free_margin=90_000.0, margin_level=1000.0,
        currency="USD", margin=10_000.0,
    )  # fmt: skip
    est = EquityEstimator(tick_filter=TickFilter())
    quotes = [Quote(symbol=s, bid=p, ask=p + 2 * pip, time=AT) for s, (p, pip) in START.items()]
    est.anchor(summary, positions, AT, quotes)
    return est


def random_walk(n: int) -> list[TickRow]:
    rng = random.Random(1)
    symbols = list(START)
    bids = {s: p for s, (p, _) in START.items()}
    rows = []
    for i in range(n):
        symbol = symbols[i % len(symbols)]
        pip = START[symbol][1]
        bids[symbol] += rng.gauss(0.0, 0.5) * pip
        when = AT + timedelta(microseconds=100 * (i + 1))
        rows.append((symbol, bids[symbol], bids[symbol] + 2 * pip, when))
    return rows


def per_tick(rows: list[TickRow], fn: Callable[[str, float, float, datetime], object]) -> float:
    began = time.perf_counter()
    for symbol, bid, ask, when in rows:
        fn(symbol, bid, ask, when)
    return (time.perf_counter() - began) / len(rows) * 1e6


def main(n: int = 200_000) -> None:
    rows = random_walk(n)
    other = [("GBPUSD", b, a, t) for _, b, a, t in rows]

    est = build()
    on_tick = est.on_tick
    us = per_tick(rows, lambda s, b, a, t: on_tick(s, b, a, t, t))
    print(f"on_tick (filter + estimate): {us:.2f} us/tick  dropped={dict(est.tick_filter.dropped)}")

    check = TickFilter().check
    us = per_tick(rows, lambda s, b, a, t: check(s, b, a, t, t))
    print(f"TickFilter.check alone:      {us:.2f} us/tick")

    apply = build().apply
    us = per_tick(rows, lambda s, b, a, t: apply(s, b, a, t))
    print(f"apply (no filter):           {us:.2f} us/tick")

    on_tick = build().on_tick
    us = per_tick(other, lambda s, b, a, t: on_tick(s, b, a, t, t))
    print(f"unwatched symbol:            {us:.2f} us/tick")

    us = per_tick(rows, lambda s, b, a, t: None)
    print(f"(loop + lambda overhead:     {us:.2f} us/tick)")


if __name__ == "__main__":
    main()
