"""The firms' published worked examples, run through the shipped presets.

Sources (read 2026-11-25, cited in the preset headers):
- FTMO Maximum Daily Loss: https://academy.ftmo.com/lesson/maximum-daily-loss
- FTMO Maximum Loss: https://academy.ftmo.com/?p=47
- FTMO 1-Step Maximum Loss: https://ftmo.com/au/?p=1671
- The5ers High Stakes: https://help.the5ers.com/what-is-the-maximum-loss-and-the-maximum-daily-loss-in-the-high-stakes-program
"""

from __future__ import annotations

import pytest

from riskd.engine import Newly, Status, load_rule_file
from tests.engine.helpers import RULES_DIR, Account, utc

# Prague midnights in late November 2026 (CET, UTC+1): Monday 23rd starts at 22nd 23:00 UTC.
MONDAY = utc("2026-11-22 23:00")
TUESDAY = utc("2026-11-23 23:00")
WEDNESDAY = utc("2026-11-24 23:00")


def ftmo_2step(initial: float = 100_000.0) -> Account:
    return Account(load_rule_file(RULES_DIR / "ftmo-2step.yaml"), initial)


def test_ftmo_first_day_floor_is_initial_balance_minus_5_percent() -> None:
    # "On the first day, the account balance used for the calculation is the Initial
    # Simulated Capital": 100,000 - 5% of 100,000 = 95,000.
    acc = ftmo_2step()
    acc.roll(MONDAY, balance=100_000.0)
    daily = acc.at(utc("2026-11-23 09:00"), equity=95_000.01).verdict("ftmo-daily-loss")
    assert daily.threshold == 95_000.0
    assert daily.status is Status.WARN  # 99.9998% of the allowed loss used
    assert daily.headroom == pytest.approx(0.01)
    daily = acc.at(utc("2026-11-23 09:01"), equity=95_000.0).verdict("ftmo-daily-loss")
    assert daily.status is Status.BREACH
    assert daily.newly == Newly.BREACH | Newly.LATCH


def test_ftmo_day_that_starts_in_profit_moves_the_floor_up_by_the_profit() -> None:
    # Balance 102,000 at midnight: the limit is still 5% of the initial balance (5,000), so
    # the floor is 97,000: the limit "can increase and decrease depending on the balance".
    acc = ftmo_2step()
    acc.roll(TUESDAY, balance=102_000.0)
    daily = acc.at(utc("2026-11-24 10:00"), equity=97_500.0).verdict("ftmo-daily-loss")
    assert daily.threshold == 97_000.0
    assert daily.headroom == 500.0
    assert daily.used == pytest.approx(0.9)
    assert (
        acc.at(utc("2026-11-24 10:01"), equity=97_000.0).verdict("ftmo-daily-loss").status
        is Status.BREACH
    )


def test_ftmo_floating_profit_at_midnight_does_not_raise_the_baseline() -> None:
    # The baseline is the balance at midnight; open profit at that moment does not count.
    acc = ftmo_2step()
    acc.roll(TUESDAY, balance=100_000.0, equity=103_000.0)
    daily = acc.at(utc("2026-11-24 10:00"), equity=96_000.0).verdict("ftmo-daily-loss")
    assert daily.threshold == 95_000.0
    assert daily.status is Status.WARN  # 80% of the 5,000 used


