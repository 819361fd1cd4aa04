"""What each client method means: the async resources ``accounts``, ``market``, ``orders``,
``history``. They describe requests with ``wire`` and send them through the transport; the sync
client wraps these same objects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

from riskd.api2trade import wire
from riskd.api2trade.enums import OrderType, RetCode, RetryKind
from riskd.api2trade.exceptions import (
    AccountNotFoundError,
    Api2TradeConnectionError,
    Api2TradeError,
    AuthenticationError,
    BrokerRejectionError,
    ServerError,
)
from riskd.api2trade.models import (
    AccountSummary,
    ConnectStatus,
    OrderHistoryItem,
    OrderResult,
    PaginatedHistory,
    Position,
    Quote,
    summary_stats,
)
from riskd.api2trade.transport import AsyncTransport
from riskd.instruments import normalize_symbol

log = logging.getLogger("riskd.api2trade")

# How far a broker's open time may sit before our send time and still be "our" order.
_OPEN_TIME_SKEW = timedelta(seconds=5)
_VOLUME_EPS = 1e-9


class AsyncAccounts:
    """``/RegisterAccount``, ``/CheckConnect``, ``/AccountSummary``, ``/DeleteAccount``."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def register(self, login: str, password: str, server: str) -> str:
        """Register an MT4/MT5 account with the bridge; returns its UUID (keep it)."""
        return wire.parse_register(await self._t.call(wire.register(login, password, server)))

    async def check_connect(self, account_id: str) -> ConnectStatus:
        return wire.parse_check_connect(await self._t.call(wire.check_connect(account_id)))

    async def summary(self, account_id: str) -> AccountSummary:
        return wire.parse_summary(await self._t.call(wire.summary(account_id)))

    async def delete(self, account_id: str) -> None:
        await self._t.call(wire.delete(account_id))


class AsyncMarket:
    """``/GetQuote``."""

    def __init__(self, transport: AsyncTransport, concurrency: int = 8) -> None:
        self._t = transport
        self._concurrency = concurrency

    async def quote(self, account_id: str, symbol: str) -> Quote:
        return wire.parse_quote(await self._t.call(wire.quote(account_id, symbol)))

    async def quotes(self, account_id: str, symbols: Iterable[str]) -> list[Quote]:
        """Quotes for several symbols, fetched concurrently, in the order asked."""
        gate = asyncio.Semaphore(self._concurrency)

        async def one(symbol: str) -> Quote:
            async with gate:
                return await self.quote(account_id, symbol)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(s)) for s in symbols]
        return [t.result() for t in tasks]


