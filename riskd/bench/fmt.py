"""Number formatting shared by the figures."""

from __future__ import annotations


def rate(per_second: float) -> str:
    """``12,345/s``."""
    return f"{per_second:,.0f}/s"


def ms(seconds: float) -> str:
    """Seconds as milliseconds with sensible precision: ``0.042 ms``, ``3.1 ms``, ``250 ms``."""
    value = seconds * 1000.0
    if value < 1.0:
        return f"{value:.3f} ms"
    if value < 10.0:
        return f"{value:.1f} ms"
    return f"{value:,.0f} ms"


def secs(seconds: float) -> str:
    """``5.02 s``."""
    return f"{seconds:.2f} s"


def pct(fraction: float) -> str:
    """A fraction as a percentage with four decimals: ``0.0012%``."""
    return f"{fraction * 100.0:.4f}%"
