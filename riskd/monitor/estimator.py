"""Real-time equity of one account between polls: a pure, anchor-relative estimator.

Each poll *anchors* the estimate (:meth:`EquityEstimator.anchor`); each tick moves it
(:meth:`EquityEstimator.on_tick`). Nothing here does I/O or reads a clock: times are arguments.

The arithmetic is the wire spec's ("Money arithmetic", :mod:`riskd.money`). With ``P_i`` the
floating profit of position ``i`` in the account currency (buys valued at the bid, sells at the
ask, converted at the quote-to-account rate from current mids)::

    estimate = polled_equity + sum_i (P_i(now) - P_i(anchor))

which equals ``balance + credit + sum_i (estimated profit_i + swap_i + commission_i)`` whenever
the poll itself obeys that identity, and equals the polled equity *exactly* right after every
anchor, whatever the poll says: the poll is the truth and ticks only move it. ``P_i(anchor)`` is
taken at the price the broker valued the position at (the poll's ``currentPrice``; the latest
accepted tick when the poll has none) and at the conversion rate known at the anchor. A
position whose prices are not known yet is valued from the poll alone (it does not move) until
they arrive; from then on it moves by ``P_i(now) - P_i(first priced)``.

Contract sizes come from :mod:`riskd.instruments` unless the account overrides them, and are
checked against every poll that carries the broker's valuation price (``currentPrice``), at the
anchor or, when the conversion rate is not known yet, on the tick that brings it: when the
formula's profit at the polled price differs from the polled profit by more than the tolerance
(:class:`Tolerance`), the contract size is re-derived from the poll (``polled profit / (profit
per unit of size at the polled price)``), remembered for the symbol (later positions and polls
start from it), and counted (``rederived``). That is what catches a broker whose GER40 lot is 25
contracts, not 1. Instruments missing from the table get a value per point from the poll.

Per tick the work is proportional to the positions on the tick's symbol plus the positions whose
conversion rate depends on it; the wiring (which tick touches what) is built once per anchor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Final, Literal

from riskd.api2trade.models import AccountSummary, Position, Quote
from riskd.instruments import INSTRUMENTS, lookup, normalize_symbol
from riskd.money import conversion_rate, margin_level, profit_in_quote
from riskd.monitor.tickfilter import TickFilter

SizeSource = Literal["table", "override", "learned", "poll", "none"]
"""Where a position's contract size came from.

``table``: :mod:`riskd.instruments`; ``override``: the account's configuration; ``learned``:
re-derived from a poll that disagreed with the formula; ``poll``: the instrument or its
conversion is unknown, so a value per point in the account currency was derived from the poll
(no conversion moves it); ``none``: not valued from ticks at all (only from polls).
"""

ESTIMATOR_COUNTERS: Final[tuple[str, ...]] = ("rederived", "unexplained", "poll_valued")
"""Keys of :attr:`EquityEstimator.counters`.

- ``rederived``: a position's contract size was re-derived from a poll (tolerance exceeded).
- ``unexplained``: the poll disagreed with the formula but no positive contract size explains
  it (e.g. the profit has the other sign); the position keeps its size. Counted per position
  and anchor, so a steady rate means a steady disagreement.
- ``poll_valued``: a position of an unknown instrument (or with no conversion route) was given
  a value per point derived from the poll.
"""


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far the formula's profit may be from the polled profit before re-deriving.

    A position is re-derived when ``|formula - polled| > max(absolute, relative * magnitude)``
    where ``magnitude = max(|formula|, |polled|)``: the money value of the price move since the
    open, as either side sees it (symmetric, so a contract size 10x too big and one 10x too
    small are judged alike). ``relative`` absorbs conversion-rate drift between the poll and
    the anchor and the broker's bid/ask choice for conversions; ``absolute`` (account currency
    units) absorbs cent rounding, and keeps a position near its open price (where the relative
    part is tiny) from being re-derived from noise.
    """

    relative: float = 0.005
    absolute: float = 1.0

    def __post_init__(self) -> None:
        if not (self.relative >= 0 and self.absolute >= 0):
            raise ValueError("tolerances must not be negative")


