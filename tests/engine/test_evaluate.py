"""Evaluation mechanics: for: timing, warnings, latches, baselines, each kind's measurement."""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Literal

import pytest

from riskd.engine import (
    INITIAL_STATE,
    Newly,
    RuleState,
    Status,
    derive_day_start_balance,
    due_roll,
    evaluate,
    parse_rules,
    roll_period,
    unlatch,
)
from tests.engine.helpers import RULES_DIR, Account, one_rule, snap, utc

T0 = utc("2026-06-01 10:00")
Side = Literal["buy", "sell"]


def max_loss(action: str = "alert", hold: str = "0s", warn: str = "[]") -> Account:
    return Account(
        parse_rules(
            f"""
- name: ml
  kind: max_loss
  limit: 10%
  for: {hold}
  warn_at: {warn}
  action: {action}
"""
        )
    )


def daily(action: str = "close_all", baseline: str = "balance", limit: str = "5%") -> Account:
    limit_of = "\n  limit_of: initial_balance" if limit.endswith("%") else ""
    return Account(
        parse_rules(
            f"""
- name: dl
  kind: daily_loss
  baseline: {baseline}
  limit: {limit}{limit_of}
  reset: {{at: "00:00", zone: Europe/Prague}}
  action: {action}
"""
        )
    )


DAY = utc("2026-05-31 22:00")  # 00:00 Prague (CEST) on 2026-06-01
NEXT_DAY = utc("2026-06-01 22:00")


# --- for: --------------------------------------------------------------------------------


def test_for_holds_the_condition_for_the_duration_in_snapshot_time() -> None:
    acc = max_loss(hold="30s")
    first = acc.at(T0, equity=89_000.0).verdict("ml")
    assert first.status is Status.PENDING
    assert first.condition_since == T0
    assert acc.at(T0 + timedelta(seconds=29), equity=89_000.0).verdict("ml").status is (
        Status.PENDING
    )
    breach = acc.at(T0 + timedelta(seconds=30), equity=89_500.0).verdict("ml")
    assert breach.status is Status.BREACH
    assert breach.newly == Newly.BREACH


def test_for_timer_restarts_when_the_condition_clears() -> None:
    acc = max_loss(hold="30s")
    acc.at(T0, equity=89_000.0)
    cleared = acc.at(T0 + timedelta(seconds=20), equity=95_000.0).verdict("ml")
    assert cleared.status is Status.OK
    assert cleared.condition_since is None
    again = acc.at(T0 + timedelta(seconds=40), equity=89_000.0).verdict("ml")
    assert again.status is Status.PENDING
    assert again.condition_since == T0 + timedelta(seconds=40)
    assert acc.at(T0 + timedelta(seconds=69), equity=89_000.0).verdict("ml").status is (
        Status.PENDING
    )
    assert acc.at(T0 + timedelta(seconds=70), equity=89_000.0).verdict("ml").status is (
        Status.BREACH
    )


def test_zero_for_breaches_on_the_first_snapshot() -> None:
    acc = max_loss()
    assert acc.at(T0, equity=90_000.0).verdict("ml").status is Status.BREACH


# --- warnings ----------------------------------------------------------------------------


def test_each_warn_level_fires_once_per_episode() -> None:
    acc = max_loss(warn="[50%, 80%]")
    steps = [
        (96_000.0, Status.OK, None),  # 40% of the 10,000 used
        (94_900.0, Status.WARN, 0.5),  # 51%: crosses 50%
        (94_000.0, Status.WARN, None),  # 60%: nothing new
        (95_000.0, Status.WARN, None),  # back to exactly 50%: still at the level
        (91_900.0, Status.WARN, 0.8),  # 81%: crosses 80%
        (91_000.0, Status.WARN, None),
    ]
    for i, (equity, status, crossed) in enumerate(steps):
        verdict = acc.at(T0 + timedelta(seconds=i), equity=equity).verdict("ml")
        assert (verdict.status, verdict.warn_crossed) == (status, crossed), equity
        assert (Newly.WARN in verdict.newly) == (crossed is not None)


