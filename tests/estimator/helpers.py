"""Shared helpers: polling the simulator into models, a test clock, feeding prices as ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from riskd.api2trade.models import AccountSummary, Position, Quote
from riskd.monitor.estimator import EquityEstimator
from riskd.sim import SimServer

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

CENT = 0.01
FLOAT_SLACK = 1e-6  # float noise on sums of a few hundred thousand


class Clock:
    """Deterministic time for ticks and anchors: each call is a millisecond later."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self, seconds: float = 0.001) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def poll(sim: SimServer, account: str) -> tuple[AccountSummary, list[Position]]:
    """What a poll of the account would bring back, parsed by riskd's own models."""
    summary = AccountSummary.model_validate(sim.summary(account))
    positions = [Position.model_validate(p) for p in sim.positions(account)]
    return summary, positions


def quotes(sim: SimServer, symbols: set[str], at: datetime) -> list[Quote]:
    """REST quotes of ``symbols`` as riskd models, stamped ``at``."""
    out = []
    for symbol in sorted(symbols):
        q = sim.quote(symbol)
        out.append(Quote(symbol=symbol, bid=q.bid, ask=q.ask, time=at))
    return out


def feed(est: EquityEstimator, sim: SimServer, clock: Clock, symbol: str) -> float | None:
    """Send the simulator's current price of ``symbol`` to the estimator as a tick."""
    q = sim.quote(symbol)
    now = clock()
    return est.on_tick(symbol, q.bid, q.ask, now, now)


def move(
    est: EquityEstimator, sim: SimServer, clock: Clock, symbol: str, factor: float
) -> float | None:
    """Move ``symbol``'s bid by ``factor`` on the simulator and feed the result as a tick."""
    sim.set_price(symbol, sim.quote(symbol).bid * factor)
    return feed(est, sim, clock, symbol)


def anchor(est: EquityEstimator, sim: SimServer, account: str, clock: Clock) -> AccountSummary:
    """Poll and anchor; returns the polled summary."""
    summary, positions = poll(sim, account)
    est.anchor(summary, positions, clock())
    return summary