class AsyncOrders:
    """``/OrderSend``, ``/OrderModify``, ``/OrderClose``, ``/Positions``.

    Trade return codes follow the spec's retry policy. An order whose outcome is unknown (a
    timeout, 5xx or retcode 10011/10012/10031 after the request left) is never resent blindly:
    positions are read first, and a matching position counts as the order's result.
    """

    def __init__(
        self, transport: AsyncTransport, market: AsyncMarket, concurrency: int = 8
    ) -> None:
        self._t = transport
        self._market = market
        self._concurrency = concurrency

    async def positions(self, account_id: str) -> list[Position]:
        return wire.parse_positions(await self._t.call(wire.positions(account_id)))

    async def send(
        self,
        account_id: str,
        symbol: str,
        order_type: OrderType | int,
        volume: float,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        comment: str | None = None,
        price: float | None = None,
        auto_retry: bool = True,
        max_retries: int = 2,
    ) -> OrderResult:
        """Open a market order or place a pending one.

        With ``auto_retry`` a requote or price change is retried at once (with a fresh price
        when ``price`` was given for a market order), a busy server after a back-off, up to
        ``max_retries`` times. Raises ``BrokerRejectionError`` when the broker refuses.
        """
        kind = OrderType(order_type)
        sent_at = datetime.now(UTC)
        attempt = 0
        while True:
            request = wire.order_send(
                account_id, symbol, kind, volume, stop_loss, take_profit, comment, price
            )
            try:
                payload = await self._t.call(request)
                return wire.parse_order_result(request.path, payload)
            except BrokerRejectionError as exc:
                retry = RetCode.retry_kind(exc.retcode)
                failure: Api2TradeError = exc
            except (Api2TradeConnectionError, ServerError) as exc:
                retry = RetryKind.UNKNOWN
                failure = exc

            if retry is RetryKind.UNKNOWN:
                found = await self._find_opened(account_id, symbol, kind, volume, comment, sent_at)
                if found is not None:
                    log.info(
                        "order on %s of unknown outcome was executed: ticket %d",
                        symbol,
                        found.ticket,
                    )
                    return found
                if kind.is_pending():
                    # Pending orders are not in /Positions: nothing to look at, so no resend.
                    raise _unknown(failure, "pending order not visible in /Positions") from None
            elif retry is RetryKind.FATAL:
                raise failure
            if not auto_retry or attempt >= max_retries:
                if retry is RetryKind.UNKNOWN:
                    raise _unknown(failure, "no matching position found") from None
                raise failure
            self._t.hooks.on_retry(request.path, _reason(failure))
            if retry is RetryKind.BACKOFF:
                await self._t.sleep(self._t.backoff.delay(attempt))
            elif retry is RetryKind.REPRICE and price is not None and kind.is_market():
                fresh = await self._market.quote(account_id, symbol)
                price = fresh.ask if kind.side == "buy" else fresh.bid
            attempt += 1

    async def modify(
        self,
        account_id: str,
        ticket: int,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        auto_retry: bool = True,
        max_retries: int = 2,
    ) -> OrderResult:
        """Change a position's stop loss and/or take profit (safe to retry: idempotent)."""
        attempt = 0
        request = wire.order_modify(account_id, ticket, stop_loss, take_profit)
        while True:
            try:
                return wire.parse_order_result(request.path, await self._t.call(request))
            except BrokerRejectionError as exc:
                retry = RetCode.retry_kind(exc.retcode)
                if retry is RetryKind.FATAL or not auto_retry or attempt >= max_retries:
                    raise
                self._t.hooks.on_retry(request.path, _reason(exc))
                if retry is not RetryKind.REPRICE:
                    await self._t.sleep(self._t.backoff.delay(attempt))
                attempt += 1

    async def close(
        self,
        account_id: str,
        ticket: int,
        volume: float | None = None,
        auto_retry: bool = True,
        max_retries: int = 2,
    ) -> OrderResult:
        """Close a position, all of it or ``volume`` lots of it.

        When the outcome of a full close is unknown, positions are read: a ticket that is gone
        counts as closed, one still open is closed again. A partial close of unknown outcome
        is not resent (it could close twice the volume): ``BrokerRejectionError`` with
        ``outcome_unknown`` tells the caller to look.
        """
        attempt = 0
        request = wire.order_close(account_id, ticket, volume)
        while True:
            try:
                return wire.parse_order_result(request.path, await self._t.call(request))
            except BrokerRejectionError as exc:
                retry = RetCode.retry_kind(exc.retcode)
                failure: Api2TradeError = exc
            except (Api2TradeConnectionError, ServerError) as exc:
                retry = RetryKind.UNKNOWN
                failure = exc

            if retry is RetryKind.UNKNOWN:
                if volume is not None:
                    raise _unknown(failure, "partial close is not resent blindly") from None
                open_tickets = {p.ticket for p in await self.positions(account_id)}
                if ticket not in open_tickets:
                    return OrderResult(
                        ticket=ticket, retcode=RetCode.DONE, comment="closed (seen in positions)"
                    )
            elif retry is RetryKind.FATAL:
                raise failure
            if not auto_retry or attempt >= max_retries:
                raise failure
            self._t.hooks.on_retry(request.path, _reason(failure))
            if retry is RetryKind.BACKOFF:
                await self._t.sleep(self._t.backoff.delay(attempt))
            attempt += 1

    async def close_all(self, account_id: str) -> list[OrderResult]:
        """Close every open position, a few at a time.

        Returns one result per position. A close that failed is a result with ``success``
        False, its return code (10031 for a connection failure) and the error as comment, so
        one refusal does not hide the others. Authentication and unknown-account errors raise.
        """
        gate = asyncio.Semaphore(self._concurrency)

        async def one(position: Position) -> OrderResult:
            async with gate:
                try:
                    return await self.close(account_id, position.ticket)
                except (AuthenticationError, AccountNotFoundError):
                    raise
                except BrokerRejectionError as exc:
                    return OrderResult(
                        ticket=position.ticket, retcode=exc.retcode, comment=str(exc)
                    )
                except Api2TradeError as exc:
                    return OrderResult(
                        ticket=position.ticket, retcode=RetCode.CONNECTION, comment=str(exc)
                    )

        open_positions = await self.positions(account_id)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(p)) for p in open_positions]
        return [t.result() for t in tasks]

    async def _find_opened(
        self,
        account_id: str,
        symbol: str,
        kind: OrderType,
        volume: float,
        comment: str | None,
        sent_at: datetime,
    ) -> OrderResult | None:
        """A position that this market order opened, if the bridge shows one.

        Matches symbol, side, volume and comment (brokers may cut a comment short, so a prefix
        counts), opened no earlier than the send. Without an open time an older identical
        position can match; that errs towards not opening a second one.
        """
        if kind.is_pending():
            return None
        wanted = normalize_symbol(symbol)
        for p in await self.positions(account_id):
            if normalize_symbol(p.symbol) != wanted or p.order_type != kind.side:
                continue
            if abs(p.volume - volume) > _VOLUME_EPS:
                continue
            if comment and p.comment and not comment.startswith(p.comment):
                continue
            if p.open_time is not None and p.open_time < sent_at - _OPEN_TIME_SKEW:
                continue
            return OrderResult(ticket=p.ticket, retcode=RetCode.DONE, comment="found in positions")
        return None