def test_a_warn_level_rearms_after_falling_clearly_below_it() -> None:
    acc = max_loss(warn="[80%]")
    assert acc.at(T0, equity=91_900.0).verdict("ml").warn_crossed == 0.8
    # Hovering just under the level (within WARN_REARM) does not re-arm it.
    assert acc.at(T0 + timedelta(seconds=1), equity=92_100.0).verdict("ml").status is Status.OK
    assert acc.at(T0 + timedelta(seconds=2), equity=91_950.0).verdict("ml").warn_crossed is None
    # Falling clearly below (to 70%) re-arms it; crossing again warns again.
    assert acc.at(T0 + timedelta(seconds=3), equity=93_000.0).verdict("ml").status is Status.OK
    assert acc.state("ml").warned is None
    assert acc.at(T0 + timedelta(seconds=4), equity=91_800.0).verdict("ml").warn_crossed == 0.8


def test_a_jump_over_several_levels_reports_the_highest() -> None:
    acc = max_loss(warn="[50%, 80%]")
    verdict = acc.at(T0, equity=91_000.0).verdict("ml")
    assert verdict.warn_crossed == 0.8
    assert acc.at(T0 + timedelta(seconds=1), equity=94_000.0).verdict("ml").warn_crossed is None


def test_a_breach_supersedes_the_warnings_crossed_with_it() -> None:
    acc = max_loss(warn="[50%, 80%]")
    verdict = acc.at(T0, equity=89_000.0).verdict("ml")
    assert verdict.status is Status.BREACH
    assert verdict.warn_crossed is None
    assert acc.state("ml").warned == 0.8


def test_warnings_fire_while_pending() -> None:
    acc = max_loss(hold="1m", warn="[50%]")
    verdict = acc.at(T0, equity=89_000.0).verdict("ml")
    assert (verdict.status, verdict.warn_crossed) == (Status.PENDING, 0.5)


# --- latches -----------------------------------------------------------------------------


def test_close_all_breach_latches_until_a_person_unlocks_a_rule_without_reset() -> None:
    acc = max_loss(action="close_all")
    first = acc.at(T0, equity=89_000.0)
    verdict = first.verdict("ml")
    assert verdict.status is Status.BREACH
    assert verdict.newly == Newly.BREACH | Newly.LATCH
    assert verdict.latched
    assert first.to_flatten == (verdict,)
    assert acc.state("ml").latched_at == T0
    # Equity recovers: still latched, no new flatten request.
    later = acc.at(T0 + timedelta(hours=1), equity=99_000.0)
    assert later.verdict("ml").status is Status.LATCHED
    assert later.verdict("ml").newly == Newly.NONE
    assert later.to_flatten == ()
    assert not later.locked_out  # close_all, not lockout
    # A person unlocks.
    acc.states["ml"] = unlatch(acc.state("ml"))
    resolved = acc.at(T0 + timedelta(hours=2), equity=99_000.0).verdict("ml")
    assert resolved.status is Status.OK
    assert resolved.newly == Newly.RESOLVED


def test_unlatch_while_the_condition_still_holds_breaches_again() -> None:
    acc = max_loss(action="lockout")
    acc.at(T0, equity=89_000.0)
    acc.states["ml"] = unlatch(acc.state("ml"))
    again = acc.at(T0 + timedelta(minutes=1), equity=89_000.0)
    assert again.verdict("ml").newly == Newly.BREACH | Newly.LATCH
    assert again.locked_out


