"""Reset clocks across DST: Prague, New York, the weeks they disagree, odd local times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskd.engine import ResetClock
from tests.engine.helpers import utc

PRAGUE = ZoneInfo("Europe/Prague")
NEW_YORK = ZoneInfo("America/New_York")
HELSINKI = ZoneInfo("Europe/Helsinki")

FTMO = ResetClock(time(0, 0), PRAGUE)
NY_CLOSE = ResetClock(time(17, 0), NEW_YORK)


@pytest.mark.parametrize(
    ("now", "start", "nxt"),
    [
        # Winter: midnight CET is 23:00 UTC the evening before.
        ("2026-01-15 12:00", "2026-01-14 23:00", "2026-01-15 23:00"),
        # Summer: midnight CEST is 22:00 UTC.
        ("2026-07-15 12:00", "2026-07-14 22:00", "2026-07-15 22:00"),
        # Just before and exactly at a reset.
        ("2026-07-15 21:59:59", "2026-07-14 22:00", "2026-07-15 22:00"),
        ("2026-07-15 22:00", "2026-07-15 22:00", "2026-07-16 22:00"),
        # Spring forward (Sun 2026-03-29, 02:00 CET -> 03:00 CEST): a 23-hour day.
        ("2026-03-29 12:00", "2026-03-28 23:00", "2026-03-29 22:00"),
        # Fall back (Sun 2026-10-25, 03:00 CEST -> 02:00 CET): a 25-hour day.
        ("2026-10-25 12:00", "2026-10-24 22:00", "2026-10-25 23:00"),
        ("2026-10-25 01:30", "2026-10-24 22:00", "2026-10-25 23:00"),
    ],
)
def test_ftmo_midnight_prague(now: str, start: str, nxt: str) -> None:
    assert FTMO.period_start(utc(now)) == utc(start)
    assert FTMO.next_reset(utc(now)) == utc(nxt)


def test_prague_dst_days_are_23_and_25_hours() -> None:
    spring = FTMO.next_reset(utc("2026-03-29 12:00")) - FTMO.period_start(utc("2026-03-29 12:00"))
    autumn = FTMO.next_reset(utc("2026-10-25 12:00")) - FTMO.period_start(utc("2026-10-25 12:00"))
    assert spring == timedelta(hours=23)
    assert autumn == timedelta(hours=25)


@pytest.mark.parametrize(
    ("now", "ny_start", "prague_start"),
    [
        # Both on winter time: New York close 22:00 UTC, Prague midnight 23:00 UTC.
        ("2026-03-06 23:30", "2026-03-06 22:00", "2026-03-06 23:00"),
        # US on summer time since Sun 2026-03-08, Europe not until 2026-03-29: the two clocks
        # are two hours apart for three weeks.
        ("2026-03-10 23:30", "2026-03-10 21:00", "2026-03-10 23:00"),
        ("2026-03-27 23:30", "2026-03-27 21:00", "2026-03-27 23:00"),
        # Both on summer time.
        ("2026-04-02 22:30", "2026-04-02 21:00", "2026-04-02 22:00"),
        # Europe back on winter time since 2026-10-25, the US not until 2026-11-01.
        ("2026-10-28 23:30", "2026-10-28 21:00", "2026-10-28 23:00"),
        # Both on winter time again.
        ("2026-11-03 23:30", "2026-11-03 22:00", "2026-11-03 23:00"),
    ],
)
def test_new_york_close_and_prague_in_the_weeks_us_and_eu_dst_differ(
    now: str, ny_start: str, prague_start: str
) -> None:
    assert NY_CLOSE.period_start(utc(now)) == utc(ny_start)
    assert FTMO.period_start(utc(now)) == utc(prague_start)


def test_ny_close_is_midnight_on_a_utc2_utc3_server_clock_all_year() -> None:
    # A "New York close" MT5 server shows 00:00 at 17:00 New York: UTC+2 in the US winter,
    # UTC+3 in the US summer. 17:00 America/New_York hits that every day.
    day = datetime(2026, 1, 1, tzinfo=UTC)
    while day.year == 2026:
        start = NY_CLOSE.period_start(day + timedelta(hours=23, minutes=59))
        dst = bool(start.astimezone(NEW_YORK).dst())
        server = start.astimezone(timezone(timedelta(hours=3 if dst else 2)))
        assert (server.hour, server.minute) == (0, 0)
        day += timedelta(days=1)


def test_a_european_broker_zone_would_be_an_hour_off_in_the_mismatch_weeks() -> None:
    # Why the5ers-high-stakes.yaml resets at 17:00 New York and not at 00:00 Europe/Helsinki:
    # they agree most of the year and differ while the US and Europe disagree on DST.
    helsinki = ResetClock(time(0, 0), HELSINKI)
    assert helsinki.period_start(utc("2026-07-10 23:00")) == NY_CLOSE.period_start(
        utc("2026-07-10 23:00")
    )
    mismatch = utc("2026-03-10 23:30")
    assert NY_CLOSE.period_start(mismatch) == utc("2026-03-10 21:00")
    assert helsinki.period_start(mismatch) == utc("2026-03-10 22:00")


def test_reset_time_skipped_by_spring_forward_starts_the_day_when_clocks_jump() -> None:
    # 02:30 does not exist in Prague on 2026-03-29 (02:00 CET jumps to 03:00 CEST = 01:00 UTC).
    clock = ResetClock(time(2, 30), PRAGUE)
    assert clock.reset_on(datetime(2026, 3, 29).date()) == utc("2026-03-29 01:00")
    assert clock.period_start(utc("2026-03-29 00:59:59")) == utc("2026-03-28 01:30")
    assert clock.next_reset(utc("2026-03-29 00:59:59")) == utc("2026-03-29 01:00")
    assert clock.period_start(utc("2026-03-29 01:00")) == utc("2026-03-29 01:00")
    assert clock.next_reset(utc("2026-03-29 01:00")) == utc("2026-03-30 00:30")


def test_midnight_skipped_by_spring_forward() -> None:
    # America/Santiago springs forward at 00:00 (-> 01:00) on Sun 2026-09-06.
    clock = ResetClock(time(0, 0), ZoneInfo("America/Santiago"))
    assert clock.reset_on(datetime(2026, 9, 6).date()) == utc("2026-09-06 04:00")
    assert clock.period_start(utc("2026-09-06 12:00")) == utc("2026-09-06 04:00")
    assert clock.period_start(utc("2026-09-06 03:59")) == utc("2026-09-05 04:00")


def test_reset_time_repeated_by_fall_back_starts_the_day_once_at_the_first() -> None:
    # 02:30 happens twice in Prague on 2026-10-25: 00:30 UTC (CEST) and 01:30 UTC (CET).
    clock = ResetClock(time(2, 30), PRAGUE)
    assert clock.period_start(utc("2026-10-25 00:30")) == utc("2026-10-25 00:30")
    assert clock.period_start(utc("2026-10-25 01:30")) == utc("2026-10-25 00:30")
    assert clock.next_reset(utc("2026-10-25 01:45")) == utc("2026-10-26 01:30")


def test_fixed_offset_zone_never_moves() -> None:
    clock = ResetClock(time(0, 0), timezone(timedelta(hours=3)))
    assert clock.period_start(utc("2026-01-15 12:00")) == utc("2026-01-14 21:00")
    assert clock.period_start(utc("2026-07-15 12:00")) == utc("2026-07-14 21:00")


def test_cache_does_not_change_answers_when_time_goes_backwards() -> None:
    clock = ResetClock(time(0, 0), PRAGUE)
    assert clock.period_start(utc("2026-07-15 12:00")) == utc("2026-07-14 22:00")
    assert clock.period_start(utc("2026-01-15 12:00")) == utc("2026-01-14 23:00")
    assert clock.period_start(utc("2026-07-15 12:00")) == utc("2026-07-14 22:00")


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ResetClock(time(0, 0), PRAGUE).period_start(datetime(2026, 1, 1))


ZONES = ["Europe/Prague", "America/New_York", "America/Santiago", "Australia/Lord_Howe", "UTC"]


@given(
    seconds=st.integers(min_value=0, max_value=7 * 365 * 86400),
    zone=st.sampled_from(ZONES),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
)
def test_period_contains_now_and_is_about_a_day(
    seconds: int, zone: str, hour: int, minute: int
) -> None:
    clock = ResetClock(time(hour, minute), ZoneInfo(zone))
    now = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    start, nxt = clock.period_start(now), clock.next_reset(now)
    assert start <= now < nxt
    assert timedelta(hours=22) <= nxt - start <= timedelta(hours=26)
    # The next period starts where this one ends, and nothing starts in between.
    fresh = ResetClock(time(hour, minute), ZoneInfo(zone))
    assert fresh.period_start(nxt) == nxt
    assert fresh.period_start(nxt - timedelta(microseconds=1)) == start
    # A reset that exists lands on the configured wall-clock time.
    local = start.astimezone(ZoneInfo(zone))
    if (local.hour, local.minute) != (hour, minute):
        # Only a skipped time may move, and then to the instant the clocks jumped.
        before = start - timedelta(seconds=1)
        assert before.astimezone(ZoneInfo(zone)).utcoffset() != local.utcoffset()
