"""Day boundaries: when a rule's period is due to roll, and rolling it.

Baselines are the monitor's job because getting them needs I/O (an account summary at the
reset, or the order history since it). The monitor asks ``due_roll`` on each tick and, when a
new period is due, calls ``roll_period`` with the day-start balance and equity it gathered.
``evaluate`` never invents a baseline: a ``daily_loss`` rule whose state is not in the current
period reports ``no_baseline``.
"""

from __future__ import annotations

import math
from datetime import datetime

from riskd.engine.rules import Rule
from riskd.engine.state import RuleState


def due_roll(rule: Rule, state: RuleState, now: datetime) -> datetime | None:
    """The period start ``rule`` must be rolled to at ``now``, or None when none is due.

    None for rules without a clock (they never roll) and for states already in the current
    period. The monitor calls this on each tick (it is cheap) and, when it returns a time,
    gathers the day-start balance and equity and calls ``roll_period``.
    """
    if rule.clock is None:
        return None
    start = rule.clock.period_start(now)
    if state.period_start is not None and state.period_start >= start:
        return None
    return start


def roll_period(
    rule: Rule,
    state: RuleState,
    period_start: datetime,
    start_balance: float | None,
    start_equity: float | None,
) -> RuleState:
    """Start the day beginning at ``period_start`` with these day-start values.

    - ``daily_loss``: sets the baseline, clears the latch, the warnings and the ``for:`` timer.
    - ``trailing_drawdown`` with ``update: end_of_day``: raises the high-water mark to the new
      day's start balance (or equity, per ``track``) if higher; the latch stays (a blown
      drawdown does not come back with a new day).
    - any other rule with ``reset:``: clears the latch, the warnings and the ``for:`` timer.
    - rules without a clock: returned unchanged.

    Rolling to a period the state is already in (or an older one) returns the state
    unchanged, so a restart that rolls again can never re-base a day that already started.
    ``start_equity`` may be None when it cannot be known (a baseline derived from history):
    see ``DailyLossCheck`` for what each baseline does then.
    """
    if rule.clock is None:
        return state
    if state.period_start is not None and period_start <= state.period_start:
        return state
    if rule.kind == "trailing_drawdown":
        tracked = start_equity if rule.tracks_equity else start_balance
        mark = state.high_water
        if tracked is not None and math.isfinite(tracked) and (mark is None or tracked > mark):
            mark = tracked
        return RuleState(
            period_start=period_start,
            start_balance=start_balance,
            start_equity=start_equity,
            high_water=mark,
            condition_since=state.condition_since,
            warned=state.warned,
            last_status=state.last_status,
            latched=state.latched,
            latched_at=state.latched_at,
        )
    return RuleState(
        period_start=period_start,
        start_balance=start_balance,
        start_equity=start_equity,
        high_water=state.high_water,
        condition_since=None,
        warned=None,
        last_status=state.last_status,
        latched=False,
        latched_at=None,
    )
