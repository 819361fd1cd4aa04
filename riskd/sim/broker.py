"""The simulated trade server: accounts, market and pending orders, positions, history.

All money formulas come from :mod:`riskd.money` (profit, conversion, margin, margin level);
this module only decides *which* prices and volumes go into them, as MetaTrader does:

- market orders fill at the ask (buy) or the bid (sell); a triggered pending order fills at the
  market price of the tick that triggered it (so limits fill at their price or better, stops
  may slip);
- a buy is valued, stopped out and taken profit at the bid, a sell at the ask;
- money is kept in whole cents (``int``): every position's profit, swap and commission is
  rounded to cents first and the account totals are sums of those, so ``equity == balance +
  credit + sum(profit + swap + commission)`` holds exactly on the wire.

Not thread-safe: owned by the simulator's event loop thread.
"""

from __future__ import annotations

import itertools
import math
import random
import uuid
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from riskd import money
from riskd.api2trade.enums import OrderType, RetCode
from riskd.instruments import Instrument
from riskd.sim.clock import Clock
from riskd.sim.errors import SimError, UnknownAccount
from riskd.sim.market import Market, Quote
from riskd.sim.triggers import PriceSide, TriggerBook

Side = Literal["buy", "sell"]
TriggerKey = tuple[int, str]  # (ticket, "sl" | "tp" | "entry")

_CENT = Decimal("0.01")
_VOLUME_EPS = 1e-9

# Which price a pending order watches, and whether it fires at-or-below its level.
_ENTRY_TRIGGER: dict[OrderType, tuple[PriceSide, bool]] = {
    OrderType.BUY_LIMIT: ("ask", True),
    OrderType.SELL_LIMIT: ("bid", False),
    OrderType.BUY_STOP: ("ask", False),
    OrderType.SELL_STOP: ("bid", True),
}


def to_cents(amount: float) -> int:
    """Round ``amount`` to whole cents, half away from zero (as its decimal text reads)."""
    return int(Decimal(repr(amount)).quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))


def volume_ok(volume: float) -> bool:
    """True for a positive volume on the 0.01-lot grid."""
    return math.isfinite(volume) and volume > 0 and abs(volume * 100 - round(volume * 100)) < 1e-6


def stops_ok(side: Side, reference: float, stop_loss: float, take_profit: float) -> bool:
    """SL/TP on the right side of ``reference`` (0 means "none").

    ``reference`` is the price the position would close at now (bid for a buy, ask for a sell),
    or a pending order's price.
    """
    if stop_loss < 0 or take_profit < 0:
        return False
    if side == "buy":
        return (not stop_loss or stop_loss < reference) and (
            not take_profit or take_profit > reference
        )
    return (not stop_loss or stop_loss > reference) and (not take_profit or take_profit < reference)


def _entry_ok(order_type: OrderType, price: float, quote: Quote) -> bool:
    """A pending order's price must be on the side that makes it wait, not fill at once."""
    if order_type is OrderType.BUY_LIMIT:
        return price < quote.ask
    if order_type is OrderType.SELL_LIMIT:
        return price > quote.bid
    if order_type is OrderType.BUY_STOP:
        return price > quote.ask
    return price < quote.bid


def _side(order_type: OrderType) -> Side:
    return "buy" if order_type.side == "buy" else "sell"


@dataclass(slots=True, eq=False)
class Position:
    """An open position. ``stop_loss``/``take_profit`` are 0.0 when not set."""

    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    open_time: datetime
    stop_loss: float = 0.0
    take_profit: float = 0.0
    swap_cents: int = 0
    commission_cents: int = 0
    comment: str = ""
    magic: int = 0


