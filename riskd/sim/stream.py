"""The quote stream's fan-out: subscriptions, one bounded send queue per connection, sessions.

A price change is serialised once and offered to the queue of every connection subscribed to
that symbol. Offering never blocks: when a slow client's queue is full its oldest message is
dropped (and counted), so one stalled reader cannot hold up the tick path or other clients.
Each connection has its own sender task that drains its queue into the socket.

The handshake (auth, account, connect faults) belongs to :mod:`riskd.sim.server`; this module
starts once the connection is accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.websockets import WebSocket, WebSocketDisconnect

from riskd.sim import wire
from riskd.sim.faults import FaultInjector
from riskd.sim.market import Market, Quote

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_SERVICE_RESTART = 1012


@dataclass(frozen=True, slots=True)
class _Close:
    code: int


class StreamConnection:
    """One accepted stream client: its account, its symbols and its send queue."""

    def __init__(self, account_id: str, queue_size: int) -> None:
        self.account_id = account_id
        self.symbols: set[str] = set()
        self.dropped = 0  # messages discarded because this client read too slowly
        self.close_code: int | None = None
        self._queue: asyncio.Queue[str | _Close] = asyncio.Queue(maxsize=max(1, queue_size))

    @property
    def queued(self) -> int:
        """Messages waiting to be sent."""
        return self._queue.qsize()

    def offer(self, text: str) -> None:
        """Queue ``text`` for sending; drops the oldest queued message when full."""
        if self.close_code is not None:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(text)

    def close(self, code: int) -> None:
        """Close the connection now: anything still queued is discarded."""
        if self.close_code is not None:
            return
        self.close_code = code
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_Close(code))

    async def run_sender(
        self, send: Callable[[str], Awaitable[None]], close: Callable[[int], Awaitable[None]]
    ) -> None:
        """Drain the queue into ``send`` until :meth:`close` is called."""
        while True:
            item = await self._queue.get()
            if isinstance(item, _Close):
                await close(item.code)
                return
            await send(item)


class StreamHub:
    """All live stream connections and who is subscribed to what.

    Owned by the simulator's event loop thread (asyncio queues are not thread-safe).
    """

    def __init__(
        self,
        market: Market,
        faults: FaultInjector,
        *,
        queue_size: int = 1024,
        snapshot_on_subscribe: bool = True,
    ) -> None:
        self._market = market
        self._faults = faults
        self._queue_size = queue_size
        self.snapshot_on_subscribe = snapshot_on_subscribe
        self._connections: set[StreamConnection] = set()
        self._by_symbol: dict[str, set[StreamConnection]] = {}

    def __len__(self) -> int:
        return len(self._connections)

    def open(self, account_id: str) -> StreamConnection:
        """Register a newly accepted connection."""
        conn = StreamConnection(account_id, self._queue_size)
        self._connections.add(conn)
        return conn

    def discard(self, conn: StreamConnection) -> None:
        """Forget a connection and its subscriptions."""
        self._connections.discard(conn)
        for symbol in conn.symbols:
            subscribers = self._by_symbol.get(symbol)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self._by_symbol[symbol]
        conn.symbols.clear()

    def stats(self) -> list[dict[str, object]]:
        """Per live connection: account, subscribed symbols, queued and dropped messages."""
        return [
            {
                "account_id": c.account_id,
                "symbols": sorted(c.symbols),
                "queued": c.queued,
                "dropped": c.dropped,
            }
            for c in self._connections
        ]

    def close_all(self, code: int = CLOSE_SERVICE_RESTART) -> int:
        """Close every live connection with ``code``; returns how many there were."""
        connections = list(self._connections)
        for conn in connections:
            conn.close(code)
        return len(connections)

    def close_account(self, account_id: str, code: int = CLOSE_GOING_AWAY) -> None:
        """Close the connections of one account (it was deleted)."""
        for conn in list(self._connections):
            if conn.account_id == account_id:
                conn.close(code)

    def broadcast(self, quote: Quote) -> None:
        """Offer ``quote`` to its subscribers, possibly corrupted by an injected stream fault."""
        subscribers = self._by_symbol.get(quote.symbol)
        if not subscribers:
            return
        text = self._faults.corrupt_quote(wire.quote_json(quote)) or wire.stream_quote_text(quote)
        for conn in subscribers:
            conn.offer(text)

    def handle_message(self, conn: StreamConnection, text: str) -> None:
        """Apply one client message: ``{"action": "subscribe"|"unsubscribe", "symbols": [...]}``.

        Subscriptions are additive. Problems are answered with a ``{"type": "error"}`` message
        and never close the connection.
        """
        try:
            message = json.loads(text)
        except ValueError:
            conn.offer(wire.stream_error_text("invalid JSON"))
            return
        if not isinstance(message, dict):
            conn.offer(wire.stream_error_text("expected a JSON object"))
            return
        action = message.get("action")
        if action not in ("subscribe", "unsubscribe"):
            conn.offer(wire.stream_error_text(f"unknown action {action!r}"))
            return
        symbols = message.get("symbols")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            conn.offer(wire.stream_error_text("'symbols' must be a list of symbol names"))
            return
        unknown = [s for s in symbols if not self._market.has(s.upper())]
        if unknown:
            conn.offer(wire.stream_error_text(f"unknown symbol(s): {', '.join(unknown)}"))
        for symbol in (s.upper() for s in symbols if s not in unknown):
            if action == "subscribe":
                self._subscribe(conn, symbol)
            else:
                self._unsubscribe(conn, symbol)

    async def run_session(self, websocket: WebSocket, conn: StreamConnection) -> None:
        """Serve an accepted connection until either side closes it."""
        sender = asyncio.create_task(conn.run_sender(websocket.send_text, websocket.close))
        receiver = asyncio.create_task(self._receive(websocket, conn))
        try:
            await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.discard(conn)
            for task in (sender, receiver):
                task.cancel()
            results = await asyncio.gather(sender, receiver, return_exceptions=True)
            for result in results:
                # A client vanishing mid-send is normal; anything else is a simulator bug.
                if isinstance(result, Exception) and not isinstance(
                    result, WebSocketDisconnect | OSError
                ):
                    log.error("stream session failed", exc_info=result)

    async def _receive(self, websocket: WebSocket, conn: StreamConnection) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                text = data.decode("utf-8", errors="replace")
            self.handle_message(conn, text)

    def _subscribe(self, conn: StreamConnection, symbol: str) -> None:
        if symbol in conn.symbols:
            return
        conn.symbols.add(symbol)
        self._by_symbol.setdefault(symbol, set()).add(conn)
        if self.snapshot_on_subscribe:
            # Clients get a price at once instead of waiting for the next tick (which may never
            # come with a quiet market).
            conn.offer(wire.stream_quote_text(self._market.quote(symbol)))

    def _unsubscribe(self, conn: StreamConnection, symbol: str) -> None:
        conn.symbols.discard(symbol)
        subscribers = self._by_symbol.get(symbol)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers:
                del self._by_symbol[symbol]
