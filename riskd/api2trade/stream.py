"""The tick stream: one WebSocket per account that reconnects on its own.

Differences from the SDK's stream, on purpose:
- the async-generator style reconnects too, not only the callback style;
- back-off grows across reconnects and resets only after a connection stayed up for
  ``stable_after`` seconds. websockets' own reconnect loop resets its back-off as soon as a
  handshake succeeds, so a server that accepts and at once closes would be hammered;
- 401/403 and 404 on the handshake stop with ``AuthenticationError``/``AccountNotFoundError``
  instead of retrying forever with bad credentials;
- subscriptions are kept here and sent again after every reconnect;
- the URL (which may carry ``api_key=`` for servers that need it) is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from riskd.api2trade import wire
from riskd.api2trade.backoff import Backoff
from riskd.api2trade.config import ClientSettings
from riskd.api2trade.exceptions import (
    AccountNotFoundError,
    AuthenticationError,
    ConfigurationError,
    ResponseFormatError,
)
from riskd.api2trade.models import Quote
from riskd.api2trade.transport import auth_headers

log = logging.getLogger("riskd.api2trade.stream")

StreamState = Literal["idle", "connecting", "connected", "waiting", "closed"]
OnConnect = Callable[[], Awaitable[None] | None]
OnServerError = Callable[[str], Awaitable[None] | None]


class _RedactSecrets(logging.Filter):
    """websockets logs the handshake at DEBUG: the request line (a key may ride in the URL)
    and every header (``x-api-key``, Basic ``authorization``). Scrub the secrets from both."""

    _KEY = re.compile(r"(api_key=)[^&\s]+", re.IGNORECASE)
    _HEADER = re.compile(r"^(\s*[<>]?\s*(?:x-api-key|authorization)\s*:\s*).*$", re.I | re.M)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        lowered = message.lower()
        if "api_key=" in lowered or "x-api-key" in lowered or "authorization" in lowered:
            message = self._KEY.sub(r"\1***", message)
            record.msg = self._HEADER.sub(r"\1***", message)
            record.args = ()
        return True


_ws_log = logging.getLogger("riskd.api2trade.stream.websockets")
_ws_log.addFilter(_RedactSecrets())


@dataclass(slots=True)
class StreamStats:
    """Counters of one stream, read by the daemon's metrics."""

    connects: int = 0
    reconnects: int = 0
    ticks: int = 0
    malformed: int = 0
    server_errors: int = 0


