"""Compiled rules: what the engine evaluates on every tick.

``compile_rule`` turns a validated ``RuleSpec`` into a ``Rule`` once, at load: percentages and
amounts become plain floats, reset clocks become ``ResetClock`` objects, and each kind's maths
lives in a small ``Check`` with one ``measure`` method. Per tick the engine does arithmetic on
these, nothing else.

Comparisons with floats: money and lots arrive as floats, so "at or below the floor" and
"above the cap" allow a relative 1e-9 (``_eps``): enough to absorb rounding in sums such as
0.1 + 0.2 lots, far below a cent on any account size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple, Protocol

from riskd.engine.clock import ResetClock
from riskd.engine.schema import (
    Action,
    DailyLossSpec,
    ExposureSpec,
    Kind,
    MarginLevelSpec,
    MaxLossSpec,
    ProfitTargetSpec,
    ResetSpec,
    RuleSpec,
    Severity,
    StaleDataSpec,
    TrailingDrawdownSpec,
)
from riskd.engine.snapshot import AccountSnapshot
from riskd.engine.state import RuleState

REL_TOLERANCE = 1e-9
"""Relative tolerance of floor and cap comparisons (float rounding only, see module doc)."""


def _eps(x: float) -> float:
    return REL_TOLERANCE * max(1.0, abs(x))


class Reading(NamedTuple):
    """What a check measured on one snapshot (see ``Verdict`` for each field's meaning)."""

    value: float | None
    threshold: float | None
    headroom: float | None
    used: float | None
    holds: bool
    no_baseline: bool = False
    high_water: float | None = None


class Check(Protocol):
    """The kind-specific part of a rule."""

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading: ...

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        """Equities at which ``measure`` may change its outcome for the engine (whether the
        condition holds, which ``used_marks`` the used ratio has reached, a new high-water
        mark), all else in ``snap`` and ``state`` equal. Between two neighbouring edges only
        the numbers move. ``riskd.engine.band`` builds the tick path's quiet band from them."""
        ...


def _loss_edges(floor: float, allowed: float, used_marks: tuple[float, ...]) -> tuple[float, ...]:
    """Edges of ``_loss``: the breach boundary and the equity at each used-ratio mark."""
    if allowed <= 0:
        return (floor + _eps(floor), floor)
    return (floor + _eps(floor), *(floor + (1.0 - u) * allowed for u in used_marks))


def _loss(equity: float, floor: float, allowed: float) -> Reading:
    """A loss rule's reading: breach at or below ``floor``; ``allowed`` is the loss budget."""
    headroom = equity - floor
    used = 1.0 - headroom / allowed if allowed > 0 else (math.inf if headroom <= 0 else 0.0)
    return Reading(equity, floor, headroom, used, equity <= floor + _eps(floor))


@dataclass(frozen=True, slots=True)
class DailyLossCheck:
    """Floor = day-start baseline - (pct_initial% of initial + pct_baseline% of baseline + amount).

    With ``baseline: max_balance_equity`` and an unknown day-start equity (a baseline derived
    from history), the start balance is used alone: the floor is then at or below the firm's,
    so riskd may breach later than the firm but never falsely. With ``baseline: equity`` and
    an unknown start equity there is no baseline at all.
    """

    baseline: str
    pct_initial: float
    pct_baseline: float
    amount: float

    def limits(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> tuple[float, float] | None:
        """(floor, allowed loss) for the day, or None without a baseline for it."""
        if state.period_start != period_start:
            return None
        if self.baseline == "balance":
            base = state.start_balance
        elif self.baseline == "equity":
            base = state.start_equity
        else:
            b, e = state.start_balance, state.start_equity
            base = b if e is None else (e if b is None else max(b, e))
        if base is None:
            return None
        allowed = (
            self.pct_initial * snap.initial_balance / 100.0
            + self.pct_baseline * base / 100.0
            + self.amount
        )
        return base - allowed, allowed

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        limits = self.limits(snap, state, period_start)
        if limits is None:
            return Reading(snap.equity, None, None, None, False, no_baseline=True)
        return _loss(snap.equity, *limits)

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        limits = self.limits(snap, state, period_start)
        return () if limits is None else _loss_edges(*limits, used_marks)


@dataclass(frozen=True, slots=True)
class MaxLossCheck:
    """Floor = initial balance - (pct% of initial + amount); it never moves."""

    pct: float
    amount: float

    def limits(self, snap: AccountSnapshot) -> tuple[float, float]:
        """(floor, allowed loss)."""
        allowed = self.pct * snap.initial_balance / 100.0 + self.amount
        return snap.initial_balance - allowed, allowed

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        return _loss(snap.equity, *self.limits(snap))

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        return _loss_edges(*self.limits(snap), used_marks)


@dataclass(frozen=True, slots=True)
class TrailingDrawdownCheck:
    """Floor = high-water mark - limit, optionally never above the initial balance.

    The mark starts at the initial balance and only rises: intraday on every evaluation (to
    the balance or equity now), or at end of day through ``roll_period``.
    """

    pct: float
    amount: float
    track_equity: bool
    intraday: bool
    lock_at_initial: bool

    def _floor(self, mark: float, initial: float) -> tuple[float, float]:
        allowed = self.pct * initial / 100.0 + self.amount
        floor = mark - allowed
        if self.lock_at_initial and floor > initial:
            floor = initial
        return floor, allowed

    @staticmethod
    def _stored_mark(initial: float, state: RuleState) -> float:
        """The mark before this snapshot: the stored one, never below the initial balance."""
        stored = state.high_water
        return initial if stored is None or stored < initial else stored

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        initial = snap.initial_balance
        mark = self._stored_mark(initial, state)
        new_mark = state.high_water
        if self.intraday:
            tracked = snap.equity if self.track_equity else snap.balance
            if tracked > mark:
                mark = new_mark = tracked
        reading = _loss(snap.equity, *self._floor(mark, initial))
        return reading._replace(high_water=new_mark)

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        initial = snap.initial_balance
        mark = self._stored_mark(initial, state)
        if self.intraday and not self.track_equity and snap.balance > mark:
            mark = snap.balance
        edges = _loss_edges(*self._floor(mark, initial), used_marks)
        # Equity above the mark raises it: a new state, so the mark itself is an edge.
        return (*edges, mark) if self.intraday and self.track_equity else edges


@dataclass(frozen=True, slots=True)
class MarginLevelCheck:
    """Breach while equity / margin x 100 is below ``below`` percent; idle with no margin."""

    below: float

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        if snap.margin <= 0:
            return Reading(None, self.below, None, None, False)
        level = snap.equity / snap.margin * 100.0
        used = self.below / level if level > 0 else math.inf
        holds = level < self.below - _eps(self.below)
        return Reading(level, self.below, level - self.below, used, holds)

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        if snap.margin <= 0:
            return ()
        per_point = snap.margin / 100.0  # equity per point of margin level
        levels = (self.below - _eps(self.below), *(self.below / u for u in used_marks if u > 0))
        return (0.0, *(level * per_point for level in levels))


@dataclass(frozen=True, slots=True)
class ExposureCheck:
    """Breach while open exposure is above the cap.

    ``measure_by``: ``total_lots`` (all volumes added), ``lots_per_symbol`` (the largest sum
    on one symbol), ``positions`` (how many are open). Buys and sells add up: lots on both
    sides of a symbol are both exposure, as the firms count them.
    """

    measure_by: str
    cap: float

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        positions = snap.positions
        if self.measure_by == "positions":
            value = float(len(positions))
        elif self.measure_by == "total_lots":
            value = math.fsum(volume for _, _, volume in positions)
        else:
            per_symbol: dict[str, float] = {}
            for symbol, _, volume in positions:
                per_symbol[symbol] = per_symbol.get(symbol, 0.0) + volume
            value = max(per_symbol.values(), default=0.0)
        cap = self.cap
        # A cap of 0 (max_positions: 0) allows nothing: any exposure is infinitely over it.
        used = value / cap if cap > 0 else (math.inf if value > 0 else 0.0)
        return Reading(value, cap, cap - value, used, value > cap + _eps(cap))

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        return ()  # positions only


@dataclass(frozen=True, slots=True)
class ProfitTargetCheck:
    """Reached when equity >= initial balance + (pct% of initial + amount)."""

    pct: float
    amount: float

    def _target(self, initial: float) -> tuple[float, float]:
        """(target equity, gain to make)."""
        gain = self.pct * initial / 100.0 + self.amount
        return initial + gain, gain

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        initial = snap.initial_balance
        target, gain = self._target(initial)
        equity = snap.equity
        progress = (equity - initial) / gain if gain > 0 else 0.0
        return Reading(equity, target, target - equity, progress, equity >= target - _eps(target))

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        initial = snap.initial_balance
        target, gain = self._target(initial)
        progress = tuple(initial + u * gain for u in used_marks) if gain > 0 else ()
        return (target - _eps(target), *progress)


@dataclass(frozen=True, slots=True)
class StaleDataCheck:
    """Stale when the last successful poll, or (with positions open) the last tick, is older
    than allowed. No tick at all while positions are open counts as infinitely old."""

    max_poll_age: float
    max_tick_age: float | None

    def measure(
        self, snap: AccountSnapshot, state: RuleState, period_start: datetime | None
    ) -> Reading:
        now = snap.now
        value = max(0.0, (now - snap.last_poll_at).total_seconds())
        threshold = self.max_poll_age
        ratio = value / threshold
        if self.max_tick_age is not None and snap.positions:
            tick_at = snap.last_tick_at
            tick_age = math.inf if tick_at is None else max(0.0, (now - tick_at).total_seconds())
            tick_ratio = tick_age / self.max_tick_age
            if tick_ratio > ratio:
                value, threshold, ratio = tick_age, self.max_tick_age, tick_ratio
        return Reading(value, threshold, threshold - value, ratio, ratio > 1.0)

    def equity_edges(
        self,
        snap: AccountSnapshot,
        state: RuleState,
        period_start: datetime | None,
        used_marks: tuple[float, ...],
    ) -> tuple[float, ...]:
        return ()  # time only: see ``riskd.engine.band``


AnyCheck = (
    DailyLossCheck
    | MaxLossCheck
    | TrailingDrawdownCheck
    | MarginLevelCheck
    | ExposureCheck
    | ProfitTargetCheck
    | StaleDataCheck
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled rule, ready for ``evaluate``.

    ``clock`` is the rule's day boundary (``reset:`` or, for an end-of-day trailing mark,
    ``end_of_day:``); ``resets`` says whether rolling to a new day clears the latch and the
    warnings (true for ``daily_loss`` and rules with ``reset:``, false for the trailing mark,
    which only moves). ``source`` is ``file:line`` of the rule, for messages.
    """

    name: str
    kind: Kind
    action: Action
    severity: Severity
    hold_for: timedelta
    warn_at: tuple[float, ...]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    description: str
    check: AnyCheck
    clock: ResetClock | None
    resets: bool
    source: str = "<memory>"
    confirm: bool = True
    """Re-read a fresh account summary before flattening on this rule (the default). False
    acts on the tick estimate alone: faster by one request, exposed to a wrong estimate."""

    @property
    def latches(self) -> bool:
        """True when a breach latches (``close_all`` and ``lockout``)."""
        return self.action != "alert"

    @property
    def tracks_equity(self) -> bool:
        """For a trailing drawdown: whether the mark follows equity (else balance)."""
        return isinstance(self.check, TrailingDrawdownCheck) and self.check.track_equity


def compile_rule(spec: RuleSpec, source: str = "<memory>") -> Rule:
    """Build the evaluable ``Rule`` for a validated rule spec (see the module docstring)."""
    check: AnyCheck
    clock: ResetClock | None = None
    resets = False
    if isinstance(spec, DailyLossSpec):
        limit = spec.limit
        pct_initial = limit.value if limit.percent and spec.limit_of == "initial_balance" else 0.0
        pct_baseline = limit.value if limit.percent and spec.limit_of == "day_start" else 0.0
        check = DailyLossCheck(
            baseline=spec.baseline,
            pct_initial=pct_initial,
            pct_baseline=pct_baseline,
            amount=0.0 if limit.percent else limit.value,
        )
        clock, resets = _clock(spec.reset), True
    elif isinstance(spec, MaxLossSpec):
        check = MaxLossCheck(*_split(spec.limit.value, spec.limit.percent))
    elif isinstance(spec, TrailingDrawdownSpec):
        pct, amount = _split(spec.limit.value, spec.limit.percent)
        check = TrailingDrawdownCheck(
            pct=pct,
            amount=amount,
            track_equity=spec.track == "equity",
            intraday=spec.update == "intraday",
            lock_at_initial=spec.lock_at_initial,
        )
        if spec.end_of_day is not None:
            clock = _clock(spec.end_of_day)
    elif isinstance(spec, MarginLevelSpec):
        check = MarginLevelCheck(below=spec.below.value)
    elif isinstance(spec, ExposureSpec):
        if spec.max_total_lots is not None:
            check = ExposureCheck("total_lots", spec.max_total_lots)
        elif spec.max_lots_per_symbol is not None:
            check = ExposureCheck("lots_per_symbol", spec.max_lots_per_symbol)
        else:
            check = ExposureCheck("positions", float(spec.max_positions or 0))
    elif isinstance(spec, ProfitTargetSpec):
        check = ProfitTargetCheck(*_split(spec.target.value, spec.target.percent))
    else:
        assert isinstance(spec, StaleDataSpec)
        check = StaleDataCheck(
            max_poll_age=spec.max_poll_age.total_seconds(),
            max_tick_age=None if spec.max_tick_age is None else spec.max_tick_age.total_seconds(),
        )
    if isinstance(spec, MarginLevelSpec | ExposureSpec | ProfitTargetSpec) and spec.reset:
        clock, resets = _clock(spec.reset), True
    severity: Severity = spec.severity or ("warning" if spec.action == "alert" else "critical")
    return Rule(
        name=spec.name,
        kind=spec.kind,
        action=spec.action,
        severity=severity,
        hold_for=spec.for_,
        confirm=spec.confirm,
        warn_at=spec.warn_at,
        labels=MappingProxyType(dict(spec.labels)),
        annotations=MappingProxyType(dict(spec.annotations)),
        description=spec.description,
        check=check,
        clock=clock,
        resets=resets,
        source=source,
    )


def _split(value: float, percent: bool) -> tuple[float, float]:
    """(percent of initial, amount) for a quantity."""
    return (value, 0.0) if percent else (0.0, value)


def _clock(spec: ResetSpec) -> ResetClock:
    return ResetClock(spec.at, spec.zone)