def test_ftmo_200k_example_losing_streak_and_overnight_floating_loss() -> None:
    # The academy's $200,000 example: a daily limit of $10,000.
    acc = ftmo_2step(initial=200_000.0)
    acc.roll(MONDAY, balance=200_000.0)
    # A losing streak of -8,000: 2,000 left for the rest of the day.
    streak = acc.at(utc("2026-11-23 08:00"), equity=192_000.0, balance=192_000.0)
    assert streak.verdict("ftmo-daily-loss").headroom == 2_000.0

    # Another Monday: a closed profit of 4,000 leaves 14,000 of permitted loss for the day.
    acc = ftmo_2step(initial=200_000.0)
    acc.roll(MONDAY, balance=200_000.0)
    profit = acc.at(utc("2026-11-23 09:00"), equity=204_000.0, balance=204_000.0)
    assert profit.verdict("ftmo-daily-loss").headroom == 14_000.0
    # A new trade goes 13,000 into floating loss: still within the limit until midnight.
    late = acc.at(utc("2026-11-23 22:59"), equity=191_000.0, balance=204_000.0)
    assert late.verdict("ftmo-daily-loss").status is Status.WARN
    assert late.verdict("ftmo-daily-loss").headroom == 1_000.0
    # At midnight Prague the limit resets from the 204,000 balance: floor 194,000. Until the
    # monitor rolls the day the rule has no baseline (never a breach on stale numbers)...
    stale = acc.at(utc("2026-11-23 23:00"), equity=191_000.0, balance=204_000.0)
    assert stale.verdict("ftmo-daily-loss").status is Status.NO_BASELINE
    # ...and once it has, the 13,000 floating loss is beyond the new 10,000 limit.
    acc.roll(TUESDAY, balance=204_000.0, equity=191_000.0)
    after = acc.at(utc("2026-11-23 23:00:01"), equity=191_000.0, balance=204_000.0)
    verdict = after.verdict("ftmo-daily-loss")
    assert verdict.threshold == 194_000.0
    assert verdict.status is Status.BREACH
    assert Newly.LATCH in verdict.newly


def test_ftmo_max_loss_example_92000_balance_with_2001_floating_loss() -> None:
    # "Even if your balance would be $92,000, but you had a floating loss of $2,001, the
    # limit would be exceeded" (floor 90,000 on a 100,000 account).
    acc = ftmo_2step()
    acc.roll(MONDAY, balance=92_000.0)
    within = acc.at(utc("2026-11-23 10:00"), equity=92_000.0 - 1_999.0, balance=92_000.0)
    assert within.verdict("ftmo-max-loss").threshold == 90_000.0
    assert within.verdict("ftmo-max-loss").status is Status.WARN
    beyond = acc.at(utc("2026-11-23 10:01"), equity=92_000.0 - 2_001.0, balance=92_000.0)
    assert beyond.verdict("ftmo-max-loss").status is Status.BREACH
    assert beyond.locked_out


def test_ftmo_1step_max_loss_trails_the_highest_midnight_balance() -> None:
    # Day 1: 90,000. Midnight balance 104,000: 94,000. Midnight balance 103,000: still 94,000.
    acc = Account(load_rule_file(RULES_DIR / "ftmo-1step.yaml"))
    name = "ftmo-1step-max-loss"
    acc.roll(MONDAY, balance=100_000.0)
    assert acc.at(utc("2026-11-23 10:00"), equity=100_000.0).verdict(name).threshold == 90_000.0
    # Intraday equity does not move the limit ("intraday changes ... do not affect it").
    assert acc.at(utc("2026-11-23 15:00"), equity=108_000.0).verdict(name).threshold == 90_000.0
    acc.roll(TUESDAY, balance=104_000.0)
    assert acc.at(utc("2026-11-24 10:00"), equity=104_000.0).verdict(name).threshold == 94_000.0
    acc.roll(WEDNESDAY, balance=103_000.0)
    day3 = acc.at(utc("2026-11-25 10:00"), equity=103_000.0).verdict(name)
    assert day3.threshold == 94_000.0
    assert day3.headroom == 9_000.0


def test_ftmo_1step_max_loss_keeps_trailing_above_the_initial_balance() -> None:
    # FTMO names no lock level: "the limit can only increase".
    acc = Account(load_rule_file(RULES_DIR / "ftmo-1step.yaml"))
    acc.roll(TUESDAY, balance=115_000.0)
    verdict = acc.at(utc("2026-11-24 10:00"), equity=105_000.0).verdict("ftmo-1step-max-loss")
    assert verdict.threshold == 105_000.0
    assert verdict.status is Status.BREACH


def test_ftmo_1step_daily_loss_is_3_percent_of_initial() -> None:
    acc = Account(load_rule_file(RULES_DIR / "ftmo-1step.yaml"))
    acc.roll(TUESDAY, balance=104_000.0)
    verdict = acc.at(utc("2026-11-24 10:00"), equity=102_000.0).verdict("ftmo-1step-daily-loss")
    assert verdict.threshold == 101_000.0


def the5ers() -> Account:
    return Account(load_rule_file(RULES_DIR / "the5ers-high-stakes.yaml"))