class TickStream:
    """Ticks for one account, across reconnects, as an async iterator of ``Quote``.

    ``subscribe``/``unsubscribe`` may be called at any time, also while iterating; the set is
    restored on every new connection. ``on_connect`` runs after each (re)connection and
    subscription, which is where a consumer takes a fresh REST snapshot for ticks it missed.
    """

    def __init__(
        self,
        settings: ClientSettings,
        account_id: str,
        symbols: Iterable[str] = (),
        *,
        on_connect: OnConnect | None = None,
        on_server_error: OnServerError | None = None,
        backoff: Backoff | None = None,
        stable_after: float = 10.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
        open_timeout: float = 10.0,
    ) -> None:
        self._settings = settings
        self._account_id = account_id
        self._symbols: dict[str, None] = dict.fromkeys(symbols)
        self._on_connect = on_connect
        self._on_server_error = on_server_error
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self._stable_after = stable_after
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._ws: ClientConnection | None = None
        self._ticks: AsyncGenerator[Quote, None] | None = None
        self._closed = False
        self.state: StreamState = "idle"
        self.stats = StreamStats()

    def __repr__(self) -> str:
        host = urlsplit(self._settings.stream_url).netloc
        return f"TickStream(host={host!r}, account={self._account_id!r}, state={self.state!r})"

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Add symbols; sent at once when connected, and after every reconnect."""
        new = [s for s in symbols if s not in self._symbols]
        self._symbols.update(dict.fromkeys(new))
        if new and self._ws is not None:
            # If the connection just died, the reconnect subscribes to the whole set.
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(wire.subscribe_message(new))

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Forget symbols. The sdk wire has no unsubscribe message, so the server keeps
        sending them until the next reconnect, and they are still yielded until then."""
        for s in symbols:
            self._symbols.pop(s, None)

    async def aclose(self) -> None:
        """Stop: close the live connection; iteration ends."""
        self._closed = True
        self.state = "closed"
        if self._ws is not None:
            await self._ws.close()
        # A generator suspended in another task's ``anext`` ends on its own once the
        # connection is closed; only an idle one can (and must) be closed here.
        if self._ticks is not None and not getattr(self._ticks, "ag_running", False):
            await self._ticks.aclose()

    def _url(self) -> str:
        url = self._settings.stream_url
        query = {"id": self._account_id}
        if self._settings.stream_auth == "query" and self._settings.api_key is not None:
            query["api_key"] = self._settings.api_key.get_secret_value()
        sep = "&" if urlsplit(url).query else "?"
        return url + sep + urlencode(query)

    def _headers(self) -> dict[str, str]:
        if self._settings.stream_auth == "query" and self._settings.auth_mode == "api_key":
            return {}
        return auth_headers(self._settings)

    def __aiter__(self) -> AsyncGenerator[Quote, None]:
        # One generator for the stream's life: iterating again (a second ``async for``)
        # continues on the same connection instead of opening another. ``async for`` gets
        # the generator itself, so a tick passes through no extra coroutine.
        if self._ticks is None:
            self._ticks = self._run()
        return self._ticks

    async def __anext__(self) -> Quote:
        return await anext(self.__aiter__())

    async def _run(self) -> AsyncGenerator[Quote, None]:
        attempt = 0
        failing_since: float | None = None
        host = urlsplit(self._settings.stream_url).netloc
        try:
            while not self._closed:
                self.state = "connecting"
                opened_at: float | None = None
                try:
                    async with connect(
                        self._url(),
                        additional_headers=self._headers(),
                        open_timeout=self._open_timeout,
                        ping_interval=self._ping_interval,
                        ping_timeout=self._ping_timeout,
                        close_timeout=2.0,
                        # Ticks are ~100-byte JSON frames: per-message deflate would cost CPU on
                        # every tick and save little bandwidth.
                        compression=None,
                        logger=_ws_log,
                    ) as ws:
                        opened_at = time.monotonic()
                        self._ws = ws
                        if self._symbols:
                            await ws.send(wire.subscribe_message(list(self._symbols)))
                        self.state = "connected"
                        if self.stats.connects:
                            self.stats.reconnects += 1
                        self.stats.connects += 1
                        if failing_since is not None:
                            log.info(
                                "stream to %s for %s back after %.1fs",
                                host,
                                self._account_id,
                                time.monotonic() - failing_since,
                            )
                            failing_since = None
                        await _maybe_await(self._on_connect() if self._on_connect else None)
                        async for frame in ws:
                            tick = self._handle(frame)
                            if tick.__class__ is str:
                                await self._server_error(tick)
                            elif tick is not None:
                                yield tick  # type: ignore[misc]
                    problem = "closed by server"
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    if status in (401, 403):
                        self.state = "closed"
                        raise AuthenticationError(
                            f"stream handshake refused with HTTP {status}",
                            status_code=status,
                            endpoint="stream",
                        ) from None
                    if status == 404:
                        self.state = "closed"
                        raise AccountNotFoundError(
                            f"stream: account {self._account_id} not registered",
                            status_code=status,
                            endpoint="stream",
                        ) from None
                    problem = f"handshake HTTP {status}"
                except InvalidURI:
                    self.state = "closed"
                    raise ConfigurationError(
                        f"stream URL for host {host!r} is not a valid ws:// or wss:// URL"
                    ) from None
                except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
                    problem = f"{type(exc).__name__}: {str(exc)[:120]}"
                finally:
                    self._ws = None
                if self._closed:
                    break
                if opened_at is not None and time.monotonic() - opened_at >= self._stable_after:
                    attempt = 0
                delay = self._backoff.delay(attempt)
                attempt += 1
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.warning(
                        "stream to %s for %s lost (%s); reconnecting with back-off",
                        host,
                        self._account_id,
                        problem,
                    )
                else:
                    log.debug(
                        "stream reconnect attempt %d failed (%s); next in %.2fs",
                        attempt,
                        problem,
                        delay,
                    )
                self.state = "waiting"
                await asyncio.sleep(delay)
        finally:
            self.state = "closed"

    def _handle(self, frame: str | bytes) -> Quote | str | None:
        """A tick, a server error message, or None (unknown type, or malformed: counted)."""
        try:
            message = wire.parse_stream_message(frame)
        except ResponseFormatError as exc:
            self.stats.malformed += 1
            if self.stats.malformed == 1 or self.stats.malformed % 1000 == 0:
                log.warning(
                    "malformed stream frame for %s dropped (%s; %d so far)",
                    self._account_id,
                    exc,
                    self.stats.malformed,
                )
            return None
        if isinstance(message, Quote):
            self.stats.ticks += 1
        return message

    async def _server_error(self, message: str) -> None:
        self.stats.server_errors += 1
        log.warning("stream server error for %s: %s", self._account_id, message)
        await _maybe_await(self._on_server_error(message) if self._on_server_error else None)


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if result is not None and inspect.isawaitable(result):
        await result
