"""Price triggers of one symbol (stop loss, take profit, pending entry), found in O(log n).

A tick must only cost work for the triggers it fires: benchmarks push thousands of ticks per
second through a book of thousands of positions. Each trigger watches the bid or the ask and
fires when that price is at or below (or at or above) its level; the four (price, direction)
combinations each keep a heap ordered so the trigger nearest to firing is on top. Removal is
lazy: a removed or re-armed key leaves a stale heap entry that is skipped when it surfaces.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, Literal, TypeVar

K = TypeVar("K", bound=Hashable)
PriceSide = Literal["bid", "ask"]

# (price side, fires at-or-below?) -> heap index
_HEAPS: dict[tuple[PriceSide, bool], int] = {
    ("bid", True): 0,
    ("bid", False): 1,
    ("ask", True): 2,
    ("ask", False): 3,
}


class TriggerBook(Generic[K]):
    """Triggers keyed by ``K``; arming a key again replaces its previous trigger."""

    def __init__(self) -> None:
        # Entries are (sort key, sequence, key). For at-or-below triggers the sort key is
        # -level so the highest level (first to be crossed by a falling price) is on top.
        self._heaps: list[list[tuple[float, int, K]]] = [[], [], [], []]
        self._live: dict[K, int] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def arm(self, key: K, level: float, price: PriceSide, below: bool) -> None:
        """Fire ``key`` once ``price`` is ``<= level`` (``below``) or ``>= level`` (not)."""
        seq = next(self._seq)
        self._live[key] = seq
        heap = self._heaps[_HEAPS[(price, below)]]
        heapq.heappush(heap, (-level if below else level, seq, key))
        if len(heap) > 64 and len(heap) > 4 * len(self._live):
            self._compact()

    def disarm(self, key: K) -> None:
        """Forget ``key`` (no error when it is not armed)."""
        self._live.pop(key, None)

    def fired(self, bid: float, ask: float) -> list[K]:
        """Remove and return every key whose condition holds at this bid/ask."""
        out: list[K] = []
        for (side, below), index in _HEAPS.items():
            heap = self._heaps[index]
            price = bid if side == "bid" else ask
            while heap:
                sort_key, seq, key = heap[0]
                if self._live.get(key) != seq:
                    heapq.heappop(heap)
                    continue
                level = -sort_key if below else sort_key
                if (price <= level) if below else (price >= level):
                    heapq.heappop(heap)
                    del self._live[key]
                    out.append(key)
                else:
                    break
        return out

    def _compact(self) -> None:
        for i, heap in enumerate(self._heaps):
            live = [e for e in heap if self._live.get(e[2]) == e[1]]
            heapq.heapify(live)
            self._heaps[i] = live