# 17:00 New York on Monday 2026-11-23 (EST, UTC-5) is 22:00 UTC.
NY_MONDAY_CLOSE = utc("2026-11-23 22:00")


@pytest.mark.parametrize(
    ("start_balance", "start_equity", "floor"),
    [
        # Floating profit at the reset: the higher equity is the baseline, 5% of 101,000.
        (100_000.0, 101_000.0, 95_950.0),
        # Floating loss at the reset: the balance is higher, 5% of 100,000.
        (100_000.0, 99_000.0, 95_000.0),
        # No open positions: both the same.
        (102_000.0, 102_000.0, 96_900.0),
    ],
)
def test_the5ers_daily_loss_is_5_percent_of_the_higher_of_balance_and_equity(
    start_balance: float, start_equity: float, floor: float
) -> None:
    acc = the5ers()
    acc.roll(NY_MONDAY_CLOSE, balance=start_balance, equity=start_equity)
    verdict = acc.at(utc("2026-11-24 09:00"), equity=start_equity).verdict("the5ers-daily-loss")
    assert verdict.threshold == pytest.approx(floor)
    assert verdict.next_reset == utc("2026-11-24 22:00")


def test_the5ers_max_loss_is_static_10_percent() -> None:
    acc = the5ers()
    acc.roll(NY_MONDAY_CLOSE, balance=130_000.0)
    verdict = acc.at(utc("2026-11-24 09:00"), equity=125_000.0).verdict("the5ers-max-loss")
    assert verdict.threshold == 90_000.0


def test_the5ers_day_starts_at_new_york_close_in_us_summer_time_before_europe() -> None:
    # 2026-03-10: New York on EDT, Europe still on winter time. The5ers' day starts at
    # 17:00 EDT = 21:00 UTC (00:00 on a UTC+3 server clock), not at 22:00 UTC.
    acc = the5ers()
    rule = next(r for r in acc.rules if r.name == "the5ers-daily-loss")
    assert rule.clock is not None
    assert rule.clock.period_start(utc("2026-03-10 21:30")) == utc("2026-03-10 21:00")
    assert rule.clock.period_start(utc("2026-03-10 20:59")) == utc("2026-03-09 21:00")


def test_ftmo_day_across_prague_spring_forward_is_23_hours() -> None:
    # Sun 2026-03-29 starts at 00:00 CET (2026-03-28 23:00 UTC) and ends at 00:00 CEST
    # (2026-03-29 22:00 UTC).
    acc = ftmo_2step()
    acc.roll(utc("2026-03-28 23:00"), balance=100_000.0)
    sunday = acc.at(utc("2026-03-29 21:59"), equity=99_000.0).verdict("ftmo-daily-loss")
    assert sunday.status is Status.OK
    assert sunday.next_reset == utc("2026-03-29 22:00")
    monday = acc.at(utc("2026-03-29 22:00"), equity=99_000.0).verdict("ftmo-daily-loss")
    assert monday.status is Status.NO_BASELINE


def test_ftmo_day_across_prague_fall_back_is_25_hours() -> None:
    acc = ftmo_2step()
    acc.roll(utc("2026-10-24 22:00"), balance=100_000.0)
    late = acc.at(utc("2026-10-25 22:59"), equity=99_000.0).verdict("ftmo-daily-loss")
    assert late.status is Status.OK
    assert late.next_reset == utc("2026-10-25 23:00")


def test_the5ers_day_in_the_us_eu_mismatch_week_ends_at_21_utc() -> None:
    # 2026-03-10: New York on EDT, Prague on CET. The5ers' day (rolled at 17:00 EDT on the
    # 9th) ends at 21:00 UTC on the 10th, while FTMO's runs until 23:00 UTC.
    acc = the5ers()
    acc.roll(utc("2026-03-09 21:00"), balance=100_000.0)
    before = acc.at(utc("2026-03-10 20:59"), equity=99_000.0).verdict("the5ers-daily-loss")
    assert before.status is Status.OK
    assert before.next_reset == utc("2026-03-10 21:00")
    after = acc.at(utc("2026-03-10 21:00"), equity=99_000.0).verdict("the5ers-daily-loss")
    assert after.status is Status.NO_BASELINE
