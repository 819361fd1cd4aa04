"""The account book: what riskd knows about each account right now (one owner of live state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from riskd.api2trade import AccountSummary, Position, TickStream
from riskd.engine import AccountSnapshot, Evaluation, OpenPosition, RuleState
from riskd.monitor.estimator import EquityEstimator

if TYPE_CHECKING:
    from riskd.engine import Rule


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The configured facts of one account the monitor needs."""

    id: str
    name: str
    initial_balance: float
    rules: tuple[Rule, ...]
    dry_run: bool


@dataclass(slots=True)
class AccountBook:
    """Live state of one account: last summary and positions, rule states, last evaluation.

    ``lock`` serialises evaluate-and-act for the account, so two triggers (a poll and the
    periodic check) never both act on the same breach.
    """

    info: AccountInfo
    states: dict[str, RuleState] = field(default_factory=dict)
    summary: AccountSummary | None = None
    summary_at: datetime | None = None
    positions: list[Position] | None = None
    positions_at: datetime | None = None
    evaluation: Evaluation | None = None
    failing_since: datetime | None = None
    failure: str = ""
    dirty: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    estimator: EquityEstimator = field(default_factory=EquityEstimator)
    stream: TickStream | None = None
    last_tick_at: datetime | None = None
    confirming: bool = False

    @property
    def last_poll_at(self) -> datetime | None:
        """The last successful poll of any kind."""
        times = [t for t in (self.summary_at, self.positions_at) if t is not None]
        return max(times) if times else None

    def anchor(self) -> None:
        """Re-anchor the equity estimate on the latest poll (needs summary and positions)."""
        if self.summary is not None and self.positions is not None:
            at = max(t for t in (self.summary_at, self.positions_at) if t is not None)
            self.estimator.anchor(self.summary, self.positions, at)

    def snapshot(self, now: datetime) -> AccountSnapshot | None:
        """The engine's input at ``now``, or None before the first summary arrived.

        Equity is the tick estimate when ticks moved it since the last poll (``estimated``),
        else the polled equity.
        """
        s = self.summary
        if s is None or self.summary_at is None:
            return None
        equity, estimated = s.equity, False
        moved_at, anchored_at = self.estimator.estimated_at, self.estimator.anchored_at
        if (
            self.estimator.equity is not None
            and moved_at is not None
            and anchored_at is not None
            and moved_at > anchored_at
        ):
            equity, estimated = self.estimator.equity, True
        positions = tuple(
            OpenPosition(p.symbol, p.order_type, p.volume) for p in (self.positions or ())
        )
        margin = s.margin if s.margin is not None else max(s.equity - s.free_margin, 0.0)
        last_poll = self.last_poll_at or self.summary_at
        return AccountSnapshot(
            account_id=self.info.id,
            now=max(now, last_poll),
            balance=s.balance,
            equity=equity,
            credit=s.credit or 0.0,
            margin=margin,
            free_margin=equity - margin if estimated else s.free_margin,
            positions=positions,
            initial_balance=self.info.initial_balance,
            currency=s.currency,
            last_poll_at=last_poll,
            last_tick_at=self.last_tick_at,
            estimated=estimated,
        )
