"""Where the simulator's "now" comes from.

Every timestamp the simulator produces (quote times, open and close times) is read from one
injectable clock, so tests can create history at chosen times without waiting for them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware UTC ``datetime``."""


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


def _require_aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("clock times must be timezone-aware")
    return when.astimezone(UTC)


class ManualClock:
    """A clock that only moves when told to: ``ManualClock(start)()`` returns ``start``.

    Reads and writes are single attribute operations, so a test thread may move it while the
    server thread reads it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _require_aware(start) if start is not None else system_clock()

    def __call__(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (backwards is allowed: history is sorted by close time anyway)."""
        self._now = _require_aware(when)

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        """Move forward by ``seconds`` plus any ``timedelta`` keywords; returns the new time."""
        self._now = self._now + timedelta(seconds=seconds, **delta)
        return self._now
