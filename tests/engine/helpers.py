"""Builders shared by the engine tests: snapshots at given instants, and a day-by-day driver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from riskd.engine import (
    AccountSnapshot,
    Evaluation,
    OpenPosition,
    Rule,
    RuleState,
    evaluate,
    parse_rules,
    roll_period,
)

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


def utc(text: str) -> datetime:
    """``utc("2026-03-29 01:00")`` -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def snap(
    now: datetime,
    *,
    equity: float,
    balance: float | None = None,
    initial: float = 100_000.0,
    margin: float = 0.0,
    positions: Sequence[tuple[str, Literal["buy", "sell"], float]] = (),
    last_poll_at: datetime | None = None,
    last_tick_at: datetime | None = None,
    estimated: bool = False,
) -> AccountSnapshot:
    """An account snapshot with sensible defaults (balance defaults to equity)."""
    bal = equity if balance is None else balance
    return AccountSnapshot(
        account_id="acc-1",
        now=now,
        balance=bal,
        equity=equity,
        credit=0.0,
        margin=margin,
        free_margin=equity - margin,
        positions=tuple(OpenPosition(s, side, v) for s, side, v in positions),
        initial_balance=initial,
        currency="USD",
        last_poll_at=now if last_poll_at is None else last_poll_at,
        last_tick_at=last_tick_at,
        estimated=estimated,
    )


def one_rule(text: str) -> Rule:
    """Parse rule-file text holding exactly one rule."""
    rules = parse_rules(text)
    assert len(rules) == 1
    return rules[0]


class Account:
    """Drives rules over time like the monitor would: evaluate, keep states, roll days."""

    def __init__(self, rules: Sequence[Rule], initial: float = 100_000.0) -> None:
        self.rules = list(rules)
        self.initial = initial
        self.states: dict[str, RuleState] = {}
        self.last: Evaluation | None = None

    def roll(self, period_start: datetime, balance: float, equity: float | None = None) -> None:
        """Start the day at ``period_start`` for every rule that has a clock."""
        for rule in self.rules:
            state = self.states.get(rule.name, RuleState())
            self.states[rule.name] = roll_period(
                rule, state, period_start, balance, balance if equity is None else equity
            )

    def at(
        self,
        now: datetime,
        *,
        equity: float,
        balance: float | None = None,
        margin: float = 0.0,
        positions: Sequence[tuple[str, Literal["buy", "sell"], float]] = (),
    ) -> Evaluation:
        """Evaluate at ``now`` on a snapshot with these numbers."""
        snapshot = snap(
            now,
            equity=equity,
            balance=balance,
            initial=self.initial,
            margin=margin,
            positions=positions,
        )
        result = evaluate(self.rules, snapshot, self.states)
        self.states = dict(result.states)
        self.last = result
        return result

    def state(self, name: str) -> RuleState:
        return self.states.get(name, RuleState())


def statuses(result: Evaluation) -> Mapping[str, str]:
    return {v.rule: v.status.value for v in result.verdicts}
