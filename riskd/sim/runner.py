"""``SimServer``: the simulator served by uvicorn on loopback, in a thread or in your loop.

Threading model. All simulator state (market, broker, stream hub) belongs to the server's
event loop. Control calls from any other thread (a test's main thread) are *marshalled* onto
that loop with ``call_soon_threadsafe`` and the caller waits for the result, instead of
guarding the state with a lock: a price change has to reach asyncio queues (stream
subscribers), which only their own loop may touch, and a single owner means every request
and control call sees a consistent state without any locking on the tick path. The fault
injector and the request log are leaves shared with the test thread and carry their own
small locks, so configuring faults or reading the log never waits for the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from riskd.embedded_server import GRACE_SECONDS, EmbeddedUvicorn, is_loopback
from riskd.sim import wire
from riskd.sim.auth import DEFAULT_API_KEY
from riskd.sim.clock import Clock
from riskd.sim.faults import FaultInjector
from riskd.sim.market import DEFAULT_SPECS, Quote, SymbolSpec
from riskd.sim.requestlog import RequestLog
from riskd.sim.server import build_app
from riskd.sim.simulator import Simulator
from riskd.sim.stream import CLOSE_SERVICE_RESTART

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_CONTROL_TIMEOUT = 10.0


class _WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, minus a spurious error log on denial responses.

    After a ``websocket.http.response`` denial (our 401/404/503 handshake refusals) uvicorn
    0.54 never marks the handshake complete and logs "ASGI callable returned without
    completing handshake" at ERROR for every refusal; the client gets the right status.
    Same fix as the open upstream PR Kludex/uvicorn#3138.
    """

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True


