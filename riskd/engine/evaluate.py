"""Pure evaluation: rules + snapshot + states in, verdicts + new states out.

Runs on every tick, so it does arithmetic on precompiled rules and allocates only the results:
one ``Verdict`` per rule, and a new ``RuleState`` only where something changed. No pydantic,
no I/O, no clock reads: ``snapshot.now`` is the time.

Per rule, after the kind's check measured the snapshot:

1. **Latched** rules report ``latched`` whatever the numbers say (the latch clears only through
   ``roll_period`` at the rule's reset, or ``unlatch``).
2. A ``daily_loss`` rule without a baseline for the current day reports ``no_baseline``: never
   a breach, never a flatten, and its ``for:`` timer does not run.
3. While the condition holds, the rule is ``pending`` until it has held for ``for:`` (measured
   with snapshot times), then ``breach``. A breach of a ``close_all``/``lockout`` rule latches
   (``Newly.LATCH``): the enforcer flattens once for it. ``alert`` rules never latch and go back
   to ``ok``/``warn`` when the condition clears.
4. Otherwise ``warn`` if the used ratio reached a ``warn_at`` level, else ``ok``.

Warnings: each ``warn_at`` level fires once per episode (``Newly.WARN`` and ``warn_crossed``),
and re-arms when the used ratio falls back below it by ``WARN_REARM`` (a small hysteresis so
equity hovering on a level does not warn on every tick). A level crossed in the same
evaluation as a breach is recorded but not reported: the breach says more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from riskd.engine.rules import Reading, Rule
from riskd.engine.snapshot import AccountSnapshot
from riskd.engine.state import INITIAL_STATE, RuleState
from riskd.engine.verdict import Evaluation, Newly, Status, Verdict

WARN_REARM = 0.02
"""How far (as a share of the allowed loss) the used ratio must fall below a reported warning
level before that level can fire again."""

_BREACHED = (Status.BREACH, Status.LATCHED)
_CALM = (Status.OK, Status.WARN)


def evaluate(
    rules: Sequence[Rule], snapshot: AccountSnapshot, states: Mapping[str, RuleState]
) -> Evaluation:
    """Evaluate ``rules`` on ``snapshot``; ``states`` maps rule name to its stored state.

    A rule with no entry in ``states`` starts from ``INITIAL_STATE``. The result holds a
    verdict and a state for every rule, in the order of ``rules``. Same input, same output.
    """
    now = snapshot.now
    verdicts: list[Verdict] = []
    new_states: dict[str, RuleState] = {}
    changed: list[str] = []
    for rule in rules:
        state = states.get(rule.name, INITIAL_STATE)
        clock = rule.clock
        period_start = clock.period_start(now) if clock is not None else None
        reading = rule.check.measure(snapshot, state, period_start)
        next_reset = clock.next_reset(now) if rule.resets and clock is not None else None
        verdict, new_state = _step(rule, reading, state, now, next_reset)
        verdicts.append(verdict)
        new_states[rule.name] = new_state
        if new_state is not state:
            changed.append(rule.name)
    return Evaluation(
        account_id=snapshot.account_id,
        at=now,
        estimated=snapshot.estimated,
        verdicts=tuple(verdicts),
        states=new_states,
        changed=tuple(changed),
    )


def _step(
    rule: Rule,
    reading: Reading,
    state: RuleState,
    now: datetime,
    next_reset: datetime | None,
) -> tuple[Verdict, RuleState]:
    previous = state.last_status
    latched = state.latched
    latched_at = state.latched_at
    since = state.condition_since
    warned = state.warned
    newly = Newly.NONE
    warn_crossed: float | None = None

    if latched:
        status = Status.LATCHED
    elif reading.no_baseline:
        status = Status.NO_BASELINE
        since = None
    elif reading.holds:
        if since is None:
            since = now
        if now - since >= rule.hold_for:
            status = Status.BREACH
            if rule.latches:
                latched, latched_at = True, now
                newly |= Newly.LATCH
        else:
            status = Status.PENDING
    else:
        since = None
        status = Status.OK

    # Warnings follow the used ratio in every state except no_baseline (nothing is measured).
    if not reading.no_baseline:
        level = _level(rule.warn_at, reading.used)
        if level is not None and (warned is None or level > warned):
            warned = level
            if status in (Status.OK, Status.PENDING):
                warn_crossed = level
                newly |= Newly.WARN
        elif warned is not None:
            warned = _rearmed(rule.warn_at, warned, reading.used)
        if status is Status.OK and level is not None:
            status = Status.WARN

    # A latch is always a new breach: after a reset or an unlock the previous status may still
    # read "breach" from the evaluation that latched, yet this is a new episode.
    if status is Status.BREACH and (previous is not Status.BREACH or Newly.LATCH in newly):
        newly |= Newly.BREACH
    elif status in _CALM and previous in _BREACHED:
        newly |= Newly.RESOLVED
    elif status is Status.NO_BASELINE and previous is not Status.NO_BASELINE:
        newly |= Newly.NO_BASELINE

    high_water = reading.high_water if reading.high_water is not None else state.high_water
    if (
        status is previous
        and since == state.condition_since
        and warned == state.warned
        and latched == state.latched
        and high_water == state.high_water
    ):
        new_state = state
    else:
        new_state = RuleState(
            period_start=state.period_start,
            start_balance=state.start_balance,
            start_equity=state.start_equity,
            high_water=high_water,
            condition_since=since,
            warned=warned,
            last_status=status,
            latched=latched,
            latched_at=latched_at,
        )
    verdict = Verdict(
        rule=rule.name,
        kind=rule.kind,
        status=status,
        previous_status=previous,
        newly=newly,
        action=rule.action,
        severity=rule.severity,
        labels=rule.labels,
        value=reading.value,
        threshold=reading.threshold,
        headroom=reading.headroom,
        used=reading.used,
        warn_crossed=warn_crossed,
        latched=latched,
        condition_since=since,
        next_reset=next_reset,
    )
    return verdict, new_state


def _level(levels: tuple[float, ...], used: float | None) -> float | None:
    """The highest level at or below ``used`` (levels are ascending), or None."""
    if used is None:
        return None
    found = None
    for level in levels:
        if used >= level:
            found = level
        else:
            break
    return found


def _rearmed(levels: tuple[float, ...], warned: float, used: float | None) -> float | None:
    """The highest reported level still armed-off after ``used`` fell (see ``WARN_REARM``)."""
    if used is None:
        return None
    keep = None
    for level in levels:
        if level <= warned and used >= level - WARN_REARM:
            keep = level
    return keep
