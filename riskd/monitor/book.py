"""The account book: what riskd knows about each account right now (one owner of live state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from riskd.api2trade import AccountSummary, Position
from riskd.engine import AccountSnapshot, Evaluation, OpenPosition, RuleState

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

    @property
    def last_poll_at(self) -> datetime | None:
        """The last successful poll of any kind."""
        times = [t for t in (self.summary_at, self.positions_at) if t is not None]
        return max(times) if times else None

    def snapshot(self, now: datetime) -> AccountSnapshot | None:
        """The engine's input at ``now``, or None before the first summary arrived."""
        s = self.summary
        if s is None or self.summary_at is None:
            return None
        positions = tuple(
            OpenPosition(p.symbol, p.order_type, p.volume) for p in (self.positions or ())
        )
        margin = s.margin if s.margin is not None else max(s.equity - s.free_margin, 0.0)
        last_poll = self.last_poll_at or self.summary_at
        return AccountSnapshot(
            account_id=self.info.id,
            now=max(now, last_poll),
            balance=s.balance,
            equity=s.equity,
            credit=s.credit or 0.0,
            margin=margin,
            free_margin=s.free_margin,
            positions=positions,
            initial_balance=self.info.initial_balance,
            currency=s.currency,
            last_poll_at=last_poll,
        )