@dataclass(slots=True, eq=False)
class PendingOrder:
    """A limit or stop order waiting for its price."""

    ticket: int
    symbol: str
    order_type: OrderType
    volume: float
    price: float
    placed_time: datetime
    stop_loss: float = 0.0
    take_profit: float = 0.0
    comment: str = ""
    magic: int = 0

    @property
    def side(self) -> Side:
        return _side(self.order_type)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One history row: a full close, or the closed part of a partial close (same ticket)."""

    ticket: int
    symbol: str
    side: Side
    volume: float
    open_price: float
    close_price: float
    open_time: datetime
    close_time: datetime
    profit: float
    swap: float
    commission: float
    comment: str


def _close_time(row: ClosedTrade) -> datetime:
    return row.close_time


@dataclass(slots=True, eq=False)
class Account:
    """A registered trading account. Money fields are whole cents."""

    id: str
    login: str
    server: str
    currency: str
    leverage: int
    balance_cents: int
    credit_cents: int = 0
    commission_per_lot: float = 0.0
    connected: bool = True
    positions: dict[int, Position] = field(default_factory=dict)
    pending: dict[int, PendingOrder] = field(default_factory=dict)
    history: list[ClosedTrade] = field(default_factory=list)  # sorted by close time
    closed_tickets: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class TradeResult:
    """What a trade request answers: the MT5 retcode, the ticket (0 when none) and its text."""

    retcode: int
    ticket: int
    comment: str

    @classmethod
    def of(cls, retcode: int, ticket: int = 0) -> TradeResult:
        """A result with the retcode's standard description as comment."""
        return cls(retcode, ticket, RetCode.description(retcode))


