"""The engine's output: one verdict per rule, and what changed."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from riskd.engine.schema import Action, Kind, Severity
    from riskd.engine.state import RuleState


class Status(enum.StrEnum):
    """Where a rule stands after an evaluation.

    - ``ok``: the condition does not hold and no warning level is reached.
    - ``warn``: the condition does not hold, but the used ratio reached a ``warn_at`` level.
    - ``pending``: the condition holds, for less time than the rule's ``for:``.
    - ``breach``: the condition holds (for at least ``for:``). For ``profit_target`` this
      means the target is reached; for ``stale_data``, the data is stale.
    - ``latched``: a ``close_all``/``lockout`` rule breached earlier and stays latched until
      its reset or a person's unlock, whatever the numbers do meanwhile.
    - ``no_baseline``: a ``daily_loss`` rule has no baseline for the current day yet; it is
      never a breach and never flattens.
    """

    OK = "ok"
    WARN = "warn"
    PENDING = "pending"
    BREACH = "breach"
    LATCHED = "latched"
    NO_BASELINE = "no_baseline"


class Newly(enum.Flag):
    """What changed in this evaluation, so the alerter and enforcer act on changes only.

    - ``BREACH``: the status became ``breach`` (from anything else, including ``latched``
      after a reset or unlock while the condition still holds: that is a new breach).
    - ``LATCH``: the rule latched now; the enforcer flattens once for this.
    - ``WARN``: a ``warn_at`` level was crossed upward (``Verdict.warn_crossed`` says which).
    - ``RESOLVED``: the status left ``breach``/``latched`` for ``ok``/``warn``.
    - ``NO_BASELINE``: the status became ``no_baseline``.
    """

    NONE = 0
    BREACH = enum.auto()
    LATCH = enum.auto()
    WARN = enum.auto()
    RESOLVED = enum.auto()
    NO_BASELINE = enum.auto()


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule's result on one snapshot.

    ``value``, ``threshold``, ``headroom`` and ``used`` depend on the kind (see
    ``rules/README.md``); loss rules measure equity against a floor in money:

    - ``value``: equity; ``threshold``: the floor; ``headroom``: equity minus the floor;
      ``used``: the share of the allowed loss used (0 at the reference, 1 at the floor).
    - ``margin_level``: value/threshold in percent, headroom in percentage points,
      ``used`` = threshold / level; all None while no margin is used.
    - ``exposure``: value/threshold in lots (or positions), headroom = cap minus value,
      ``used`` = value / cap.
    - ``profit_target``: value = equity, threshold = target equity, headroom = target minus
      equity, ``used`` = progress from the initial balance to the target.
    - ``stale_data``: value = age in seconds (of the poll or the tick, whichever is worse),
      threshold = the allowed age, ``used`` = age / allowed age.

    ``next_reset`` is when the rule's latch and warnings clear next (``daily_loss`` and rules
    with ``reset:``), else None.
    """

    rule: str
    kind: Kind
    status: Status
    previous_status: Status | None
    newly: Newly
    action: Action
    severity: Severity
    labels: Mapping[str, str]
    value: float | None
    threshold: float | None
    headroom: float | None
    used: float | None
    warn_crossed: float | None
    latched: bool
    condition_since: datetime | None
    next_reset: datetime | None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """All verdicts of one account at one instant, and the rule states to keep.

    ``states`` holds a state for every evaluated rule; ``changed`` names the rules whose state
    differs from the one passed in (the store writes only those).
    """

    account_id: str
    at: datetime
    estimated: bool
    verdicts: tuple[Verdict, ...]
    states: Mapping[str, RuleState]
    changed: tuple[str, ...]

    def verdict(self, rule: str) -> Verdict:
        """The verdict of the rule named ``rule`` (KeyError if it was not evaluated)."""
        for verdict in self.verdicts:
            if verdict.rule == rule:
                return verdict
        raise KeyError(rule)

    @property
    def to_flatten(self) -> tuple[Verdict, ...]:
        """Verdicts that latched now: each asks for exactly one flatten."""
        return tuple(v for v in self.verdicts if Newly.LATCH in v.newly)

    @property
    def locked_out(self) -> bool:
        """True while any ``lockout`` rule is latched: positions must be closed on sight."""
        return any(v.latched and v.action == "lockout" for v in self.verdicts)
