"""Properties: no loss rule breaches while equity is above every floor; evaluation is
deterministic. The floors are recomputed here from the published formulas (an oracle that
shares no code with the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskd.engine import (
    Newly,
    RuleState,
    Status,
    due_roll,
    evaluate,
    parse_rules,
    roll_period,
)
from riskd.engine.rules import REL_TOLERANCE
from tests.engine.helpers import snap, utc

START = utc("2026-03-20 08:00")  # a week that crosses Prague's spring-forward night


@dataclass(frozen=True)
class LossRule:
    """One generated loss rule: its YAML and the parameters the oracle needs."""

    name: str
    kind: str
    pct: float  # percent of initial (or of the day-start baseline, see of_baseline)
    amount: float
    of_baseline: bool = False
    baseline: str = "balance"
    track: str = "balance"
    intraday: bool = True
    lock: bool = False
    hold: int = 0

    def yaml(self) -> str:
        limit = f"{self.pct}%" if self.pct else f"{self.amount}"
        head = f"- name: {self.name}\n  kind: {self.kind}\n  limit: {limit}\n  for: {self.hold}s\n"
        head += "  action: lockout\n  warn_at: [50%, 80%]\n"
        if self.kind == "daily_loss":
            head += f"  baseline: {self.baseline}\n"
            head += '  reset: {at: "00:00", zone: Europe/Prague}\n'
            if self.pct:
                head += f"  limit_of: {'day_start' if self.of_baseline else 'initial_balance'}\n"
        if self.kind == "trailing_drawdown":
            head += f"  track: {self.track}\n  lock_at_initial: {str(self.lock).lower()}\n"
            if self.intraday:
                head += "  update: intraday\n"
            else:
                head += '  update: end_of_day\n  end_of_day: {at: "00:00", zone: Europe/Prague}\n'
        return head


def _limit() -> st.SearchStrategy[tuple[float, float]]:
    pct = st.floats(0.5, 20.0).map(lambda x: (round(x, 2), 0.0))
    amount = st.floats(50.0, 15_000.0).map(lambda x: (0.0, round(x, 2)))
    return st.one_of(pct, amount)


@st.composite
def loss_rules(draw: st.DrawFn) -> list[LossRule]:
    out: list[LossRule] = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["daily_loss", "max_loss", "trailing_drawdown"]))
        pct, amount = draw(_limit())
        out.append(
            LossRule(
                name=f"r{i}",
                kind=kind,
                pct=pct,
                amount=amount,
                of_baseline=draw(st.booleans()),
                baseline=draw(st.sampled_from(["balance", "equity", "max_balance_equity"])),
                track=draw(st.sampled_from(["balance", "equity"])),
                intraday=draw(st.booleans()),
                lock=draw(st.booleans()),
                hold=draw(st.sampled_from([0, 0, 30])),
            )
        )
    return out


class Oracle:
    """Each rule's floor from the firms' formulas, tracking day starts and high-water marks."""

    def __init__(self, rules: list[LossRule], initial: float) -> None:
        self.rules = rules
        self.initial = initial
        self.day: tuple[float, float] | None = None  # (start balance, start equity)
        self.mark = {r.name: initial for r in rules}

    def roll(self, balance: float, equity: float) -> None:
        self.day = (balance, equity)
        for r in self.rules:
            if r.kind == "trailing_drawdown" and not r.intraday:
                start = equity if r.track == "equity" else balance
                self.mark[r.name] = max(self.mark[r.name], start)

    def floor(self, r: LossRule, balance: float, equity: float) -> float:
        """The floor in force once this snapshot is seen (intraday marks include it)."""
        if r.kind == "daily_loss":
            assert self.day is not None
            start_b, start_e = self.day
            base = {"balance": start_b, "equity": start_e}.get(r.baseline, max(start_b, start_e))
            limit = (base if r.of_baseline else self.initial) * r.pct / 100 if r.pct else r.amount
            return base - limit
        limit = self.initial * r.pct / 100 if r.pct else r.amount
        if r.kind == "max_loss":
            return self.initial - limit
        mark = self.mark[r.name]
        if r.intraday:
            mark = max(mark, equity if r.track == "equity" else balance)
        floor = mark - limit
        return min(floor, self.initial) if r.lock else floor

    def see(self, r: LossRule, balance: float, equity: float) -> None:
        if r.kind == "trailing_drawdown" and r.intraday:
            tracked = equity if r.track == "equity" else balance
            self.mark[r.name] = max(self.mark[r.name], tracked)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=loss_rules(),
    initial=st.sampled_from([10_000.0, 100_000.0, 200_000.0]),
    steps=st.lists(
        st.tuples(
            st.integers(60, 6 * 3600),  # seconds to the next snapshot
            st.floats(-0.15, 0.3),  # balance relative to initial
            st.floats(0.01, 5_000.0),  # equity margin above the highest floor
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_no_breach_while_equity_is_above_every_floor(
    rules: list[LossRule], initial: float, steps: list[tuple[int, float, float]]
) -> None:
    compiled = parse_rules("".join(r.yaml() for r in rules))
    oracle = Oracle(rules, initial)
    states: dict[str, RuleState] = {}
    now = START
    equity = initial
    for seconds, balance_rel, margin in steps:
        now += timedelta(seconds=seconds)
        balance = round(initial * (1 + balance_rel), 2)
        # The monitor's job: start a new day with the values at the reset.
        due = [r for r in compiled if due_roll(r, states.get(r.name, RuleState()), now)]
        for rule in due:
            assert rule.clock is not None
            state = states.get(rule.name, RuleState())
            start = rule.clock.period_start(now)
            states[rule.name] = roll_period(rule, state, start, balance, equity)
        if due or oracle.day is None:
            oracle.roll(balance, equity)
        # Equity strictly above every floor, tolerance included. An intraday equity mark rises
        # with equity itself, so its floor stays below any equity above the current mark's.
        top = max(oracle.floor(r, balance, oracle.mark[r.name]) for r in rules)
        equity = round(top + margin + 2 * REL_TOLERANCE * max(1.0, abs(top)), 2)
        result = evaluate(
            compiled, snap(now, equity=equity, balance=balance, initial=initial), states
        )
        for r in rules:
            oracle.see(r, balance, equity)
            verdict = result.verdict(r.name)
            assert verdict.status not in (Status.BREACH, Status.PENDING, Status.LATCHED)
            assert Newly.LATCH not in verdict.newly
            assert verdict.threshold is not None
            assert verdict.threshold < equity
            assert verdict.threshold == _approx(oracle.floor(r, balance, equity))
        states = dict(result.states)


def _approx(x: float) -> object:
    import pytest

    return pytest.approx(x, rel=1e-9, abs=1e-6)


ALL_KINDS = """
- {name: dl, kind: daily_loss, baseline: max_balance_equity, limit: 5%, limit_of: day_start,
   reset: {at: "17:00", zone: America/New_York}, warn_at: [50%, 80%], action: lockout}
