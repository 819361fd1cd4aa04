"""Exponential back-off with jitter, shared by REST retries and stream reconnects.

Hand-written rather than tenacity: the retry decisions here interleave ``Retry-After``, trade
return-code classes and look-before-retry for orders of unknown outcome, so each would need a
custom tenacity hook; the arithmetic left over is three lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delay before retry ``attempt`` (0-based): ``base * 2**attempt`` capped, times U(0.5, 1).

    "Equal jitter": never less than half the nominal delay, so a herd of clients spreads out
    without any of them retrying at once.
    """

    base: float = 0.25
    cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        nominal = min(self.cap, self.base * 2.0 ** min(attempt, 32))
        jitter: float = self.rng.random()
        return nominal * (0.5 + 0.5 * jitter)