def test_alert_rules_never_latch_and_resolve_when_the_condition_clears() -> None:
    acc = max_loss(action="alert")
    breach = acc.at(T0, equity=89_000.0).verdict("ml")
    assert (breach.status, breach.newly, breach.latched) == (Status.BREACH, Newly.BREACH, False)
    still = acc.at(T0 + timedelta(seconds=1), equity=88_000.0).verdict("ml")
    assert (still.status, still.newly) == (Status.BREACH, Newly.NONE)
    clear = acc.at(T0 + timedelta(seconds=2), equity=95_000.0).verdict("ml")
    assert (clear.status, clear.newly) == (Status.OK, Newly.RESOLVED)


def test_daily_latch_clears_at_the_reset_and_a_still_breached_new_day_latches_again() -> None:
    acc = daily(action="lockout")
    acc.roll(DAY, balance=100_000.0)
    assert acc.at(T0, equity=94_000.0).verdict("dl").latched
    assert acc.at(T0 + timedelta(hours=1), equity=99_000.0).verdict("dl").status is (Status.LATCHED)
    # After midnight, before the monitor rolled: still latched (the latch is yesterday's).
    late = acc.at(NEXT_DAY + timedelta(seconds=1), equity=99_000.0).verdict("dl")
    assert late.status is Status.LATCHED
    # Rolled with a calm account: ok again.
    acc.roll(NEXT_DAY, balance=99_000.0)
    calm = acc.at(NEXT_DAY + timedelta(seconds=2), equity=99_000.0).verdict("dl")
    assert (calm.status, calm.newly) == (Status.OK, Newly.RESOLVED)
    assert calm.threshold == 94_000.0


def test_daily_rolled_while_still_below_the_new_floor_is_a_new_breach() -> None:
    acc = daily(action="close_all")
    acc.roll(DAY, balance=100_000.0)
    acc.at(T0, equity=94_000.0, balance=100_000.0)
    acc.roll(NEXT_DAY, balance=100_000.0, equity=94_000.0)
    verdict = acc.at(NEXT_DAY + timedelta(seconds=1), equity=94_000.0).verdict("dl")
    assert verdict.previous_status is Status.BREACH  # the evaluation that latched yesterday
    assert verdict.newly == Newly.BREACH | Newly.LATCH


# --- baselines ---------------------------------------------------------------------------


def test_daily_rule_without_a_baseline_never_breaches() -> None:
    acc = daily()
    verdict = acc.at(T0, equity=1.0).verdict("dl")
    assert verdict.status is Status.NO_BASELINE
    assert verdict.newly == Newly.NO_BASELINE
    assert verdict.threshold is None
    assert not verdict.latched
    assert acc.at(T0 + timedelta(seconds=1), equity=1.0).verdict("dl").newly == Newly.NONE


def test_yesterdays_baseline_is_no_baseline_today() -> None:
    acc = daily()
    acc.roll(DAY, balance=100_000.0)
    assert acc.at(T0, equity=99_000.0).verdict("dl").status is Status.OK
    assert acc.at(NEXT_DAY, equity=99_000.0).verdict("dl").status is Status.NO_BASELINE


def test_rolling_to_the_current_period_again_never_rebases_the_day() -> None:
    acc = daily()
    acc.roll(DAY, balance=100_000.0)
    acc.roll(DAY, balance=97_000.0)  # e.g. a restart that rolls again
    assert acc.state("dl").start_balance == 100_000.0
    assert acc.at(T0, equity=95_000.0).verdict("dl").status is Status.BREACH


def test_due_roll_names_the_period_to_roll_to() -> None:
    rule = one_rule(
        """
- name: dl
  kind: daily_loss
  baseline: balance
  limit: 5000
  reset: {at: "00:00", zone: Europe/Prague}
"""
    )
    assert due_roll(rule, INITIAL_STATE, T0) == DAY
    rolled = roll_period(rule, INITIAL_STATE, DAY, 100_000.0, 100_000.0)
    assert due_roll(rule, rolled, T0) is None
    assert due_roll(rule, rolled, NEXT_DAY) == NEXT_DAY
    ml = one_rule("- {name: ml, kind: max_loss, limit: 10%}")
    assert due_roll(ml, INITIAL_STATE, T0) is None
    assert roll_period(ml, INITIAL_STATE, DAY, 1.0, 1.0) is INITIAL_STATE


