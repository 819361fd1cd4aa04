"""What one rule must remember across ticks and restarts, and the pure ways to change it.

The store persists a ``RuleState`` per (account, rule). The engine returns new states from
``evaluate``; the monitor, which has I/O, starts new days with ``roll_period``
(``riskd.engine.periods``) and the operator's unlock goes through ``unlatch``. Nothing here
reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from riskd.engine.verdict import Status


@dataclass(frozen=True, slots=True)
class RuleState:
    """The persistent state of one rule on one account.

    - ``period_start``: UTC start of the day the baselines belong to (rules with a clock).
    - ``start_balance`` / ``start_equity``: that day's baseline values (``daily_loss``);
      ``start_equity`` is None when it could not be known (a baseline derived from history).
    - ``high_water``: the trailing high-water mark (None until it first rises above the
      initial balance, which is where every mark starts).
    - ``condition_since``: when the rule's condition started to hold (for ``for:``).
    - ``warned``: the highest ``warn_at`` level already reported in this episode.
    - ``last_status``: the status of the previous evaluation.
    - ``latched`` / ``latched_at``: a ``close_all``/``lockout`` breach stays latched until the
      rule's reset (``roll_period``) or a person's unlock (``unlatch``).
    """

    period_start: datetime | None = None
    start_balance: float | None = None
    start_equity: float | None = None
    high_water: float | None = None
    condition_since: datetime | None = None
    warned: float | None = None
    last_status: Status | None = None
    latched: bool = False
    latched_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings, status as its value)."""
        return {
            "period_start": _iso(self.period_start),
            "start_balance": self.start_balance,
            "start_equity": self.start_equity,
            "high_water": self.high_water,
            "condition_since": _iso(self.condition_since),
            "warned": self.warned,
            "last_status": None if self.last_status is None else self.last_status.value,
            "latched": self.latched,
            "latched_at": _iso(self.latched_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleState:
        """The inverse of ``to_dict``; unknown keys are ignored, missing ones take defaults."""
        status = data.get("last_status")
        return cls(
            period_start=_dt(data.get("period_start")),
            start_balance=_float(data.get("start_balance")),
            start_equity=_float(data.get("start_equity")),
            high_water=_float(data.get("high_water")),
            condition_since=_dt(data.get("condition_since")),
            warned=_float(data.get("warned")),
            last_status=None if status is None else Status(status),
            latched=bool(data.get("latched", False)),
            latched_at=_dt(data.get("latched_at")),
        )


INITIAL_STATE = RuleState()
"""The state of a rule that has never been evaluated."""


def unlatch(state: RuleState) -> RuleState:
    """A person's unlock: clear the latch, the warnings and the ``for:`` timer.

    Baselines and the high-water mark are kept. If the condition still holds, the next
    evaluation breaches (and latches) again: unlocking does not move a floor.
    """
    return RuleState(
        period_start=state.period_start,
        start_balance=state.start_balance,
        start_equity=state.start_equity,
        high_water=state.high_water,
        condition_since=None,
        warned=None,
        last_status=state.last_status,
        latched=False,
        latched_at=None,
    )


def derive_day_start_balance(
    balance_now: float, net_profits_closed_since_reset: Iterable[float]
) -> float:
    """The balance at the last reset, from the balance now and the orders closed since.

    For when riskd meets an account in the middle of a day with nothing stored: the day-start
    balance is today's balance minus what every order closed at or after the reset instant
    added to it (``OrderHistoryItem.net_profit``: profit + swap + commission). Using the
    balance at start-up instead would silently forgive the day's closed losses.

    Limits, which the caller must accept or correct: deposits, withdrawals and other balance
    operations are not in the bridge's order history, so one made since the reset shifts the
    result by its amount; and the day-start *equity* (floating P&L at the reset) cannot be
    recovered from closed orders at all.
    """
    return balance_now - math.fsum(net_profits_closed_since_reset)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