class AsyncHistory:
    """``/OrderHistory`` and ``/OrderHistoryPagination``."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def get(
        self, account_id: str, date_from: datetime, date_to: datetime
    ) -> list[OrderHistoryItem]:
        """Every closed order with a close time in [date_from, date_to]."""
        return wire.parse_history(await self._t.call(wire.history(account_id, date_from, date_to)))

    async def get_page(
        self,
        account_id: str,
        date_from: datetime,
        date_to: datetime,
        page: int = 1,
        page_size: int = 50,
    ) -> PaginatedHistory:
        """One page of closed orders; pages count from 1."""
        request = wire.history_page(account_id, date_from, date_to, page, page_size)
        return wire.parse_history_page(await self._t.call(request))

    async def iter_all(
        self, account_id: str, date_from: datetime, date_to: datetime, page_size: int = 100
    ) -> AsyncIterator[OrderHistoryItem]:
        """Every closed order, one page in memory at a time."""
        page = 1
        while True:
            result = await self.get_page(account_id, date_from, date_to, page, page_size)
            for item in result.data:
                yield item
            # An empty page with "more to come" would loop forever on a confused server.
            if not result.has_next or not result.data:
                return
            page += 1

    async def last_n_days(self, account_id: str, days: int = 7) -> list[OrderHistoryItem]:
        now = datetime.now(UTC)
        return await self.get(account_id, now - timedelta(days=days), now)

    async def summary_stats(
        self, account_id: str, date_from: datetime, date_to: datetime
    ) -> dict[str, float]:
        """Win rate, profit factor, net profit and more over the closed orders in the range."""
        orders = [o async for o in self.iter_all(account_id, date_from, date_to)]
        return summary_stats(orders)


def _reason(error: Api2TradeError) -> str:
    if isinstance(error, BrokerRejectionError):
        return f"retcode_{error.retcode}"
    if isinstance(error, Api2TradeConnectionError):
        return "connection_error"
    return f"http_{error.status_code}"


def _unknown(error: Api2TradeError, why: str) -> BrokerRejectionError:
    """The error for an order that may or may not have been executed."""
    retcode = error.retcode if isinstance(error, BrokerRejectionError) else RetCode.TIMEOUT
    return BrokerRejectionError(
        f"outcome unknown ({error.message}); {why}: check positions before sending again",
        retcode=retcode,
        is_retryable=False,
        outcome_unknown=True,
        status_code=error.status_code,
        endpoint=error.endpoint,
    )