def test_max_balance_equity_without_start_equity_uses_the_balance() -> None:
    acc = daily(baseline="max_balance_equity")
    acc.states["dl"] = roll_period(acc.rules[0], INITIAL_STATE, DAY, 100_000.0, None)
    assert acc.at(T0, equity=99_000.0).verdict("dl").threshold == 95_000.0


def test_equity_baseline_without_start_equity_has_no_baseline() -> None:
    acc = daily(baseline="equity")
    acc.states["dl"] = roll_period(acc.rules[0], INITIAL_STATE, DAY, 100_000.0, None)
    assert acc.at(T0, equity=50_000.0).verdict("dl").status is Status.NO_BASELINE


def test_daily_limit_as_an_amount_and_as_percent_of_day_start() -> None:
    acc = daily(limit="2500")
    acc.roll(DAY, balance=110_000.0)
    assert acc.at(T0, equity=108_000.0).verdict("dl").threshold == 107_500.0
    pct = Account(
        parse_rules(
            """
- name: dl
  kind: daily_loss
  baseline: equity
  limit: 4%
  limit_of: day_start
  reset: {at: "00:00", zone: Europe/Prague}
"""
        )
    )
    pct.roll(DAY, balance=100_000.0, equity=125_000.0)
    assert pct.at(T0, equity=124_000.0).verdict("dl").threshold == 120_000.0


def test_derive_day_start_balance_subtracts_what_closed_since_the_reset() -> None:
    # Now 101,250 after +2,000, -500 and -250 (net of swaps and commissions) since the reset.
    assert derive_day_start_balance(101_250.0, [2_000.0, -500.0, -250.0]) == 100_000.0
    assert derive_day_start_balance(100_000.0, []) == 100_000.0


# --- trailing drawdown -------------------------------------------------------------------


def test_intraday_equity_trailing_mark_rises_and_never_falls() -> None:
    acc = Account(
        parse_rules(
            """
- {name: tr, kind: trailing_drawdown, limit: 5000, track: equity, update: intraday}
"""
        )
    )
    assert acc.at(T0, equity=100_000.0).verdict("tr").threshold == 95_000.0
    assert acc.at(T0 + timedelta(minutes=1), equity=103_000.0).verdict("tr").threshold == (98_000.0)
    assert acc.state("tr").high_water == 103_000.0
    down = acc.at(T0 + timedelta(minutes=2), equity=99_000.0).verdict("tr")
    assert down.threshold == 98_000.0
    assert acc.at(T0 + timedelta(minutes=3), equity=98_000.0).verdict("tr").status is (
        Status.BREACH
    )


def test_balance_trailing_lock_caps_the_floor_at_the_initial_balance() -> None:
    acc = Account(
        parse_rules(
            """
- name: tr
  kind: trailing_drawdown
  limit: 6%
  track: balance
  update: intraday
  lock_at_initial: true
"""
        )
    )
    # Floating profit does not move a balance mark.
    assert acc.at(T0, equity=104_000.0, balance=100_000.0).verdict("tr").threshold == 94_000.0
    step = acc.at(T0 + timedelta(minutes=1), equity=103_000.0, balance=103_000.0)
    assert step.verdict("tr").threshold == 97_000.0
    locked = acc.at(T0 + timedelta(minutes=2), equity=110_000.0, balance=110_000.0)
    assert locked.verdict("tr").threshold == 100_000.0  # not 104,000
    assert acc.at(T0 + timedelta(minutes=3), equity=100_000.0).verdict("tr").status is (
        Status.BREACH
    )