@dataclass(frozen=True, slots=True)
class PositionEstimate:
    """One position as the estimator values it now (for the status page).

    ``profit`` is the estimated floating profit in the account currency, without swap and
    commission (``swap_commission``, from the last poll). ``priced`` is False while the
    position is valued from the poll alone.
    """

    ticket: int
    symbol: str
    side: str
    volume: float
    open_price: float
    profit: float
    polled_profit: float
    swap_commission: float
    contract_size: float | None
    size_source: SizeSource
    priced: bool


class _Conv:
    """The quote-to-account rate of one quote currency, shared by its positions."""

    __slots__ = ("deps", "quote", "rate", "routable")

    def __init__(
        self, quote: str, rate: float | None, deps: tuple[str, ...], routable: bool
    ) -> None:
        self.quote = quote  # "" for a fixed rate (values per point already in account currency)
        self.rate = rate
        self.deps = deps  # canonical symbols whose mid can change the rate
        self.routable = routable  # False: no table symbols convert it; the rate stays None


class _Pos:
    """One position's valuation state; mutable, updated in place on the tick path."""

    __slots__ = (
        "canon",
        "close",
        "conv",
        "fixed",
        "open",
        "p_ref",
        "polled",
        "profit",
        "ref",
        "side",
        "size",
        "source",
        "symbol",
        "ticket",
        "unchecked",
        "volume",
    )

    def __init__(
        self, p: Position, canon: str, size: float | None, source: SizeSource, conv: _Conv
    ) -> None:
        self.ticket = p.ticket
        self.symbol = p.symbol
        self.canon = canon
        self.side: str = p.order_type
        self.volume = p.volume
        self.open = p.open_price
        self.size = size
        self.source: SizeSource = source
        self.conv = conv
        self.polled = p.profit
        self.fixed = p.swap + (p.commission or 0.0)
        self.profit = p.profit  # the estimate; equals the poll at the anchor
        self.ref: float | None = None  # close-side price P_i(anchor) is taken at
        self.close: float | None = None  # latest close-side price (bid for buys, ask for sells)
        self.p_ref: float | None = None  # P_i at the reference; None until priced
        self.unchecked = False  # the size still awaits its cross-check against the poll


class _Route:
    """What a tick of one (broker-named) symbol touches. Kept across anchors with its price."""

    __slots__ = ("affected", "ask", "bid", "canon", "convs", "own", "symbol")

    def __init__(self, symbol: str, canon: str) -> None:
        self.symbol = symbol
        self.canon = canon
        self.bid: float | None = None
        self.ask: float | None = None
        self.own: list[_Pos] = []  # positions on this symbol
        self.convs: list[_Conv] = []  # conversion rates that depend on this symbol
        self.affected: list[_Pos] = []  # own + positions of those rates, each once


_FIXED_RATE = 1.0


@lru_cache(maxsize=256)
def _conversion_symbols(quote: str, account: str) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """Symbols a ``quote`` -> ``account`` conversion uses: (the route to subscribe, all it may use).

    Traced by running :func:`riskd.money.conversion_rate` itself over the instrument table, so
    the symbols are exactly the ones it would look up. The first element is the route taken
    when every table symbol has a price (empty for the account currency itself, None when no
    route exists); the second every table symbol it may consult when some prices are missing.
    """
    used: list[str] = []

    def priced(symbol: str) -> float | None:
        if symbol in INSTRUMENTS:
            used.append(symbol)
            return 1.0
        return None

    route: tuple[str, ...] | None = None
    if conversion_rate(quote, account, priced) is not None:
        route = tuple(dict.fromkeys(used))
    consulted: list[str] = []

    def unpriced(symbol: str) -> float | None:
        if symbol in INSTRUMENTS:
            consulted.append(symbol)
        return None

    conversion_rate(quote, account, unpriced)
    return route, tuple(dict.fromkeys(consulted))


