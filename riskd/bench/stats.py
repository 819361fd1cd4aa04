"""Small statistics for the benchmark: percentiles and distribution summaries (no numpy)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated between ranks.

    Same definition as numpy's default ("linear"): the minimum at 0, the maximum at 100.
    Raises ValueError on an empty sequence or ``q`` outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True, slots=True)
class Distribution:
    """Summary of a sample: count, mean, median, p99 and extremes (same unit as the input)."""

    count: int
    mean: float
    p50: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        """Summarise ``values``; ValueError when there are none."""
        data = sorted(values)
        if not data:
            raise ValueError("distribution of no values")
        return cls(
            count=len(data),
            mean=math.fsum(data) / len(data),
            p50=percentile(data, 50.0),
            p99=percentile(data, 99.0),
            min=data[0],
            max=data[-1],
        )

    def scaled(self, factor: float) -> Distribution:
        """The same distribution in another unit (e.g. seconds to milliseconds)."""
        return Distribution(
            self.count,
            self.mean * factor,
            self.p50 * factor,
            self.p99 * factor,
            self.min * factor,
            self.max * factor,
        )

    def to_json(self) -> dict[str, float]:
        """A JSON-ready dict (for the worker protocol)."""
        return {
            "count": self.count,
            "mean": self.mean,
            "p50": self.p50,
            "p99": self.p99,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_json(cls, data: dict[str, float]) -> Distribution:
        """Inverse of :meth:`to_json`."""
        return cls(
            count=int(data["count"]),
            mean=float(data["mean"]),
            p50=float(data["p50"]),
            p99=float(data["p99"]),
            min=float(data["min"]),
            max=float(data["max"]),
        )
