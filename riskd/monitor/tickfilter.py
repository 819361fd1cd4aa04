"""Which ticks may move an equity estimate: a pure, per-symbol bad-tick filter.

A guard that flattens accounts must not be moved by a misprint. Every tick goes through
:meth:`TickFilter.check`, which either accepts it (and learns from it) or names the reason it
was dropped and counts it. The rules, in the order they are tried:

1. ``non_positive``: bid or ask is not a positive finite number.
2. ``crossed``: ask below bid (ask == bid is a legal zero spread).
3. ``out_of_order``: the tick's time is older than the last accepted tick of the same symbol
   (equal times are accepted: the wire has millisecond resolution and fast markets send several
   ticks per millisecond).
4. ``stale``: the tick's time is more than ``max_age`` before ``now``.
5. ``future``: the tick's time is more than ``max_future`` after ``now``. Without this rule a
   single tick stamped far in the future would make every later tick ``out_of_order``, and the
   symbol would be frozen for good.
6. ``jump``: the mid moved from the last accepted mid by more than ``jump_k`` times the EWMA of
   recent absolute mid changes AND by more than ``jump_min_rel`` of the last accepted mid. The
   relative floor is what lets a quiet market (EWMA near zero) make its first real move. A jump
   that persists is a real move and is accepted: on the ``persist_ticks``-th consecutive jump
   tick on the same side of the last accepted mid (a gap that stays, or a crash that keeps
   falling), that tick is accepted and the EWMA is raised to at least ``move / jump_k``, so
   the next move of that size passes at once; the EWMA then decays as the market calms. A real
   gap is never filtered for more than ``persist_ticks - 1`` ticks.

A tick without a time (``time=None``) skips rules 3 to 5. The first tick of a symbol has no
reference, so it is accepted if it passes rules 1 to 5; a bad first tick is undone by the
persistence rule within ``persist_ticks`` good ticks. :meth:`TickFilter.seed` lets a trusted
price (a REST quote taken with a poll) become the reference instead.

Time is always an argument: the filter never reads a clock. Memory is a fixed handful of
fields per symbol; :meth:`TickFilter.forget` drops a symbol no longer watched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

DropReason = Literal["non_positive", "crossed", "out_of_order", "stale", "future", "jump"]

DROP_REASONS: Final[tuple[DropReason, ...]] = (
    "non_positive",
    "crossed",
    "out_of_order",
    "stale",
    "future",
    "jump",
)
"""Every reason :meth:`TickFilter.check` may return, in the order the rules are tried."""

_INF: Final = math.inf


@dataclass(frozen=True, slots=True)
class TickFilterConfig:
    """Thresholds of :class:`TickFilter`; the defaults are meant for FX, metals and indices.

    - ``max_age``: a tick older than this relative to ``now`` is ``stale``. Generous because the
      tick time is the bridge's clock and ``now`` is ours; a skew beyond it shows as a climbing
      ``stale`` count rather than silently wrong prices.
    - ``max_future``: a tick newer than ``now`` by more than this is ``future``.
    - ``jump_k``: how many EWMAs of recent absolute mid changes a move must exceed to be a jump.
    - ``jump_min_rel``: and the fraction of the price it must exceed (0.002 is 22 pips on
      EURUSD, 4.7 USD on gold at 2350, 37 points on GER40 at 18500).
    - ``ewma_alpha``: weight of the newest absolute mid change in the EWMA (0.05: about the
      last 20 ticks).
    - ``persist_ticks``: consecutive jump ticks on one side that make the move real.
    """

    max_age: timedelta = timedelta(seconds=30)
    max_future: timedelta = timedelta(seconds=10)
    jump_k: float = 10.0
    jump_min_rel: float = 0.002
    ewma_alpha: float = 0.05
    persist_ticks: int = 3

    def __post_init__(self) -> None:
        if self.max_age <= timedelta(0) or self.max_future < timedelta(0):
            raise ValueError("max_age must be positive and max_future not negative")
        if not (self.jump_k > 0 and self.jump_min_rel >= 0):
            raise ValueError("jump_k must be positive and jump_min_rel not negative")
        if not 0 < self.ewma_alpha <= 1:
            raise ValueError("ewma_alpha must be in (0, 1]")
        if self.persist_ticks < 1:
            raise ValueError("persist_ticks must be at least 1")


class _SymbolState:
    """What the filter remembers of one symbol: a fixed set of fields, nothing that grows."""

    __slots__ = ("ewma", "mid", "run", "run_side", "time")

    def __init__(self, mid: float, time: datetime | None) -> None:
        self.mid = mid  # last accepted mid
        self.time = time  # last accepted tick time (None until a tick with a time)
        self.ewma = 0.0  # EWMA of |mid change| between accepted ticks
        self.run = 0  # consecutive jump ticks on one side of `mid`
        self.run_side = 0  # +1 above, -1 below


class TickFilter:
    """Per-symbol bad-tick filter; see the module docstring for the exact rules.

    Not thread-safe; one owner (an estimator, or a stream consumer that filters once for many
    estimators and then calls their unfiltered ``apply``).
    """

    __slots__ = (
        "_accepted",
        "_alpha",
        "_dropped",
        "_gaps",
        "_k",
        "_max_age",
        "_min_age",
        "_min_rel",
        "_persist",
        "_states",
        "config",
    )

    def __init__(self, config: TickFilterConfig | None = None) -> None:
        self.config = config if config is not None else TickFilterConfig()
        # Copied to plain attributes: the hot path reads them on every tick.
        self._max_age = self.config.max_age
        self._min_age = -self.config.max_future  # age below this: from the future
        self._k = self.config.jump_k
        self._min_rel = self.config.jump_min_rel
        self._alpha = self.config.ewma_alpha
        self._persist = self.config.persist_ticks
        self._states: dict[str, _SymbolState] = {}
        self._dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._accepted = 0
        self._gaps = 0

    # -- counters ---------------------------------------------------------------------------

    @property
    def dropped(self) -> Mapping[str, int]:
        """Dropped ticks by reason (every reason present, 0 when none); a live read-only view."""
        return self._dropped

    @property
    def accepted(self) -> int:
        """Ticks accepted so far (including the ones that confirmed a gap)."""
        return self._accepted

    @property
    def gaps(self) -> int:
        """Jump runs that persisted and were accepted as a real move."""
        return self._gaps

    # -- the filter -------------------------------------------------------------------------

    def check(
        self, symbol: str, bid: float, ask: float, time: datetime | None, now: datetime
    ) -> DropReason | None:
        """Accept the tick (None, and remember it) or return why it was dropped (and count it).

        ``time`` is the tick's own timestamp (None when the wire gave none), ``now`` the
        caller's clock; both aware datetimes in the same zone.
        """
        # `not (0 < x < inf)` is also true for NaN.
        if not (0.0 < bid < _INF and 0.0 < ask < _INF):
            return self._drop("non_positive")
        if ask < bid:
            return self._drop("crossed")
        state = self._states.get(symbol)
        if time is not None:
            if state is not None and state.time is not None and time < state.time:
                return self._drop("out_of_order")
            age = now - time  # one timedelta for both rules
            if age > self._max_age:
                return self._drop("stale")
            if age < self._min_age:
                return self._drop("future")
        mid = (bid + ask) * 0.5
        if state is None:
            self._states[symbol] = _SymbolState(mid, time)
            self._accepted += 1
            return None
        move = abs(mid - state.mid)
        if move > self._k * state.ewma and move > self._min_rel * state.mid:
            return self._jump(state, mid, time)
        state.ewma += self._alpha * (move - state.ewma)
        state.mid = mid
        state.run = 0  # a jump run that ends before persisting was bad ticks
        if time is not None:
            state.time = time
        self._accepted += 1
        return None

    def _jump(self, state: _SymbolState, mid: float, time: datetime | None) -> DropReason | None:
        # A run is consecutive jump ticks on the same side of the last accepted mid: a gap that
        # stays, and also a crash that keeps falling (each tick far from the one before). A
        # misprint run ends at the next good tick, or flips side.
        side = 1 if mid > state.mid else -1
        if state.run_side == side:
            state.run += 1
        else:
            state.run_side, state.run = side, 1
        if state.run < self._persist:
            return self._drop("jump")
        # A real move. Raise the volatility estimate so a move of this size is no longer a
        # jump (the market is fast now; the EWMA decays back as it calms down), else a crash
        # would only get through every persist_ticks-th tick.
        state.ewma = max(state.ewma, abs(mid - state.mid) / self._k)
        state.mid = mid
        state.run = 0
        if time is not None:
            state.time = time
        self._accepted += 1
        self._gaps += 1
        return None

    def _drop(self, reason: DropReason) -> DropReason:
        self._dropped[reason] += 1
        return reason

    # -- state management -------------------------------------------------------------------

    def seed(self, symbol: str, bid: float, ask: float, time: datetime | None) -> bool:
        """Make a trusted price (e.g. a REST quote) the symbol's reference, without jump check.

        Refused (False) when the price is not sane or is older than the last accepted tick;
        the volatility estimate is kept. Nothing is counted.
        """
        if not (0.0 < bid < _INF and 0.0 < ask < _INF) or ask < bid:
            return False
        mid = (bid + ask) * 0.5
        state = self._states.get(symbol)
        if state is None:
            self._states[symbol] = _SymbolState(mid, time)
            return True
        if time is not None and state.time is not None and time < state.time:
            return False
        state.mid = mid
        state.run = 0
        if time is not None:
            state.time = time
        return True

    def last_time(self, symbol: str) -> datetime | None:
        """Time of the last accepted tick of ``symbol`` (None when unknown or untimed)."""
        state = self._states.get(symbol)
        return None if state is None else state.time

    def forget(self, symbol: str) -> None:
        """Drop everything remembered about ``symbol`` (it is no longer watched)."""
        self._states.pop(symbol, None)

    def symbols(self) -> frozenset[str]:
        """The symbols the filter currently remembers."""
        return frozenset(self._states)