@dataclass(frozen=True, slots=True)
class PositionView:
    """A position valued at the current market, money in cents."""

    position: Position
    current_price: float
    profit_cents: int
    swap_cents: int
    commission_cents: int
    margin_cents: int

    @property
    def profit(self) -> float:
        return self.profit_cents / 100

    @property
    def swap(self) -> float:
        return self.swap_cents / 100

    @property
    def commission(self) -> float:
        return self.commission_cents / 100

    @property
    def margin(self) -> float:
        return self.margin_cents / 100


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account valued at the current market (what ``/AccountSummary`` reports).

    ``profit`` is the floating total of all positions including swap and commission, so
    ``equity == balance + credit + profit``.
    """

    balance: float
    credit: float
    profit: float
    equity: float
    margin: float
    free_margin: float
    margin_level: float
    leverage: int
    currency: str
    positions: tuple[PositionView, ...]


class Broker:
    """Accounts and their trading, valued on a :class:`~riskd.sim.market.Market`.

    Open positions and pending orders are indexed by symbol (one :class:`TriggerBook` per
    symbol, across all accounts), so :meth:`on_price` only touches triggers of that symbol.
    """

    def __init__(
        self, market: Market, clock: Clock, *, seed: int = 1, first_ticket: int = 50_000_001
    ) -> None:
        self.market = market
        self._clock = clock
        self._rng = random.Random(f"broker:{seed}")
        self._tickets = itertools.count(first_ticket)
        self._logins = itertools.count(5_100_001)
        self._accounts: dict[str, Account] = {}
        self._by_login: dict[tuple[str, str], str] = {}
        self._owner: dict[int, Account] = {}  # open or pending ticket -> account
        self._books: dict[str, TriggerBook[TriggerKey]] = {}

    # -- accounts ---------------------------------------------------------------------------

    def create_account(
        self,
        *,
        balance: float = 100_000.0,
        currency: str = "USD",
        leverage: int = 100,
        credit: float = 0.0,
        commission_per_lot: float = 0.0,
        login: str | None = None,
        server: str = "SimBroker-Demo",
    ) -> Account:
        """A new account with a deterministic (seeded) UUID."""
        currency = currency.upper()
        if money.conversion_rate("USD", currency, self.market.mid) is None:
            raise SimError(f"no prices to convert into account currency {currency!r}")
        if leverage < 1:
            raise SimError(f"leverage must be >= 1, got {leverage}")
        if commission_per_lot < 0:
            raise SimError("commission_per_lot is a cost: give it as a positive number")
        account = Account(
            id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            login=login if login is not None else str(next(self._logins)),
            server=server,
            currency=currency,
            leverage=int(leverage),
            balance_cents=to_cents(balance),
            credit_cents=to_cents(credit),
            commission_per_lot=commission_per_lot,
        )
        self._accounts[account.id] = account
        self._by_login.setdefault((account.login, server), account.id)
        return account

    def register(self, login: str, server: str) -> Account:
        """``/RegisterAccount``: the same login on the same server gets the same account."""
        existing = self._by_login.get((login, server))
        if existing is not None and existing in self._accounts:
            return self._accounts[existing]
        return self.create_account(login=login, server=server)

    def get(self, account_id: str) -> Account | None:
        """The account, or None when not registered."""
        return self._accounts.get(account_id)

    def require(self, account_id: str) -> Account:
        """The account, or :class:`UnknownAccount`."""
        account = self._accounts.get(account_id)
        if account is None:
            raise UnknownAccount(f"unknown account {account_id!r}")
        return account

    def accounts(self) -> Iterator[Account]:
        """Every registered account."""
        return iter(self._accounts.values())

    def delete(self, account_id: str) -> bool:
        """Forget an account and everything it holds; False when it was not registered."""
        account = self._accounts.pop(account_id, None)
        if account is None:
            return False
        if self._by_login.get((account.login, account.server)) == account_id:
            del self._by_login[(account.login, account.server)]
        for ticket, pos in list(account.positions.items()):
            self._forget(ticket, pos.symbol)
        for ticket, order in list(account.pending.items()):
            self._forget(ticket, order.symbol)
        return True

    def set_balance(self, account: Account, balance: float, credit: float | None = None) -> None:
        """Overwrite balance (and credit when given), rounded to cents."""
        account.balance_cents = to_cents(balance)
        if credit is not None:
            account.credit_cents = to_cents(credit)

    # -- trade requests (the wire) ----------------------------------------------------------

    def send(
        self,
        account: Account,
        *,
        symbol: str,
        operation: int,
        volume: float,
        stop_loss: float = 0.0,
        take_profit: float = 0.0,
        price: float | None = None,
        comment: str = "",
        magic: int = 0,
    ) -> TradeResult:
        """``/OrderSend``: 10009 for a filled market order, 10008 for a placed pending one."""
        if not self.market.has(symbol):
            return TradeResult.of(RetCode.INVALID)
        try:
            order_type = OrderType(operation)
        except ValueError:
            return TradeResult.of(RetCode.INVALID_ORDER)
        if not volume_ok(volume):
            return TradeResult.of(RetCode.INVALID_VOLUME)
        inst = self.market.instrument(symbol)
        quote = self.market.quote(symbol)
        side = _side(order_type)
        sl, tp = round(stop_loss, inst.digits), round(take_profit, inst.digits)
        if order_type.is_market():
            fill = quote.ask if side == "buy" else quote.bid
            if not stops_ok(side, quote.bid if side == "buy" else quote.ask, sl, tp):
                return TradeResult.of(RetCode.INVALID_STOPS)
            if not self._margin_ok(account, inst, volume, fill):
                return TradeResult.of(RetCode.NO_MONEY)
            ticket = next(self._tickets)
            self._open(account, ticket, symbol, side, volume, fill, sl, tp, comment, magic)
            return TradeResult.of(RetCode.DONE, ticket)
        if price is None or not math.isfinite(price) or price <= 0:
            return TradeResult.of(RetCode.INVALID_PRICE)
        price = round(price, inst.digits)
        if not _entry_ok(order_type, price, quote):
            return TradeResult.of(RetCode.INVALID_PRICE)
        if not stops_ok(side, price, sl, tp):
            return TradeResult.of(RetCode.INVALID_STOPS)
        ticket = next(self._tickets)
        order = PendingOrder(
            ticket=ticket,
            symbol=symbol,
            order_type=order_type,
            volume=round(volume, 2),
            price=price,
            placed_time=self._clock(),
            stop_loss=sl,
            take_profit=tp,
            comment=comment,
            magic=magic,
        )
        account.pending[ticket] = order
        self._owner[ticket] = account
        self._book(symbol).arm((ticket, "entry"), price, *_ENTRY_TRIGGER[order_type])
        return TradeResult.of(RetCode.PLACED, ticket)

    def modify(
        self,
        account: Account,
        ticket: int,
        stop_loss: float | None = None,
        take_profit: float | None = None,
    ) -> TradeResult:
        """``/OrderModify``: None keeps a level, 0 removes it; 10025 when nothing changes."""
        target: Position | PendingOrder | None = account.positions.get(ticket)
        if target is None:
            target = account.pending.get(ticket)
        if target is None:
            return self._missing(account, ticket)
        digits = self.market.instrument(target.symbol).digits
        sl = target.stop_loss if stop_loss is None else round(stop_loss, digits)
        tp = target.take_profit if take_profit is None else round(take_profit, digits)
        if sl == target.stop_loss and tp == target.take_profit:
            return TradeResult.of(RetCode.NO_CHANGES, ticket)
        if isinstance(target, Position):
            quote = self.market.quote(target.symbol)
            reference = quote.bid if target.side == "buy" else quote.ask
        else:
            reference = target.price
        if not stops_ok(target.side, reference, sl, tp):
            return TradeResult.of(RetCode.INVALID_STOPS, ticket)
        target.stop_loss, target.take_profit = sl, tp
        if isinstance(target, Position):
            self._arm_stops(target)
        return TradeResult.of(RetCode.DONE, ticket)

    def close(self, account: Account, ticket: int, volume: float | None = None) -> TradeResult:
        """``/OrderClose``: all of a position (``volume`` None) or part of it; cancels a pending
        order."""
        order = account.pending.pop(ticket, None)
        if order is not None:
            self._forget(ticket, order.symbol)
            account.closed_tickets.add(ticket)
            return TradeResult.of(RetCode.DONE, ticket)
        pos = account.positions.get(ticket)
        if pos is None:
            return self._missing(account, ticket)
        if volume is None:
            volume = pos.volume
        if not volume_ok(volume):
            return TradeResult.of(RetCode.INVALID_VOLUME, ticket)
        if volume > pos.volume + _VOLUME_EPS:
            return TradeResult.of(RetCode.INVALID_CLOSE_VOLUME, ticket)
        self._close(account, pos, volume, pos.comment)
        return TradeResult.of(RetCode.DONE, ticket)

    # -- control (tests and demos) ----------------------------------------------------------

    def open_position(
        self,
        account: Account,
        symbol: str,
        side: str,
        volume: float,
        *,
        open_price: float | None = None,
        stop_loss: float = 0.0,
        take_profit: float = 0.0,
        comment: str = "",
        open_time: datetime | None = None,
        magic: int = 0,
    ) -> Position:
        """Open a position directly (no margin check), at ``open_price`` or the market."""
        inst = self.market.instrument(symbol)
        if side not in ("buy", "sell"):
            raise SimError(f"side must be 'buy' or 'sell', got {side!r}")
        if not volume_ok(volume):
            raise SimError(f"bad volume {volume!r}")
        quote = self.market.quote(symbol)
        if open_price is None:
            open_price = quote.ask if side == "buy" else quote.bid
        elif not (math.isfinite(open_price) and open_price > 0):
            raise SimError(f"bad open price {open_price!r}")
        sl, tp = round(stop_loss, inst.digits), round(take_profit, inst.digits)
        typed_side: Side = "buy" if side == "buy" else "sell"
        if not stops_ok(typed_side, quote.bid if side == "buy" else quote.ask, sl, tp):
            raise SimError("stop loss / take profit on the wrong side of the market")
        price = round(open_price, inst.digits)
        ticket = next(self._tickets)
        return self._open(
            account, ticket, symbol, typed_side, volume, price, sl, tp, comment, magic, open_time
        )

    def set_swap(self, account: Account, ticket: int, swap: float) -> None:
        """Set the accumulated swap of an open position (account currency)."""
        pos = account.positions.get(ticket)
        if pos is None:
            raise SimError(f"no open position {ticket} in account {account.id}")
        pos.swap_cents = to_cents(swap)

    # -- ticks ------------------------------------------------------------------------------

    def on_price(self, symbol: str) -> None:
        """React to a new price of ``symbol``: fill pending orders, then hit SL/TP."""
        book = self._books.get(symbol)
        if not book:
            return
        quote = self.market.quote(symbol)
        # A filled pending order arms its own SL/TP, which this same price may already hit.
        while fired := book.fired(quote.bid, quote.ask):
            for ticket, kind in fired:
                account = self._owner.get(ticket)
                if account is None:
                    continue
                if kind == "entry":
                    order = account.pending.pop(ticket, None)
                    if order is not None:
                        self._fill(account, order, quote)
                    continue
                pos = account.positions.get(ticket)
                if pos is not None:
                    level = pos.stop_loss if kind == "sl" else pos.take_profit
                    digits = self.market.instrument(symbol).digits
                    self._close(account, pos, pos.volume, f"[{kind} {level:.{digits}f}]")

    # -- valuation and history --------------------------------------------------------------

    def position_view(self, account: Account, pos: Position) -> PositionView:
        """``pos`` valued at the current market in the account currency."""
        inst = self.market.instrument(pos.symbol)
        quote = self.market.quote(pos.symbol)
        return PositionView(
            position=pos,
            current_price=quote.bid if pos.side == "buy" else quote.ask,
            profit_cents=to_cents(self._profit(account, inst, pos, pos.volume, quote)),
            swap_cents=pos.swap_cents,
            commission_cents=pos.commission_cents,
            margin_cents=to_cents(self._margin(account, inst, pos.volume, pos.open_price)),
        )

    def view(self, account: Account) -> AccountView:
        """The account's summary, computed from the cent-rounded position values."""
        positions = tuple(self.position_view(account, p) for p in account.positions.values())
        floating = sum(v.profit_cents + v.swap_cents + v.commission_cents for v in positions)
        equity = account.balance_cents + account.credit_cents + floating
        margin = sum(v.margin_cents for v in positions)
        return AccountView(
            balance=account.balance_cents / 100,
            credit=account.credit_cents / 100,
            profit=floating / 100,
            equity=equity / 100,
            margin=margin / 100,
            free_margin=(equity - margin) / 100,
            margin_level=round(money.margin_level(equity / 100, margin / 100), 2),
            leverage=account.leverage,
            currency=account.currency,
            positions=positions,
        )

    def history(
        self, account: Account, date_from: datetime, date_to: datetime
    ) -> list[ClosedTrade]:
        """Closed trades with ``date_from <= close_time <= date_to``, oldest close first."""
        rows = account.history
        lo = bisect_left(rows, date_from, key=_close_time)
        hi = bisect_right(rows, date_to, key=_close_time)
        return rows[lo:hi]

    # -- internals --------------------------------------------------------------------------

    def _missing(self, account: Account, ticket: int) -> TradeResult:
        if ticket in account.closed_tickets:
            return TradeResult.of(RetCode.POSITION_CLOSED, ticket)
        return TradeResult.of(RetCode.INVALID, ticket)

    def _book(self, symbol: str) -> TriggerBook[TriggerKey]:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = TriggerBook()
        return book

    def _rate(self, from_ccy: str, account: Account) -> float:
        rate = money.conversion_rate(from_ccy, account.currency, self.market.mid)
        if rate is None:  # create_account checked the routes; a custom market may lack one
            raise SimError(f"no price to convert {from_ccy} into {account.currency}")
        return rate

    def _profit(
        self, account: Account, inst: Instrument, pos: Position, volume: float, quote: Quote
    ) -> float:
        in_quote = money.profit_in_quote(
            pos.side, pos.open_price, quote.bid, quote.ask, volume, inst.contract_size
        )
        return in_quote * self._rate(inst.quote, account)

    def _margin(self, account: Account, inst: Instrument, volume: float, price: float) -> float:
        margin = money.margin_in_account(
            inst, volume, price, account.leverage, account.currency, self.market.mid
        )
        if margin is None:
            raise SimError(f"no price to convert {inst.symbol} margin into {account.currency}")
        return margin

    def _margin_ok(self, account: Account, inst: Instrument, volume: float, price: float) -> bool:
        required = to_cents(self._margin(account, inst, volume, price))
        view = self.view(account)
        return required <= to_cents(view.free_margin)

    def _open(
        self,
        account: Account,
        ticket: int,
        symbol: str,
        side: Side,
        volume: float,
        price: float,
        stop_loss: float,
        take_profit: float,
        comment: str,
        magic: int,
        open_time: datetime | None = None,
    ) -> Position:
        pos = Position(
            ticket=ticket,
            symbol=symbol,
            side=side,
            volume=round(volume, 2),
            open_price=price,
            open_time=open_time if open_time is not None else self._clock(),
            stop_loss=stop_loss,
            take_profit=take_profit,
            commission_cents=-to_cents(account.commission_per_lot * volume),
            comment=comment,
            magic=magic,
        )
        account.positions[ticket] = pos
        self._owner[ticket] = account
        self._arm_stops(pos)
        return pos

    def _fill(self, account: Account, order: PendingOrder, quote: Quote) -> None:
        inst = self.market.instrument(order.symbol)
        fill = quote.ask if order.side == "buy" else quote.bid
        if not self._margin_ok(account, inst, order.volume, fill):
            # MetaTrader rejects the activation (10019) and the order is gone.
            self._forget(order.ticket, order.symbol)
            account.closed_tickets.add(order.ticket)
            return
        stops = (order.stop_loss, order.take_profit)
        self._open(
            account,
            order.ticket,
            order.symbol,
            order.side,
            order.volume,
            fill,
            *stops,
            order.comment,
            order.magic,
        )

    def _arm_stops(self, pos: Position) -> None:
        book = self._book(pos.symbol)
        buy = pos.side == "buy"
        price: PriceSide = "bid" if buy else "ask"
        # Buy: SL when bid <= SL, TP when bid >= TP. Sell: SL when ask >= SL, TP when ask <= TP.
        if pos.stop_loss:
            book.arm((pos.ticket, "sl"), pos.stop_loss, price, below=buy)
        else:
            book.disarm((pos.ticket, "sl"))
        if pos.take_profit:
            book.arm((pos.ticket, "tp"), pos.take_profit, price, below=not buy)
        else:
            book.disarm((pos.ticket, "tp"))

    def _forget(self, ticket: int, symbol: str) -> None:
        self._owner.pop(ticket, None)
        book = self._books.get(symbol)
        if book is not None:
            for kind in ("sl", "tp", "entry"):
                book.disarm((ticket, kind))

    def _close(self, account: Account, pos: Position, volume: float, comment: str) -> None:
        inst = self.market.instrument(pos.symbol)
        quote = self.market.quote(pos.symbol)
        profit = to_cents(self._profit(account, inst, pos, volume, quote))
        full = volume >= pos.volume - _VOLUME_EPS
        if full:
            swap, commission = pos.swap_cents, pos.commission_cents
        else:
            fraction = volume / pos.volume
            swap = round(pos.swap_cents * fraction)
            commission = round(pos.commission_cents * fraction)
        account.balance_cents += profit + swap + commission
        row = ClosedTrade(
            ticket=pos.ticket,
            symbol=pos.symbol,
            side=pos.side,
            volume=round(volume, 2),
            open_price=pos.open_price,
            close_price=quote.bid if pos.side == "buy" else quote.ask,
            open_time=pos.open_time,
            close_time=self._clock(),
            profit=profit / 100,
            swap=swap / 100,
            commission=commission / 100,
            comment=comment,
        )
        insort(account.history, row, key=_close_time)
        if full:
            del account.positions[pos.ticket]
            self._forget(pos.ticket, pos.symbol)
            account.closed_tickets.add(pos.ticket)
        else:
            pos.volume = round(pos.volume - volume, 2)
            pos.swap_cents -= swap
            pos.commission_cents -= commission
