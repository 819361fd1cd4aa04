"""``AsyncApi2TradeClient``: the client core that riskd's daemon uses."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Literal

from riskd.api2trade.backoff import Backoff
from riskd.api2trade.config import ClientSettings, load_settings
from riskd.api2trade.hooks import ClientHooks
from riskd.api2trade.models import Quote
from riskd.api2trade.resources import AsyncAccounts, AsyncHistory, AsyncMarket, AsyncOrders
from riskd.api2trade.stream import OnConnect, TickStream, _maybe_await
from riskd.api2trade.transport import AsyncTransport

OnTick = Callable[[Quote], Awaitable[None] | None]


def build_settings(
    api_key: str | None,
    pro_username: str | None,
    pro_password: str | None,
    base_url: str | None,
    ws_url: str | None,
    timeout: float | None,
    max_retries: int | None,
    stream_auth: Literal["header", "query"] | None,
    settings: ClientSettings | None,
) -> ClientSettings:
    """Explicit arguments, then ``API2TRADE_*`` variables; or a ready ``settings``."""
    if settings is not None:
        settings.check_credentials()
        return settings
    return load_settings(
        api_key=api_key,
        pro_username=pro_username,
        pro_password=pro_password,
        base_url=base_url,
        ws_url=ws_url,
        timeout=timeout,
        max_retries=max_retries,
        stream_auth=stream_auth,
    )


class AsyncApi2TradeClient:
    """Async client for every API2Trade bridge endpoint and the tick stream.

    ``accounts``, ``market``, ``orders`` and ``history`` hold the REST methods; ``stream`` and
    ``stream_iter`` the WebSocket ticks. Credentials come from the arguments or the
    ``API2TRADE_*`` environment; a missing one raises ``ConfigurationError`` here, naming the
    variable to set. Use as ``async with AsyncApi2TradeClient() as client:``.
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
        self.settings = build_settings(
            api_key, pro_username, pro_password, base_url, ws_url, timeout, max_retries,
            stream_auth, settings,
        )  # fmt: skip
        self._transport = AsyncTransport(self.settings, hooks=hooks, backoff=backoff)
        self.accounts = AsyncAccounts(self._transport)
        self.market = AsyncMarket(self._transport)
        self.orders = AsyncOrders(self._transport, self.market)
        self.history = AsyncHistory(self._transport)

    def __repr__(self) -> str:
        return (
            f"AsyncApi2TradeClient(base_url={self.settings.base_url!r}, "
            f"auth={self.settings.auth_mode!r})"
        )

    async def __aenter__(self) -> AsyncApi2TradeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._transport.aclose()

    def open_stream(
        self, account_id: str, symbols: Iterable[str] = (), **options: Any
    ) -> TickStream:
        """A ``TickStream`` with live ``subscribe``/``unsubscribe``, stats and state.

        ``options`` go to ``TickStream`` (``on_connect``, ``backoff``, ``stable_after``...).
        """
        return open_stream(self.settings, account_id, symbols, **options)

    async def stream_iter(
        self, account_id: str, symbols: Iterable[str], *, on_connect: OnConnect | None = None
    ) -> AsyncGenerator[Quote, None]:
        """Ticks as an async generator; reconnects and resubscribes on its own.

        Stops only when the caller stops iterating, or with ``AuthenticationError`` /
        ``AccountNotFoundError`` when the handshake is refused.
        """
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
        """Call ``on_tick`` (plain or async) for every tick, forever, across reconnects."""
        await run_callback_stream(
            self.open_stream(account_id, symbols, on_connect=on_connect), on_tick
        )


def open_stream(
    settings: ClientSettings, account_id: str, symbols: Iterable[str] = (), **options: Any
) -> TickStream:
    return TickStream(settings, account_id, symbols, **options)


async def run_callback_stream(stream: TickStream, on_tick: OnTick) -> None:
    """The callback style over a stream: an exception raised by ``on_tick`` stops it."""
    try:
        async for tick in stream:
            await _maybe_await(on_tick(tick))
    finally:
        await stream.aclose()
