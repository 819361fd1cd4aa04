"""What a trader writes in a rule file, parsed: amounts, percentages, durations, clock times.

Each parser takes the value YAML produced (a number or a string) and returns a plain Python
value or raises ``ValueError`` with a sentence a trader can act on. The pydantic schema wraps
them, so these messages are what ``riskd check-rules`` prints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_NUMBER = r"[-+]?(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)"
_PERCENT = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")
_PLAIN = re.compile(rf"^\s*({_NUMBER})\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_FIXED_OFFSET = re.compile(r"^(?:UTC|GMT)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Quantity:
    """An amount of account currency (``5000``) or a percentage (``5%``).

    ``value`` is the number as written: 5000.0 for ``5000``, 5.0 for ``5%``. Percentages are
    kept as written (not as 0.05) so ``value * base / 100`` is exact for whole numbers: a 5%
    limit of 100,000 is exactly 5,000.0, not 5,000.000000000001.
    """

    value: float
    percent: bool

    def of(self, base: float) -> float:
        """The amount this quantity is when percentages are of ``base``."""
        return self.value * base / 100.0 if self.percent else self.value

    def __str__(self) -> str:
        number = f"{self.value:g}"
        return f"{number}%" if self.percent else number


def parse_quantity(raw: object) -> Quantity:
    """``5000`` / ``2500.5`` / ``"5000"`` (an amount) or ``"5%"`` (a percentage)."""
    if isinstance(raw, bool):
        raise ValueError("expected an amount like 5000 or a percentage like 5%, found true/false")
    if isinstance(raw, int | float):
        return Quantity(_finite(float(raw)), percent=False)
    if isinstance(raw, str):
        match = _PERCENT.match(raw)
        if match:
            return Quantity(_finite(float(match.group(1).replace("_", ""))), percent=True)
        match = _PLAIN.match(raw)
        if match:
            return Quantity(_finite(float(match.group(1).replace("_", ""))), percent=False)
        if "," in raw:
            raise ValueError(
                f"write amounts without thousands separators, e.g. 5000 not {raw.strip()}"
            )
    raise ValueError("expected an amount like 5000 or a percentage like 5%")


def parse_fraction(raw: object) -> float:
    """A warn level: ``0.8`` or ``"80%"``, strictly between 0 and 1 (0% and 100%)."""
    if isinstance(raw, bool):
        raise ValueError("expected a fraction like 0.8 or a percentage like 80%")
    match = _PERCENT.match(raw) if isinstance(raw, str) else None
    if isinstance(raw, int | float):
        value = float(raw)
    elif match is not None:
        value = float(match.group(1).replace("_", "")) / 100.0
    else:
        raise ValueError("expected a fraction like 0.8 or a percentage like 80%")
    if not 0.0 < value < 1.0:
        raise ValueError(
            "a warning level is a share of the allowed loss strictly between 0 and 1 "
            "(e.g. 0.8 or 80%); at 1 (100%) the rule is breached, not warning"
        )
    return value


def parse_duration(raw: object) -> timedelta:
    """``0``, ``30s``, ``5m``, ``1h30m``, ``2d``, ``500ms``: Prometheus-style durations."""
    if isinstance(raw, bool):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    if isinstance(raw, int | float) and raw == 0:
        return timedelta(0)
    if isinstance(raw, int | float):
        raise ValueError(f"a duration needs a unit, e.g. {raw:g}s or {raw:g}m")
    if not isinstance(raw, str):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    text = raw.strip()
    if text == "0":
        return timedelta(0)
    pos = 0
    seconds = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"'{text}' is not a duration; write a number and a unit (ms, s, m, h, d, w), "
            "e.g. 30s, 5m, 1h30m"
        )
    return timedelta(seconds=seconds)


def parse_clock_time(raw: object) -> time:
    """``"00:00"``, ``"17:00"``, ``"23:59:30"``: a wall-clock time of day."""
    if isinstance(raw, time):
        return raw
    if not isinstance(raw, str):
        raise ValueError('expected a clock time in quotes, e.g. "00:00" or "17:00"')
    match = _CLOCK.match(raw)
    if not match:
        raise ValueError(f"'{raw}' is not a clock time; write HH:MM, e.g. \"00:00\"")
    hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"'{raw}' is not a clock time; hours go 00-23 and minutes 00-59")
    return time(hour, minute, second)


def parse_zone(raw: object) -> tzinfo:
    """An IANA zone (``Europe/Prague``, ``America/New_York``) or a fixed ``UTC+3``.

    IANA zones follow daylight saving time; ``UTC+3`` / ``GMT-5`` never change. ``UTC`` alone
    is UTC.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("expected a time zone such as Europe/Prague or America/New_York")
    name = raw.strip()
    if name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    match = _FIXED_OFFSET.match(name)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        hours, minutes = int(match.group(2)), int(match.group(3) or 0)
        if hours > 14 or minutes > 59:
            raise ValueError(f"'{name}' is not a valid UTC offset")
        offset = timedelta(hours=hours, minutes=minutes) * sign
        return timezone(offset, f"UTC{match.group(1)}{hours:02d}:{minutes:02d}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}'; use an IANA name such as Europe/Prague, "
            "America/New_York or Etc/UTC, or a fixed offset such as UTC+3"
        ) from None


def zone_name(zone: tzinfo) -> str:
    """The name a zone was written with (``Europe/Prague``, ``UTC+03:00``, ``UTC``)."""
    if isinstance(zone, ZoneInfo):
        return zone.key
    return str(zone) if zone is not UTC else "UTC"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value