def test_trailing_mark_never_starts_below_the_initial_balance() -> None:
    acc = Account(
        parse_rules(
            """
- {name: tr, kind: trailing_drawdown, limit: 10%, track: balance, update: end_of_day,
   end_of_day: {at: "00:00", zone: Europe/Prague}}
"""
        )
    )
    acc.roll(DAY, balance=97_000.0)  # a losing first day does not lower the mark
    assert acc.at(T0, equity=97_000.0).verdict("tr").threshold == 90_000.0


def test_trailing_end_of_day_latch_survives_the_day_roll() -> None:
    acc = Account(
        parse_rules(
            """
- {name: tr, kind: trailing_drawdown, limit: 10%, track: balance, update: end_of_day,
   end_of_day: {at: "00:00", zone: Europe/Prague}, action: lockout}
"""
        )
    )
    acc.at(T0, equity=89_000.0)
    acc.roll(NEXT_DAY, balance=95_000.0)
    verdict = acc.at(NEXT_DAY + timedelta(hours=1), equity=95_000.0).verdict("tr")
    assert verdict.status is Status.LATCHED
    assert verdict.next_reset is None


# --- margin, exposure, target, staleness -------------------------------------------------


def test_margin_level_rule_is_idle_without_margin() -> None:
    acc = Account(parse_rules("- {name: m, kind: margin_level, below: 150%, warn_at: [75%]}"))
    idle = acc.at(T0, equity=1_000.0, margin=0.0).verdict("m")
    assert (idle.status, idle.value, idle.used) == (Status.OK, None, None)
    warn = acc.at(T0, equity=1_000.0, margin=500.0).verdict("m")  # level 200%
    assert (warn.status, warn.value, warn.used, warn.warn_crossed) == (
        Status.WARN,
        200.0,
        0.75,
        0.75,
    )
    # Exactly at the threshold is not below it; a cent under is.
    assert acc.at(T0, equity=1_500.0, margin=1_000.0).verdict("m").status is Status.WARN
    assert acc.at(T0, equity=1_499.99, margin=1_000.0).verdict("m").status is Status.BREACH
    assert acc.at(T0, equity=3_000.0, margin=1_000.0).verdict("m").status is Status.OK


@pytest.mark.parametrize(
    ("cap", "positions", "value", "breach"),
    [
        ("max_total_lots: 0.3", [("EURUSD", "buy", 0.1), ("GBPUSD", "sell", 0.2)], 0.3, False),
        ("max_total_lots: 0.3", [("EURUSD", "buy", 0.2), ("GBPUSD", "sell", 0.2)], 0.4, True),
        (
            "max_lots_per_symbol: 1.0",
            [("XAUUSD", "buy", 0.6), ("XAUUSD", "sell", 0.5), ("EURUSD", "buy", 0.9)],
            1.1,
            True,
        ),
        ("max_positions: 2", [("EURUSD", "buy", 1.0), ("EURUSD", "buy", 1.0)], 2.0, False),
        ("max_positions: 0", [("EURUSD", "buy", 0.01)], 1.0, True),
        ("max_positions: 0", [], 0.0, False),
    ],
)
def test_exposure_caps(
    cap: str, positions: list[tuple[str, Side, float]], value: float, breach: bool
) -> None:
    rule = one_rule(f"- {{name: x, kind: exposure, {cap}}}")
    verdict = evaluate([rule], snap(T0, equity=1.0, positions=positions), {}).verdict("x")
    assert verdict.value == pytest.approx(value)
    assert (verdict.status is Status.BREACH) == breach


def test_profit_target_progress_and_close_all_locks_a_passed_challenge() -> None:
    acc = Account(
        parse_rules(
            "- {name: pt, kind: profit_target, target: 10%, warn_at: [50%], action: close_all}"
        )
    )
    half = acc.at(T0, equity=105_000.0).verdict("pt")
    assert (half.used, half.warn_crossed, half.threshold) == (0.5, 0.5, 110_000.0)
    passed = acc.at(T0 + timedelta(minutes=1), equity=110_000.0).verdict("pt")
    assert Newly.LATCH in passed.newly
    assert acc.at(T0 + timedelta(minutes=2), equity=108_000.0).verdict("pt").status is (
        Status.LATCHED
    )


