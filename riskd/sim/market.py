"""The simulated market: one bid/ask per symbol, moved by a seeded random walk or by hand.

Prices are always rounded to the instrument's digits (from :mod:`riskd.instruments`), and the
ask is the bid plus the symbol's usual spread unless the caller says otherwise. The market only
holds prices; who reacts to a price change (broker triggers, stream subscribers) is wired up by
:class:`riskd.sim.simulator.Simulator`.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from riskd.instruments import Instrument, lookup
from riskd.sim.clock import Clock, system_clock
from riskd.sim.errors import SimError


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """How one symbol starts and moves: starting bid, usual spread and random-walk step (pips)."""

    symbol: str
    bid: float
    spread_pips: float
    step_pips: float = 0.5


DEFAULT_SPECS: tuple[SymbolSpec, ...] = (
    SymbolSpec("EURUSD", 1.0850, 0.8),
    SymbolSpec("GBPUSD", 1.2700, 1.0),
    SymbolSpec("USDJPY", 150.000, 1.0),
    SymbolSpec("USDCHF", 0.8800, 1.3),
    SymbolSpec("AUDUSD", 0.6600, 0.9),
    SymbolSpec("USDCAD", 1.3600, 1.3),
    SymbolSpec("NZDUSD", 0.6100, 1.4),
    SymbolSpec("EURGBP", 0.8550, 1.0),
    SymbolSpec("EURJPY", 162.750, 1.5),  # ~ EURUSD * USDJPY, so cross rates agree
    SymbolSpec("GBPJPY", 190.500, 2.2),
    SymbolSpec("XAUUSD", 2350.00, 3.0),  # pip 0.10: spread 0.30
    SymbolSpec("XAGUSD", 28.000, 2.5),  # pip 0.01: spread 0.025
    SymbolSpec("US30", 39000.00, 2.0),  # pip 1 point
    SymbolSpec("GER40", 18500.00, 1.5),  # quoted in EUR
)
"""The default symbol set: the common FX pairs, gold, silver, US30 and GER40."""

# Pull each price a little towards its start so a long demo or benchmark stays realistic.
_MEAN_REVERSION = 0.001


@dataclass(frozen=True, slots=True)
class Quote:
    """One price of one symbol at one time."""

    symbol: str
    bid: float
    ask: float
    time: datetime

    @property
    def mid(self) -> float:
        """``(bid + ask) / 2``."""
        return (self.bid + self.ask) / 2.0


@dataclass(slots=True)
class PriceScript:
    """A list of bids to play for one symbol, at ``interval`` seconds or stepped by hand (None)."""

    symbol: str
    bids: deque[float]
    interval: float | None = None


class Market:
    """Current quotes of a fixed set of symbols.

    Not thread-safe: it is owned by the simulator's event loop thread.
    """

    def __init__(
        self,
        specs: Iterable[SymbolSpec] = DEFAULT_SPECS,
        *,
        seed: int = 1,
        clock: Clock = system_clock,
    ) -> None:
        self._rng = random.Random(f"market:{seed}")
        self._clock = clock
        self._specs: dict[str, SymbolSpec] = {}
        self._instruments: dict[str, Instrument] = {}
        self._quotes: dict[str, Quote] = {}
        for spec in specs:
            inst = lookup(spec.symbol)
            if inst is None or inst.symbol != spec.symbol:
                raise ValueError(f"{spec.symbol} is not in riskd.instruments")
            self._specs[spec.symbol] = spec
            self._instruments[spec.symbol] = inst
            self._store(spec.symbol, spec.bid, None)
        self._symbols = tuple(self._specs)

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol this market quotes."""
        return self._symbols

    def has(self, symbol: str) -> bool:
        """True when this market quotes ``symbol`` (exact name)."""
        return symbol in self._quotes

    def instrument(self, symbol: str) -> Instrument:
        """The instrument table entry of ``symbol``; SimError when the market does not quote it."""
        inst = self._instruments.get(symbol)
        if inst is None:
            raise SimError(f"unknown symbol {symbol!r}")
        return inst

    def quote(self, symbol: str) -> Quote:
        """The current quote of ``symbol``; SimError when the market does not quote it."""
        quote = self._quotes.get(symbol)
        if quote is None:
            raise SimError(f"unknown symbol {symbol!r}")
        return quote

    def mid(self, symbol: str) -> float | None:
        """Current mid price, or None for a symbol not quoted here (a ``money.MidLookup``)."""
        quote = self._quotes.get(symbol)
        return None if quote is None else quote.mid

    def spread(self, symbol: str) -> float:
        """The symbol's usual spread in price units."""
        inst = self.instrument(symbol)
        return round(self._specs[symbol].spread_pips * inst.pip_size, inst.digits)

    def set_price(self, symbol: str, bid: float, ask: float | None = None) -> Quote:
        """Set a price; ``ask`` defaults to ``bid`` plus the usual spread. Returns the new quote.

        Only sane prices are accepted here (bid > 0, ask >= bid): broken ticks are a stream
        fault (see :mod:`riskd.sim.faults`), never a market state.
        """
        self.instrument(symbol)
        if not (math.isfinite(bid) and bid > 0):
            raise SimError(f"{symbol}: bid must be a positive number, got {bid!r}")
        if ask is not None and not (math.isfinite(ask) and ask >= bid):
            raise SimError(f"{symbol}: ask must be >= bid, got bid={bid!r} ask={ask!r}")
        return self._store(symbol, bid, ask)

    def random_tick(self, skip: Container[str] = ()) -> Quote | None:
        """Move one randomly chosen symbol (not in ``skip``) one random-walk step."""
        symbols: Sequence[str] = self._symbols
        if skip:
            symbols = [s for s in self._symbols if s not in skip]
            if not symbols:
                return None
        symbol = self._rng.choice(symbols)
        spec = self._specs[symbol]
        inst = self._instruments[symbol]
        bid = self._quotes[symbol].bid
        step = self._rng.gauss(0.0, spec.step_pips * inst.pip_size)
        new_bid = round(bid + step + _MEAN_REVERSION * (spec.bid - bid), inst.digits)
        if new_bid <= 0:
            new_bid = bid
        return self._store(symbol, new_bid, None)

    def _store(self, symbol: str, bid: float, ask: float | None) -> Quote:
        digits = self._instruments[symbol].digits
        bid = round(bid, digits)
        ask = round(bid + self.spread(symbol), digits) if ask is None else round(ask, digits)
        quote = Quote(symbol, bid, ask, self._clock())
        self._quotes[symbol] = quote
        return quote
