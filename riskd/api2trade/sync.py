"""``Api2TradeClient``: the SDK's synchronous surface over the async core.

Every method runs the async client's method on a private event loop in a daemon thread, so
request building, parsing, retries and order safety exist once. The stream methods are
coroutines, as in the SDK (``asyncio.run(client.stream(...))``), and run on the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

from riskd.api2trade.backoff import Backoff
from riskd.api2trade.client import (
    AsyncApi2TradeClient,
    OnTick,
    open_stream,
    run_callback_stream,
)
from riskd.api2trade.config import ClientSettings
from riskd.api2trade.enums import OrderType
from riskd.api2trade.hooks import ClientHooks
from riskd.api2trade.models import (
    AccountSummary,
    ConnectStatus,
    OrderHistoryItem,
    OrderResult,
    PaginatedHistory,
    Position,
    Quote,
)
from riskd.api2trade.stream import OnConnect, TickStream

T = TypeVar("T")


class _LoopThread:
    """An event loop in a daemon thread; ``run`` blocks on a coroutine executed there.

    A daemon thread, not anyio's blocking portal: a REPL user who never calls ``close()``
    must still be able to exit the interpreter.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="api2trade-sync", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C in the caller's thread
            raise

    def stop(self, client: AsyncApi2TradeClient) -> None:
        if self.loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(client.aclose(), self.loop)
        with contextlib.suppress(FutureTimeout, RuntimeError):
            future.result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class _Sync:
    def __init__(self, runner: _LoopThread, client: AsyncApi2TradeClient) -> None:
        self._run = runner.run
        self._client = client


class Accounts(_Sync):
    """Account registration, connection status, summary and removal."""

    def register(self, login: str, password: str, server: str) -> str:
        return self._run(self._client.accounts.register(login, password, server))

    def check_connect(self, account_id: str) -> ConnectStatus:
        return self._run(self._client.accounts.check_connect(account_id))

    def summary(self, account_id: str) -> AccountSummary:
        return self._run(self._client.accounts.summary(account_id))

    def delete(self, account_id: str) -> None:
        self._run(self._client.accounts.delete(account_id))


class Market(_Sync):
    """Quotes."""

    def quote(self, account_id: str, symbol: str) -> Quote:
        return self._run(self._client.market.quote(account_id, symbol))

    def quotes(self, account_id: str, symbols: Iterable[str]) -> list[Quote]:
        return self._run(self._client.market.quotes(account_id, list(symbols)))


class Orders(_Sync):
    """Orders and positions; see ``AsyncOrders`` for the retry and safety rules."""

    def send(
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
        return self._run(
            self._client.orders.send(
                account_id,
                symbol,
                order_type,
                volume,
                stop_loss,
                take_profit,
                comment,
                price,
                auto_retry,
                max_retries,
            )
        )

    def modify(
        self,
        account_id: str,
        ticket: int,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        auto_retry: bool = True,
        max_retries: int = 2,
    ) -> OrderResult:
        return self._run(
            self._client.orders.modify(
                account_id, ticket, stop_loss, take_profit, auto_retry, max_retries
            )
        )

    def close(
        self,
        account_id: str,
        ticket: int,
        volume: float | None = None,
        auto_retry: bool = True,
        max_retries: int = 2,
    ) -> OrderResult:
        return self._run(
            self._client.orders.close(account_id, ticket, volume, auto_retry, max_retries)
        )

    def close_all(self, account_id: str) -> list[OrderResult]:
        return self._run(self._client.orders.close_all(account_id))

    def positions(self, account_id: str) -> list[Position]:
        return self._run(self._client.orders.positions(account_id))


class History(_Sync):
    """Closed orders, pages and statistics."""

    def get(
        self, account_id: str, date_from: datetime, date_to: datetime
    ) -> list[OrderHistoryItem]:
        return self._run(self._client.history.get(account_id, date_from, date_to))

    def get_page(
        self,
        account_id: str,
        date_from: datetime,
        date_to: datetime,
        page: int = 1,
        page_size: int = 50,
    ) -> PaginatedHistory:
        return self._run(
            self._client.history.get_page(account_id, date_from, date_to, page, page_size)
        )

    def iter_all(
        self, account_id: str, date_from: datetime, date_to: datetime, page_size: int = 100
    ) -> Iterator[OrderHistoryItem]:
        """A generator over every closed order, fetching one page at a time."""
        pages: AsyncIterator[OrderHistoryItem] = self._client.history.iter_all(
            account_id, date_from, date_to, page_size
        )
        while True:
            try:
                item = self._run(_next(pages))
            except StopAsyncIteration:
                return
            yield item

    def last_n_days(self, account_id: str, days: int = 7) -> list[OrderHistoryItem]:
        return self._run(self._client.history.last_n_days(account_id, days))

    def summary_stats(
        self, account_id: str, date_from: datetime, date_to: datetime
    ) -> dict[str, float]:
        return self._run(self._client.history.summary_stats(account_id, date_from, date_to))


async def _next(items: AsyncIterator[T]) -> T:
    return await anext(items)


class Api2TradeClient:
    """Synchronous client with the SDK's surface: ``client.accounts.summary(id)`` and so on.

    Same arguments as ``AsyncApi2TradeClient``. Use as ``with Api2TradeClient() as client:``
    or call ``close()``; a forgotten client is cleaned up at exit.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        pro_username: str | None = None,
        pro_password: str | None = None,
        base_url: str | None = None,
        ws_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        stream_auth: Literal["header", "query"] | None = None,
        settings: ClientSettings | None = None,
        hooks: ClientHooks | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        # Built first: bad credentials raise here, before a thread exists.
        self._async = AsyncApi2TradeClient(
            api_key,
            pro_username=pro_username,
            pro_password=pro_password,
            base_url=base_url,
            ws_url=ws_url,
            timeout=timeout,
            max_retries=max_retries,
            stream_auth=stream_auth,
            settings=settings,
            hooks=hooks,
            backoff=backoff,
        )
        self.settings = self._async.settings
        runner = _LoopThread()
        self._finalizer = weakref.finalize(self, runner.stop, self._async)
        self.accounts = Accounts(runner, self._async)
        self.market = Market(runner, self._async)
        self.orders = Orders(runner, self._async)
        self.history = History(runner, self._async)

    def __repr__(self) -> str:
        s = self.settings
        return f"Api2TradeClient(base_url={s.base_url!r}, auth={s.auth_mode!r})"

    def __enter__(self) -> Api2TradeClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and stop the client's background loop."""
        self._finalizer()

    def open_stream(
        self, account_id: str, symbols: Iterable[str] = (), **options: Any
    ) -> TickStream:
        """See ``AsyncApi2TradeClient.open_stream``; iterate it on your own event loop."""
        return open_stream(self.settings, account_id, symbols, **options)

    async def stream_iter(
        self, account_id: str, symbols: Iterable[str], *, on_connect: OnConnect | None = None
    ) -> AsyncGenerator[Quote, None]:
        """Ticks as an async generator on the caller's loop; reconnects on its own."""
        stream = self.open_stream(account_id, symbols, on_connect=on_connect)
        try:
            async for tick in stream:
                yield tick
        finally:
            await stream.aclose()

    async def stream(
        self,
        account_id: str,
        symbols: Iterable[str],
        on_tick: OnTick,
        *,
        on_connect: OnConnect | None = None,
    ) -> None:
        """Call ``on_tick`` for every tick, forever: ``asyncio.run(client.stream(...))``."""
        await run_callback_stream(
            self.open_stream(account_id, symbols, on_connect=on_connect), on_tick
        )