class SimServer:
    """The API2Trade bridge simulator, listening on ``host:port`` (loopback by default).

    ``port=0`` picks a free port (read it from :attr:`port` after :meth:`start`). Use it as a
    context manager, or :meth:`start`/:meth:`stop`; inside a running event loop use
    ``async with`` (or :meth:`start_async`/:meth:`stop_async`). Control methods may be called
    from any thread, before, during or after serving.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 1,
        tick_rate: float = 10.0,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        users: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        specs: Iterable[SymbolSpec] = DEFAULT_SPECS,
        stream_queue_size: int = 1024,
        snapshot_on_subscribe: bool = True,
        request_log_size: int | None = 100_000,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self.sim = Simulator(
            seed=seed,
            tick_rate=tick_rate,
            clock=clock,
            api_keys=api_keys,
            users=users,
            specs=specs,
            stream_queue_size=stream_queue_size,
            snapshot_on_subscribe=snapshot_on_subscribe,
            request_log_size=request_log_size,
        )
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uvicorn: EmbeddedUvicorn | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (the real one when constructed with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._url_host()}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/stream``."""
        return f"ws://{self._url_host()}:{self.port}/stream"

    @property
    def api_key(self) -> str:
        """The first accepted API key (what to give a client)."""
        return self.sim.auth.api_keys[0]

    @property
    def faults(self) -> FaultInjector:
        """Fault knobs; thread-safe, take effect on the next request."""
        return self.sim.faults

    @property
    def requests(self) -> RequestLog:
        """The request log; thread-safe."""
        return self.sim.requests

    # -- lifecycle: in a thread -------------------------------------------------------------

    def start(self) -> SimServer:
        """Serve in a daemon thread; returns once the server is listening."""
        if self._thread is not None or self._task is not None:
            raise RuntimeError("the simulator is already started")
        sock = self._bind()
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(sock, started.set))
            except BaseException as exc:  # reported to start() below, or logged
                failure.append(exc)
                if started.is_set():
                    log.exception("simulator thread failed")
            finally:
                started.set()

        self._thread = threading.Thread(target=run, name=f"riskd-sim-{self._port}", daemon=True)
        self._thread.start()
        started.wait(_CONTROL_TIMEOUT)
        if failure or self._uvicorn is None or not self._uvicorn.started:
            self._thread.join(1.0)
            self._thread = None
            self._port = None
            raise RuntimeError("the simulator failed to start") from (
                failure[0] if failure else None
            )
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: held requests are released, streams closed, the thread joined."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(self._request_exit)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the simulator thread did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- lifecycle: in the caller's event loop ----------------------------------------------

    async def start_async(self) -> SimServer:
        """Serve as a task of the running loop; returns once the server is listening."""
        if self._thread is not None or self._task is not None:
            raise RuntimeError("the simulator is already started")
        sock = self._bind()
        started = asyncio.Event()
        self._task = asyncio.create_task(self._serve(sock, started.set), name="riskd-sim")
        waiter = asyncio.create_task(started.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            task, self._task = self._task, None
            task.result()  # raises the startup failure
            raise RuntimeError("the simulator stopped during startup")
        return self

    async def stop_async(self) -> None:
        """Stop a server started with :meth:`start_async` and wait for it to end."""
        task = self._task
        if task is None:
            return
        self._request_exit()
        await task
        self._task = None

    async def __aenter__(self) -> SimServer:
        return await self.start_async()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop_async()

    # -- controls (any thread) --------------------------------------------------------------

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` on the server's loop (directly when already there, or not serving)."""
        loop = self._loop
        if loop is None or not loop.is_running() or _running_loop() is loop:
            return fn(*args, **kwargs)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(_CONTROL_TIMEOUT)

    def create_account(
        self,
        balance: float = 100_000.0,
        currency: str = "USD",
        leverage: int = 100,
        credit: float = 0.0,
        commission_per_lot: float = 0.0,
        login: str | None = None,
        server: str = "SimBroker-Demo",
    ) -> str:
        """Register an account; returns its UUID (deterministic for a given seed)."""
        return self.call(
            self.sim.create_account,
            balance=balance,
            currency=currency,
            leverage=leverage,
            credit=credit,
            commission_per_lot=commission_per_lot,
            login=login,
            server=server,
        )

    def delete_account(self, account_id: str) -> bool:
        """Forget an account and close its streams; False when it was not registered."""
        return self.call(self.sim.delete_account, account_id)

    def set_balance(self, account_id: str, balance: float, credit: float | None = None) -> None:
        """Overwrite balance (and credit when given); writes no history row."""
        self.call(self.sim.set_balance, account_id, balance, credit)

    def set_connected(self, account_id: str, connected: bool) -> None:
        """What ``/CheckConnect`` reports for the account."""
        self.call(self.sim.set_connected, account_id, connected)

    def open_position(
        self,
        account_id: str,
        symbol: str,
        side: str,
        volume: float,
        open_price: float | None = None,
        stop_loss: float = 0.0,
        take_profit: float = 0.0,
        comment: str = "",
        open_time: datetime | str | None = None,
        magic: int = 0,
    ) -> int:
        """Open a position directly (demo/test setup, no margin check); returns the ticket."""
        return self.call(
            self.sim.open_position,
            account_id,
            symbol,
            side,
            volume,
            open_price=open_price,
            stop_loss=stop_loss,
            take_profit=take_profit,
            comment=comment,
            open_time=open_time,
            magic=magic,
        )

    def set_swap(self, account_id: str, ticket: int, swap: float) -> None:
        """Set an open position's accumulated swap (account currency; negative is a cost)."""
        self.call(self.sim.set_swap, account_id, ticket, swap)

    def quote(self, symbol: str) -> Quote:
        """The current quote of ``symbol``."""
        return self.call(self.sim.quote, symbol)

    def set_price(self, symbol: str, bid: float, ask: float | None = None) -> Quote:
        """Set a price (ask defaults to bid + usual spread); triggers and streams react."""
        return self.call(self.sim.set_price, symbol, bid, ask)

    def set_prices(self, ticks: Iterable[Sequence[Any]]) -> int:
        """Publish ``[(symbol, bid), (symbol, bid, ask), ...]`` in one call."""
        return self.call(self.sim.set_prices, list(ticks))

    def script_prices(
        self, symbol: str, bids: Sequence[float], interval: float | None = None
    ) -> None:
        """Play ``bids`` every ``interval`` s, or one per :meth:`step_script` (None)."""
        self.call(self.sim.script_prices, symbol, list(bids), interval)

    def step_script(self, symbol: str) -> Quote | None:
        """Play the next scripted price; None when the script has none left."""
        return self.call(self.sim.step_script, symbol)

    def script_remaining(self, symbol: str) -> int:
        """How many scripted prices of ``symbol`` are still to be played."""
        return self.call(self.sim.script_remaining, symbol)

    def set_tick_rate(self, rate: float) -> None:
        """Random-walk ticks per second across all symbols (0: only set/scripted prices)."""
        self.call(self.sim.set_tick_rate, rate)

    def set_time(self, time: datetime | str | None = None) -> None:
        """Freeze the simulator clock at ``time`` (None: back to the configured clock)."""
        self.call(self.sim.set_time, time)

    def advance_time(self, seconds: float) -> datetime:
        """Move the frozen clock forward (freezing it at now first); returns the new time."""
        return self.call(self.sim.advance_time, seconds)

    def drop_streams(self, code: int = CLOSE_SERVICE_RESTART) -> int:
        """Close every live stream connection now; returns how many were closed."""
        return self.call(self.sim.drop_streams, code)

    def stream_connections(self) -> int:
        """How many stream connections are live."""
        return self.call(self.sim.stream_connections)

    def stream_stats(self) -> list[dict[str, object]]:
        """Per live stream connection: account, symbols, queued and dropped messages."""
        return self.call(self.sim.stream_stats)

    def reset_faults(self) -> None:
        """Remove every injected fault (``faults.reset()``)."""
        self.sim.faults.reset()

    def summary(self, account_id: str) -> wire.JsonObject:
        """What ``/AccountSummary`` would answer now."""
        return self.call(self.sim.summary, account_id)

    def positions(self, account_id: str) -> list[wire.JsonObject]:
        """What ``/Positions`` would answer now."""
        return self.call(self.sim.positions, account_id)

    # -- internals --------------------------------------------------------------------------

    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def _bind(self) -> socket.socket:
        # Bind here, in the caller, so a busy port raises OSError to the caller instead of
        # uvicorn calling sys.exit inside the server thread.
        if not is_loopback(self.host):
            log.warning("simulator listening on non-loopback address %s", self.host)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto is
        # IPPROTO_TCP, and without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock

    def _request_exit(self) -> None:
        self.sim.begin_shutdown()
        if self._uvicorn is not None:
            self._uvicorn.request_exit()

    async def _serve(self, sock: socket.socket, on_started: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        config = uvicorn.Config(
            build_app(self.sim),
            log_config=None,
            log_level=self._log_level,
            access_log=False,
            lifespan="off",
            ws=_WebSocketProtocol,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        self._uvicorn = EmbeddedUvicorn(config, on_started)
        try:
            await self.sim.start()
            await self._uvicorn.serve(sockets=[sock])
        finally:
            await self.sim.stop()
            sock.close()
            self._loop = None


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