def test_stale_data_poll_and_tick_ages() -> None:
    rule = one_rule(
        "- {name: s, kind: stale_data, max_poll_age: 2m, max_tick_age: 30s, warn_at: [50%]}"
    )
    fresh = snap(T0, equity=1.0, last_poll_at=T0 - timedelta(seconds=30))
    assert evaluate([rule], fresh, {}).verdict("s").status is Status.OK
    old_poll = snap(T0, equity=1.0, last_poll_at=T0 - timedelta(minutes=3))
    verdict = evaluate([rule], old_poll, {}).verdict("s")
    assert (verdict.status, verdict.value, verdict.threshold) == (Status.BREACH, 180.0, 120.0)
    # Ticks only matter with positions open.
    no_ticks_flat = snap(T0, equity=1.0, last_tick_at=None)
    assert evaluate([rule], no_ticks_flat, {}).verdict("s").status is Status.OK
    no_ticks_open = snap(T0, equity=1.0, positions=[("EURUSD", "buy", 1.0)])
    assert evaluate([rule], no_ticks_open, {}).verdict("s").used == math.inf
    old_tick = snap(
        T0,
        equity=1.0,
        positions=[("EURUSD", "buy", 1.0)],
        last_tick_at=T0 - timedelta(seconds=45),
    )
    verdict = evaluate([rule], old_tick, {}).verdict("s")
    assert (verdict.status, verdict.value, verdict.threshold) == (Status.BREACH, 45.0, 30.0)
    assert not verdict.latched


# --- states and results ------------------------------------------------------------------


def test_states_change_only_when_something_changed() -> None:
    acc = max_loss(warn="[50%]")
    first = acc.at(T0, equity=99_000.0)
    assert first.changed == ("ml",)  # last_status recorded
    state = acc.state("ml")
    second = acc.at(T0 + timedelta(seconds=1), equity=98_000.0)
    assert second.changed == ()
    assert second.states["ml"] is state


def test_evaluation_reports_account_time_and_estimate() -> None:
    rule = one_rule("- {name: ml, kind: max_loss, limit: 10%}")
    result = evaluate([rule], snap(T0, equity=99_000.0, estimated=True), {})
    assert (result.account_id, result.at, result.estimated) == ("acc-1", T0, True)
    with pytest.raises(KeyError):
        result.verdict("nope")


def test_rule_state_round_trips_through_a_dict() -> None:
    state = RuleState(
        period_start=DAY,
        start_balance=100_000.0,
        start_equity=None,
        high_water=104_000.0,
        condition_since=T0,
        warned=0.8,
        last_status=Status.LATCHED,
        latched=True,
        latched_at=T0,
    )
    assert RuleState.from_dict(state.to_dict()) == state
    assert RuleState.from_dict({}) == INITIAL_STATE


def test_naive_snapshot_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        snap(T0.replace(tzinfo=None), equity=1.0)


def test_evaluation_is_fast_enough_for_every_tick() -> None:
    # About 5 us per rule on a developer machine; the bound leaves a wide margin for slow CI.
    rules = parse_rules(
        (RULES_DIR / "ftmo-2step.yaml").read_text() + (RULES_DIR / "margin-guard.yaml").read_text()
    )
    states = {r.name: roll_period(r, INITIAL_STATE, DAY, 100_000.0, 100_000.0) for r in rules}
    snapshots = [
        snap(
            T0 + timedelta(milliseconds=100 * i),
            equity=99_000.0 - i % 300,
            balance=100_000.0,
            margin=2_000.0,
            positions=[("EURUSD", "buy", 1.0)],
        )
        for i in range(2_000)
    ]
    started = time.perf_counter()
    for snapshot in snapshots:
        states = dict(evaluate(rules, snapshot, states).states)
    assert time.perf_counter() - started < 1.0
