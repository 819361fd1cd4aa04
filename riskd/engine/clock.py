"""Reset clocks: when a trading day starts, as UTC instants, correct across DST changes.

A prop firm's day starts at a wall-clock time in a zone: FTMO at midnight Europe/Prague
(CET in winter, CEST in summer), a New-York-close broker at 17:00 America/New_York (which is
00:00 on the broker's "GMT+2/GMT+3" server clock). The UTC instant of that wall-clock time
moves twice a year, and on different dates in Europe and the US, so it is computed with
``zoneinfo`` from the zone's rules, never from a fixed offset.

Two wall-clock times need a definition:

- **A reset time that does not exist** (it falls in the hour skipped when clocks go forward,
  e.g. 02:30 Europe/Prague on the last Sunday of March, or 00:00 America/Santiago on its
  spring-forward day): the day starts **at the moment the clocks jump** (the first instant
  that exists after the skipped time; 01:00 UTC for Prague, 04:00 UTC for Santiago). That is
  when a wall clock passes the reset time.
- **A reset time that happens twice** (it falls in the hour repeated when clocks go back, e.g.
  02:30 Europe/Prague on the last Sunday of October): the day starts at the **first** of the
  two instants. The second does not start another day: there is one reset per calendar date.

Midnight in Europe/Prague and 17:00 in America/New_York are never skipped or repeated (their
changes happen at 02:00/03:00), so the firms' clocks are unaffected; the rules exist for any
zone and time a person configures.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from riskd.engine.units import zone_name

_SECOND = timedelta(seconds=1)


class ResetClock:
    """A daily reset at wall-clock ``at`` in ``zone``.

    ``period_start(now)`` and ``next_reset(now)`` take and return aware UTC datetimes. The
    last answer is cached (the engine asks on every tick and the answer changes once a day);
    the cache does not change any result, so the clock behaves as a pure function.
    """

    __slots__ = ("_span", "at", "zone")

    def __init__(self, at: time, zone: tzinfo) -> None:
        self.at = at
        self.zone = zone
        # (period start, next reset) of the last answer, replaced in one assignment so a
        # reader never sees the start of one period with the end of another.
        self._span: tuple[datetime, datetime] | None = None

    def __repr__(self) -> str:
        return f"ResetClock(at={self.at.isoformat('minutes')!r}, zone={zone_name(self.zone)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResetClock):
            return NotImplemented
        return self.at == other.at and zone_name(self.zone) == zone_name(other.zone)

    def __hash__(self) -> int:
        return hash((self.at, zone_name(self.zone)))

    def describe(self) -> str:
        """``00:00 Europe/Prague``."""
        return f"{self.at.isoformat('minutes')} {zone_name(self.zone)}"

    def period_start(self, now: datetime) -> datetime:
        """The UTC instant of the latest reset at or before ``now`` (an aware datetime)."""
        return self._refresh(now)[0]

    def next_reset(self, now: datetime) -> datetime:
        """The UTC instant of the first reset strictly after ``now`` (an aware datetime)."""
        return self._refresh(now)[1]

    def reset_on(self, day: date) -> datetime:
        """The UTC instant at which the day ``day`` (a local calendar date) starts."""
        naive = datetime.combine(day, self.at)
        first = naive.replace(tzinfo=self.zone, fold=0)
        instant = first.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == naive:
            # Exists; for a repeated time fold=0 is the first occurrence, as documented.
            return instant
        return self._gap_end(naive)

    def _refresh(self, now: datetime) -> tuple[datetime, datetime]:
        span = self._span
        if span is not None and span[0] <= now < span[1]:
            return span
        if now.tzinfo is None:
            raise ValueError("reset clocks need an aware datetime (UTC), got a naive one")
        local_day = now.astimezone(self.zone).date()
        # Walk back from the local date until a reset is at or before now. One step is the
        # usual case (before the reset time today); more only for zones that skipped a date.
        day = local_day
        start = self.reset_on(day)
        while start > now:
            day -= timedelta(days=1)
            start = self.reset_on(day)
        nxt = self.reset_on(day + timedelta(days=1))
        while nxt <= now:  # cannot happen for real zones; kept so the result is always right
            day += timedelta(days=1)
            start, nxt = nxt, self.reset_on(day + timedelta(days=1))
        while nxt <= start:  # a date whose reset coincides with the previous one (a skipped day)
            day += timedelta(days=1)
            nxt = self.reset_on(day + timedelta(days=1))
        self._span = (start, nxt)
        return self._span

    def _gap_end(self, naive: datetime) -> datetime:
        """The instant the clocks jumped over the nonexistent local time ``naive``.

        With fold=0 a skipped time maps through the offset before the jump and fold=1 through
        the offset after it; the jump lies between the two instants. Binary search on whole
        seconds (transitions are on whole seconds in the tz database).
        """
        before = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        after = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        low, high = min(before, after), max(before, after)
        low_offset = low.astimezone(self.zone).utcoffset()
        while high - low > _SECOND:
            mid = low + (high - low) // 2
            mid = mid.replace(microsecond=0)
            if mid.astimezone(self.zone).utcoffset() == low_offset:
                low = mid
            else:
                high = mid
        return high