- {name: ml, kind: max_loss, limit: 10%, warn_at: [50%], for: 10s, action: close_all}
- {name: tr, kind: trailing_drawdown, limit: 4000, track: equity, update: intraday,
   lock_at_initial: true, action: lockout}
- {name: te, kind: trailing_drawdown, limit: 6%, track: balance, update: end_of_day,
   end_of_day: {at: "00:00", zone: Europe/Prague}}
- {name: mg, kind: margin_level, below: 120%, warn_at: [80%], for: 5s, action: close_all,
   reset: {at: "00:00", zone: UTC}}
- {name: ex, kind: exposure, max_lots_per_symbol: 2}
- {name: pt, kind: profit_target, target: 8%, warn_at: [50%]}
- {name: st, kind: stale_data, max_poll_age: 1m, max_tick_age: 20s}
"""

statuses = st.sampled_from(list(Status))
SIDES: list[Literal["buy", "sell"]] = ["buy", "sell"]
maybe_time = st.one_of(
    st.none(), st.integers(0, 10 * 86400).map(lambda s: START + timedelta(seconds=s))
)
money = st.floats(50_000.0, 150_000.0)


@st.composite
def rule_states(draw: st.DrawFn) -> RuleState:
    return RuleState(
        period_start=draw(maybe_time),
        start_balance=draw(st.one_of(st.none(), money)),
        start_equity=draw(st.one_of(st.none(), money)),
        high_water=draw(st.one_of(st.none(), money)),
        condition_since=draw(maybe_time),
        warned=draw(st.sampled_from([None, 0.5, 0.8])),
        last_status=draw(st.one_of(st.none(), statuses)),
        latched=draw(st.booleans()),
        latched_at=draw(maybe_time),
    )


@settings(max_examples=150, deadline=None)
@given(
    offset=st.integers(0, 10 * 86400),
    equity=money,
    balance=money,
    margin=st.floats(0.0, 50_000.0),
    positions=st.lists(
        st.tuples(
            st.sampled_from(["EURUSD", "XAUUSD"]),
            st.sampled_from(SIDES),
            st.floats(0.01, 3.0),
        ),
        max_size=4,
    ),
    poll_age=st.integers(0, 300),
    tick_age=st.one_of(st.none(), st.integers(0, 300)),
    states=st.dictionaries(
        st.sampled_from(["dl", "ml", "tr", "te", "mg", "ex", "pt", "st"]), rule_states()
    ),
)
def test_evaluation_is_deterministic(
    offset: int,
    equity: float,
    balance: float,
    margin: float,
    positions: list[tuple[str, Literal["buy", "sell"], float]],
    poll_age: int,
    tick_age: int | None,
    states: dict[str, RuleState],
) -> None:
    now = START + timedelta(seconds=offset)
    snapshot = snap(
        now,
        equity=equity,
        balance=balance,
        margin=margin,
        positions=positions,
        last_poll_at=now - timedelta(seconds=poll_age),
        last_tick_at=None if tick_age is None else now - timedelta(seconds=tick_age),
    )
    rules_a, rules_b = parse_rules(ALL_KINDS), parse_rules(ALL_KINDS)
    first = evaluate(rules_a, snapshot, dict(states))
    again = evaluate(rules_a, snapshot, dict(states))  # warm clock caches
    fresh = evaluate(rules_b, snapshot, dict(states))  # cold clock caches
    assert first == again == fresh
    # The input states are not modified, and unchanged states are passed through.
    for name in first.states:
        if name not in first.changed and name in states:
            assert first.states[name] is states[name]