def _suffix(raw: str, canon: str) -> str:
    """The broker's suffix on a symbol (``.a`` of ``EURUSD.a``), to name conversion symbols."""
    return raw[len(canon) :] if raw.upper().startswith(canon) else ""


class EquityEstimator:
    """Tick-by-tick equity estimate of ONE account, anchored on each poll.

    ``contract_sizes`` overrides the instrument table per symbol (broker suffixes ignored:
    ``GER40.cash`` overrides ``GER40``). ``tick_filter`` is owned by this estimator (it forgets
    symbols the account stops watching); by default one with the default thresholds.
    """

    def __init__(
        self,
        *,
        contract_sizes: Mapping[str, float] | None = None,
        tick_filter: TickFilter | None = None,
        tolerance: Tolerance | None = None,
    ) -> None:
        overrides: dict[str, float] = {}
        for symbol, size in (contract_sizes or {}).items():
            if not (math.isfinite(size) and size > 0):
                raise ValueError(f"contract size of {symbol} must be positive, got {size!r}")
            overrides[normalize_symbol(symbol)] = float(size)
        self._overrides = overrides
        self._learned: dict[str, float] = {}
        self._filter = tick_filter if tick_filter is not None else TickFilter()
        self._tolerance = tolerance if tolerance is not None else Tolerance()
        self._counters: dict[str, int] = dict.fromkeys(ESTIMATOR_COUNTERS, 0)
        self._mids: dict[str, float] = {}  # canonical symbol -> latest accepted mid
        self._mid = self._mids.get  # the MidLookup handed to money.conversion_rate
        self._routes: dict[str, _Route] = {}  # broker symbol -> route
        self._positions: list[_Pos] = []
        self._needed: frozenset[str] = frozenset()
        self._currency = ""
        self._summary: AccountSummary | None = None
        self._margin = 0.0
        self._equity: float | None = None
        self._anchored_at: datetime | None = None
        self._estimated_at: datetime | None = None

    # -- read side --------------------------------------------------------------------------

    @property
    def equity(self) -> float | None:
        """The estimated equity in the account currency; None before the first anchor."""
        return self._equity

    @property
    def estimated_at(self) -> datetime | None:
        """When the estimate last changed: the anchor's ``at`` or the ``now`` of a tick."""
        return self._estimated_at

    @property
    def anchored_at(self) -> datetime | None:
        """The ``at`` of the last anchor."""
        return self._anchored_at

    @property
    def summary(self) -> AccountSummary | None:
        """The summary of the last anchor (polled equity, balance, credit, margin...)."""
        return self._summary

    @property
    def polled_equity(self) -> float | None:
        """Equity of the last poll (what the estimate was anchored to)."""
        return None if self._summary is None else self._summary.equity

    @property
    def balance(self) -> float | None:
        """Balance of the last poll (it only changes when a position closes: a poll sees it)."""
        return None if self._summary is None else self._summary.balance

    @property
    def credit(self) -> float:
        """Credit of the last poll (0 when the poll has none)."""
        return 0.0 if self._summary is None else self._summary.credit or 0.0

    @property
    def currency(self) -> str:
        """The account currency of the last anchor ("" before it)."""
        return self._currency

    @property
    def margin(self) -> float:
        """Margin in use from the last poll (``equity - free_margin`` when it has no margin)."""
        return self._margin

    @property
    def margin_level(self) -> float:
        """``estimated equity / polled margin * 100``; 0 when no margin is used (MetaTrader's)."""
        if self._equity is None:
            return 0.0
        return margin_level(self._equity, self._margin)

    @property
    def counters(self) -> Mapping[str, int]:
        """Valuation events by name (:data:`ESTIMATOR_COUNTERS`); a live read-only view."""
        return self._counters

    @property
    def tick_filter(self) -> TickFilter:
        """The filter :meth:`on_tick` applies (its ``dropped`` counts bad ticks by reason)."""
        return self._filter

    @property
    def learned_contract_sizes(self) -> Mapping[str, float]:
        """Contract sizes re-derived from polls, by canonical symbol (used from then on)."""
        return self._learned

    def symbols_needed(self) -> set[str]:
        """Broker symbols to subscribe: the positions' plus those their conversions need.

        A USD account with EURJPY needs USDJPY; a EUR account with XAUUSD needs EURUSD.
        Conversion symbols carry the broker suffix of the position that needs them.
        """
        return set(self._needed)

    def position_profit(self, ticket: int) -> float | None:
        """Estimated floating profit of one position (account currency), None if not held."""
        for p in self._positions:
            if p.ticket == ticket:
                return p.profit
        return None

    def positions(self) -> list[PositionEstimate]:
        """Every position of the last anchor as valued now (allocates; for display)."""
        return [
            PositionEstimate(
                ticket=p.ticket,
                symbol=p.symbol,
                side=p.side,
                volume=p.volume,
                open_price=p.open,
                profit=p.profit,
                polled_profit=p.polled,
                swap_commission=p.fixed,
                contract_size=p.size,
                size_source=p.source,
                priced=p.p_ref is not None,
            )
            for p in self._positions
        ]

    # -- anchoring --------------------------------------------------------------------------

    def anchor(
        self,
        summary: AccountSummary,
        positions: Sequence[Position],
        at: datetime,
        quotes: Iterable[Quote] | None = None,
    ) -> float:
        """Re-anchor on a poll; returns the estimate, which is ``summary.equity`` exactly.

        ``positions`` must be the account's open positions from the same poll. ``quotes``
        (optional) are REST quotes taken with it: they become the prices (and the tick
        filter's reference) of the symbols they name, unless a newer tick was accepted.
        """
        currency = summary.currency.upper()
        self._currency = currency
        self._summary = summary
        self._margin = summary.margin_in_use

        # Which symbols this account watches, and under which broker names.
        plans: list[tuple[Position, str, str]] = []  # (position, canonical symbol, suffix)
        suffix_of_quote: dict[str, str] = {}
        for p in positions:
            canon = normalize_symbol(p.symbol)
            suffix = _suffix(p.symbol, canon)
            plans.append((p, canon, suffix))
            inst = lookup(p.symbol)
            if inst is not None:
                suffix_of_quote.setdefault(inst.quote, suffix)
        routes: dict[str, _Route] = {}
        by_canon: dict[str, _Route] = {}
        needed: set[str] = set()
        for p, canon, _ in plans:
            route = self._route(routes, p.symbol, canon)
            by_canon.setdefault(canon, route)
            needed.add(p.symbol)
        convs: dict[str, _Conv] = {}
        for quote, suffix in suffix_of_quote.items():
            preferred, consulted = _conversion_symbols(quote, currency)
            convs[quote] = _Conv(quote, None, consulted, preferred is not None)
            for canon in consulted:
                dep = by_canon.get(canon)
                if dep is None:
                    dep = self._route(routes, canon + suffix, canon)
                    by_canon[canon] = dep
                if preferred is not None and canon in preferred:
                    needed.add(dep.symbol)
        for symbol in self._routes.keys() - routes.keys():
            self._filter.forget(symbol)
        for canon in self._mids.keys() - by_canon.keys():
            del self._mids[canon]
        self._routes = routes
        self._needed = frozenset(needed)

        for q in quotes or ():
            self._take_quote(q, by_canon)

        # Conversion rates at the anchor, one shared object per quote currency.
        for conv in convs.values():
            conv.rate = conversion_rate(conv.quote, currency, self._mid)
        fixed = _Conv("", _FIXED_RATE, (), True)
        self._positions = [self._value(p, canon, convs, fixed) for p, canon, _ in plans]

        # Wire routes: own positions, dependent rates, and the positions a tick revalues.
        for pos in self._positions:
            routes[pos.symbol].own.append(pos)
        for conv in convs.values():
            for canon in conv.deps:
                by_canon[canon].convs.append(conv)
        for route in routes.values():
            affected = dict.fromkeys(route.own)
            for pos in self._positions:
                if pos.conv in route.convs:
                    affected[pos] = None
            route.affected = list(affected)

        self._equity = summary.equity
        self._anchored_at = at
        self._estimated_at = at
        return summary.equity

    def _route(self, routes: dict[str, _Route], symbol: str, canon: str) -> _Route:
        """The route of ``symbol`` for the new anchor, keeping its last price when it had one."""
        route = routes.get(symbol)
        if route is None:
            old = self._routes.get(symbol)
            route = _Route(symbol, canon)
            if old is not None:
                route.bid, route.ask = old.bid, old.ask
            routes[symbol] = route
        return route

    def _take_quote(self, q: Quote, by_canon: Mapping[str, _Route]) -> None:
        route = self._routes.get(q.symbol) or by_canon.get(normalize_symbol(q.symbol))
        if route is None:
            return
        if q.time is None and route.bid is not None:
            return  # an undated quote is only better than nothing
        if self._filter.seed(route.symbol, q.bid, q.ask, q.time):
            route.bid, route.ask = q.bid, q.ask
            self._mids[route.canon] = (q.bid + q.ask) * 0.5

    def _value(self, p: Position, canon: str, convs: Mapping[str, _Conv], fixed: _Conv) -> _Pos:
        """The valuation state of one polled position, cross-checked against the poll."""
        inst = lookup(p.symbol)
        conv = convs.get(inst.quote) if inst is not None else None
        route = self._routes[p.symbol]
        cp = p.current_price if p.current_price is not None and p.current_price > 0 else None
        if p.volume <= 0 or p.open_price <= 0:
            return _Pos(p, canon, None, "none", fixed)  # nothing sane to value from
        if inst is None or conv is None or not conv.routable:
            # Unknown instrument, or no conversion route: a value per point in the account
            # currency derived from the poll, with a fixed rate.
            size = self._size_from_poll(p.order_type, p.open_price, p.volume, p.profit, cp, 1.0)
            if size is None:
                return _Pos(p, canon, None, "none", fixed)
            self._counters["poll_valued"] += 1
            pos = _Pos(p, canon, size, "poll", fixed)
            self._set_reference(pos, cp)
            return pos

        learned = self._learned.get(canon)
        override = self._overrides.get(canon)
        if learned is not None:
            pos = _Pos(p, canon, learned, "learned", conv)
        elif override is not None:
            pos = _Pos(p, canon, override, "override", conv)
        else:
            pos = _Pos(p, canon, inst.contract_size, "table", conv)
        # Only the broker's own valuation price can check the size: a tick price may be newer
        # than the poll, and one pip on a lot is already more than the tolerance.
        pos.unchecked = cp is not None
        if cp is None and route.bid is not None and route.ask is not None:
            cp = route.bid if p.order_type == "buy" else route.ask
        self._set_reference(pos, cp)
        return pos

    def _check(self, pos: _Pos, rate: float) -> None:
        """Cross-check the position's size against its poll at ``rate``; re-derive if off.

        Runs once per position and anchor, as soon as the conversion rate is known: at the
        anchor, or on the tick that brings the rate.
        """
        pos.unchecked = False
        ref, size = pos.ref, pos.size
        if ref is None or size is None:
            return
        learned = self._learned.get(pos.canon)
        if learned is not None and learned != size:
            # Another position of the symbol re-derived it since this one was anchored.
            size, pos.size, pos.source = learned, learned, "learned"
        formula = profit_in_quote(pos.side, pos.open, ref, ref, pos.volume, size) * rate
        magnitude = max(abs(formula), abs(pos.polled))
        if abs(formula - pos.polled) <= max(
            self._tolerance.absolute, self._tolerance.relative * magnitude
        ):
            return
        derived = self._size_from_poll(pos.side, pos.open, pos.volume, pos.polled, ref, rate)
        if derived is None:
            self._counters["unexplained"] += 1
            return
        pos.size, pos.source = derived, "learned"
        self._learned[pos.canon] = derived
        self._counters["rederived"] += 1

    @staticmethod
    def _size_from_poll(
        side: str, open_price: float, volume: float, profit: float, price: float | None, rate: float
    ) -> float | None:
        """The contract size that makes the formula give the polled profit (None: none does)."""
        if price is None:
            return None
        per_unit = profit_in_quote(side, open_price, price, price, volume, 1.0) * rate
        if per_unit == 0.0:
            return None  # at the open price the poll says nothing about the size
        size = profit / per_unit
        return size if math.isfinite(size) and size > 0 else None

    def _set_reference(self, pos: _Pos, price: float | None) -> None:
        pos.ref = pos.close = price
        rate = pos.conv.rate
        if price is not None and rate is not None:
            self._price_reference(pos, price, rate)

    def _price_reference(self, pos: _Pos, ref: float, rate: float) -> None:
        """Start moving the position: check its size, then fix ``P_i`` at the reference."""
        if pos.unchecked:
            self._check(pos, rate)
        size = pos.size
        if size is not None:
            pos.p_ref = profit_in_quote(pos.side, pos.open, ref, ref, pos.volume, size) * rate

    # -- ticks ------------------------------------------------------------------------------

    def on_tick(
        self, symbol: str, bid: float, ask: float, time: datetime | None, now: datetime
    ) -> float | None:
        """Filter a tick and apply it; the new estimate if it moved, else None.

        None when the tick was dropped (see :attr:`tick_filter`), names a symbol this account
        does not watch, or leaves the estimate unchanged. Ticks of unwatched symbols are not
        even filtered, so the filter's memory stays bounded by the watched symbols.
        """
        route = self._routes.get(symbol)
        if route is None or self._filter.check(symbol, bid, ask, time, now) is not None:
            return None
        return self._apply(route, bid, ask, now)

    def apply(self, symbol: str, bid: float, ask: float, now: datetime) -> float | None:
        """Apply a tick WITHOUT filtering (the caller filtered it); same answer as on_tick."""
        route = self._routes.get(symbol)
        if route is None:
            return None
        return self._apply(route, bid, ask, now)

    def _apply(self, route: _Route, bid: float, ask: float, now: datetime) -> float | None:
        route.bid = bid
        route.ask = ask
        self._mids[route.canon] = (bid + ask) * 0.5
        for p in route.own:
            price = bid if p.side == "buy" else ask
            p.close = price
            if p.ref is None:
                p.ref = price  # first price after an anchor without one: move from here
        if route.convs:
            currency, mid = self._currency, self._mid
            for conv in route.convs:
                conv.rate = conversion_rate(conv.quote, currency, mid)
        equity = self._equity
        if equity is None:
            return None
        before = equity
        for p in route.affected:
            rate = p.conv.rate
            ref, close, size = p.ref, p.close, p.size
            if rate is None or ref is None or close is None or size is None:
                continue  # valued from the poll alone until its prices are known
            if p.p_ref is None:
                self._price_reference(p, ref, rate)  # first priced since the anchor
                size = p.size
                if p.p_ref is None or size is None:
                    continue
            # polled + (P(now) - P(reference)): exactly the poll while nothing moved.
            profit = p.polled + (
                profit_in_quote(p.side, p.open, close, close, p.volume, size) * rate - p.p_ref
            )
            equity += profit - p.profit
            p.profit = profit
        if equity == before:
            return None
        self._equity = equity
        self._estimated_at = now
        return equity
