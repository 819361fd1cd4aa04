"""The quiet band: how far equity may move before the rules' verdicts can change.

A tick moves only the equity estimate. Between two ticks nothing else that the rules read
changes (balance, margin, positions, states), so for a given evaluation each rule's outcome
is a step function of equity: the condition holds or not, the used ratio is on one side or
the other of each ``warn_at`` level and its re-arm point, a trailing mark rises or not. The
band is the open interval of equity between the nearest steps below and above the evaluated
equity, over all rules, shrunk by a rounding margin. Inside it, evaluating again would give
the same statuses, no ``Newly`` flags and the very same states; only the numbers (headroom,
used) would move.

So the tick path evaluates in full only when the estimate leaves the band; a tick inside it
is decided by two comparisons. The band holds only for the rule states, positions and
summary it was computed from (the caller checks that by identity), and only until ``until``:
the next day boundary of any rule, or the time a stale-data rule may warn. No band exists
while any rule is ``pending`` or in a non-latched ``breach``, while a day roll is due, while a
lockout holds open positions (they are closed on sight by the full check), or at a non-finite
equity: then every tick and every check is evaluated in full.

Each check's ``equity_edges`` (``riskd.engine.rules``) gives its steps next to its own maths;
the property test in ``tests/engine/test_band.py`` holds the band to ``evaluate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from riskd.engine.evaluate import WARN_REARM
from riskd.engine.periods import due_roll
from riskd.engine.rules import Rule, StaleDataCheck
from riskd.engine.snapshot import AccountSnapshot
from riskd.engine.state import RuleState
from riskd.engine.verdict import Evaluation, Status

ROUNDING_MARGIN = 1e-7
"""Relative margin kept from every edge: the engine's own arithmetic (a few float operations)
rounds at 1e-16, so an equity this close to an edge is always evaluated in full."""

_CALM = (Status.OK, Status.WARN, Status.LATCHED, Status.NO_BASELINE)


@dataclass(frozen=True, slots=True)
class QuietBand:
    """Equity strictly inside (``lo``, ``hi``) before ``until`` gives the same verdicts as the
    evaluation the band came from, for the same ``states`` (one per rule, in rule order)."""

    lo: float
    hi: float
    until: datetime
    states: tuple[RuleState | None, ...]

    def holds(self, equity: float, now: datetime) -> bool:
        """True when a tick at ``equity`` and ``now`` needs no evaluation."""
        return self.lo < equity < self.hi and now < self.until


def quiet_band(
    rules: Sequence[Rule], snapshot: AccountSnapshot, evaluation: Evaluation
) -> QuietBand | None:
    """The band around ``snapshot.equity`` for the states ``evaluation`` left, or None when
    every tick must be evaluated (a rule pending or breaching, or equity on an edge)."""
    equity = snapshot.equity
    now = snapshot.now
    if not math.isfinite(equity):
        return None  # every comparison with NaN is false: no edge would hold it
    if evaluation.locked_out and snapshot.positions:
        # Positions under a lockout are closed on sight by the full check, retried on every
        # poll until flat: it must never be skipped.
        return None
    lo, hi = -math.inf, math.inf
    until = datetime.max.replace(tzinfo=now.tzinfo)
    for rule, verdict in zip(rules, evaluation.verdicts, strict=True):
        if verdict.status not in _CALM:
            return None
        state = evaluation.states[rule.name]
        if due_roll(rule, state, now) is not None:
            # Only the full check rolls a day (baselines, latches): it must not be skipped
            # while a roll is due, or a failed roll would never be retried.
            return None
        clock = rule.clock
        period_start = clock.period_start(now) if clock is not None else None
        if clock is not None:
            until = min(until, clock.next_reset(now))
        # A reported level re-arms below its re-arm point; levels not reported have none yet.
        warned = state.warned
        rearm = () if warned is None else tuple(x - WARN_REARM for x in rule.warn_at if x <= warned)
        marks = (*rule.warn_at, *rearm)
        for edge in rule.check.equity_edges(snapshot, state, period_start, marks):
            margin = ROUNDING_MARGIN * max(1.0, abs(edge))
            if edge - margin <= equity <= edge + margin:
                return None
            if edge < equity:
                lo = max(lo, edge + margin)
            else:
                hi = min(hi, edge - margin)
        if isinstance(rule.check, StaleDataCheck):
            stale_until = _stale_until(rule, rule.check, snapshot, verdict.status, state)
            if stale_until is None:
                return None
            until = min(until, stale_until)
    return QuietBand(lo, hi, until, tuple(evaluation.states.get(r.name) for r in rules))


def _stale_until(
    rule: Rule,
    check: StaleDataCheck,
    snapshot: AccountSnapshot,
    status: Status,
    state: RuleState,
) -> datetime | None:
    """Until when a stale-data rule stays quiet, or None if it is not quiet.

    The poll age grows with time, and so does the tick age between ticks (the periodic check
    uses the band too), so a quiet rule (``ok``, no warning reported) stays quiet until either
    age can reach its lowest warning level or the limit. A tick resets the tick age: the tick
    path re-evaluates at least that often."""
    if status is not Status.OK or state.warned is not None:
        return None
    first = min((*rule.warn_at, 1.0))
    until = snapshot.last_poll_at + timedelta(seconds=first * check.max_poll_age)
    if check.max_tick_age is not None and snapshot.positions:
        if snapshot.last_tick_at is None:
            return None
        until = min(until, snapshot.last_tick_at + timedelta(seconds=first * check.max_tick_age))
    return until
