"""The simulator's state and data flow, owned by one asyncio event loop.

::

    random walk / script / set_price
              |
              v
           Market  --price-->  Broker.on_price (pending fills, SL/TP)
              |
              +-------------->  StreamHub.broadcast (subscribers' queues)

REST requests read and change the same objects from the same loop, so nothing here takes a
lock: :class:`riskd.sim.runner.SimServer` marshals calls from other threads onto this loop.
The control methods (``create_account``, ``set_price``...) are the in-process control
surface; ``/_sim/<method>`` exposes the same methods over HTTP with the same keyword names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from riskd.sim import wire
from riskd.sim.auth import DEFAULT_API_KEY, Auth
from riskd.sim.broker import Broker
from riskd.sim.clock import Clock, ManualClock, system_clock
from riskd.sim.errors import SimError
from riskd.sim.faults import FaultInjector
from riskd.sim.market import DEFAULT_SPECS, Market, PriceScript, Quote, SymbolSpec
from riskd.sim.requestlog import RequestLog
from riskd.sim.stream import CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART, StreamHub

log = logging.getLogger(__name__)

_MIN_TICK_SLEEP = 0.005  # above this rate, ticks are produced in batches per wake-up
_MAX_BACKLOG_SECONDS = 0.25  # after a stall, do not replay more than this much of ticks


def _log_failure(task: asyncio.Task[None]) -> None:
    """Background tasks only end by cancellation; anything else is a simulator bug."""
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator task %s failed", task.get_name(), exc_info=task.exception())


def _as_time(value: datetime | str) -> datetime:
    if isinstance(value, str):
        try:
            return wire.parse_time(value)
        except ValueError as exc:
            raise SimError(f"not an ISO 8601 time: {value!r}") from exc
    if value.tzinfo is None:
        raise SimError("times must be timezone-aware")
    return value.astimezone(UTC)


class Simulator:
    """Market, broker, faults, request log and stream hub of one simulated bridge."""

    def __init__(
        self,
        *,
        seed: int = 1,
        tick_rate: float = 10.0,
        clock: Clock | None = None,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        users: Mapping[str, str] | None = None,
        specs: Iterable[SymbolSpec] = DEFAULT_SPECS,
        stream_queue_size: int = 1024,
        snapshot_on_subscribe: bool = True,
        request_log_size: int | None = 100_000,
    ) -> None:
        self._base_clock: Clock = clock if clock is not None else system_clock
        self._frozen: ManualClock | None = None
        self.market = Market(specs, seed=seed, clock=self.now)
        self.broker = Broker(self.market, self.now, seed=seed)
        self.faults = FaultInjector(seed)
        self.requests = RequestLog(request_log_size)
        self.auth = Auth(api_keys, users)
        self.hub = StreamHub(
            self.market,
            self.faults,
            queue_size=stream_queue_size,
            snapshot_on_subscribe=snapshot_on_subscribe,
        )
        self._tick_rate = self._check_rate(tick_rate)
        self._scripts: dict[str, PriceScript] = {}
        self._script_tasks: dict[str, asyncio.Task[None]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._rate_changed: asyncio.Event | None = None
        self._closing: asyncio.Event | None = None

    def now(self) -> datetime:
        """The simulator's current time: UTC, truncated to the millisecond the wire shows."""
        clock = self._frozen if self._frozen is not None else self._base_clock
        t = clock().astimezone(UTC)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    # -- lifecycle (on the loop) ------------------------------------------------------------

    async def start(self) -> None:
        """Start the background tasks (random walk, timed scripts)."""
        self._closing = asyncio.Event()
        self._rate_changed = asyncio.Event()
        self._ticker = asyncio.create_task(self._run_ticker(), name="riskd-sim-ticker")
        self._ticker.add_done_callback(_log_failure)
        for script in self._scripts.values():
            self._start_script(script)

    @property
    def closing(self) -> bool:
        """True once shutdown has begun."""
        return self._closing is not None and self._closing.is_set()

    def begin_shutdown(self) -> None:
        """Release held requests, close stream connections and stop background tasks."""
        if self._closing is not None:
            self._closing.set()
        self.hub.close_all(CLOSE_GOING_AWAY)
        for task in (self._ticker, *self._script_tasks.values()):
            if task is not None:
                task.cancel()

    async def stop(self) -> None:
        """:meth:`begin_shutdown` and wait for the background tasks to end."""
        self.begin_shutdown()
        tasks = [t for t in (self._ticker, *self._script_tasks.values()) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ticker = None
        self._script_tasks.clear()

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless shutdown begins first; True when the full time passed.

        Injected latency and hangs use this, so stopping the server never waits for them.
        """
        if self._closing is None:
            await asyncio.sleep(seconds)
            return True
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return True
        return False

    # -- the data flow ----------------------------------------------------------------------

    def publish(self, quote: Quote) -> None:
        """A price changed: fire the broker's triggers, then tell the stream subscribers."""
        self.broker.on_price(quote.symbol)
        self.hub.broadcast(quote)

    async def _run_ticker(self) -> None:
        assert self._rate_changed is not None
        loop = asyncio.get_running_loop()
        owed = 0.0
        last = loop.time()
        while True:
            rate = self._tick_rate
            if rate <= 0:
                self._rate_changed.clear()
                await self._rate_changed.wait()
                owed, last = 0.0, loop.time()
                continue
            # Sleep until the next tick is due, or until the rate changes: a low rate's long
            # sleep must not hold back a higher rate set meanwhile.
            self._rate_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(1.0 / rate, _MIN_TICK_SLEEP)):
                    await self._rate_changed.wait()
            now = loop.time()
            # The time slept ran at the rate it started with.
            owed = min(owed + (now - last) * rate, rate * _MAX_BACKLOG_SECONDS + 1)
            last = now
            due = int(owed)
            owed -= due
            for _ in range(due):
                # Symbols playing a script belong to the script, not to the random walk.
                quote = self.market.random_tick(skip=self._scripts)
                if quote is None:
                    break
                self.publish(quote)

    # -- controls: accounts -----------------------------------------------------------------

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
        """Register an account directly; returns its UUID. ``commission_per_lot`` is the
        round-turn commission charged when a position opens (shown negative on it)."""
        account = self.broker.create_account(
            balance=balance,
            currency=currency,
            leverage=leverage,
            credit=credit,
            commission_per_lot=commission_per_lot,
            login=login,
            server=server,
        )
        return account.id

    def delete_account(self, account_id: str) -> bool:
        """Forget an account (and close its stream connections)."""
        self.hub.close_account(account_id)
        return self.broker.delete(account_id)

    def set_balance(self, account_id: str, balance: float, credit: float | None = None) -> None:
        """Overwrite balance (and credit when given); no history row is written."""
        self.broker.set_balance(self.broker.require(account_id), balance, credit)

    def set_connected(self, account_id: str, connected: bool) -> None:
        """What ``/CheckConnect`` reports for the account."""
        self.broker.require(account_id).connected = bool(connected)

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
        """Open a position directly (no margin check); returns its ticket."""
        pos = self.broker.open_position(
            self.broker.require(account_id),
            symbol,
            side,
            volume,
            open_price=open_price,
            stop_loss=stop_loss,
            take_profit=take_profit,
            comment=comment,
            open_time=None if open_time is None else _as_time(open_time),
            magic=magic,
        )
        return pos.ticket

    def set_swap(self, account_id: str, ticket: int, swap: float) -> None:
        """Set an open position's accumulated swap (account currency, negative = cost)."""
        self.broker.set_swap(self.broker.require(account_id), ticket, swap)

    # -- controls: prices -------------------------------------------------------------------

    def quote(self, symbol: str) -> Quote:
        """The current quote of ``symbol``."""
        return self.market.quote(symbol)

    def set_price(self, symbol: str, bid: float, ask: float | None = None) -> Quote:
        """Set a price (ask defaults to bid + usual spread) and publish it like any tick."""
        quote = self.market.set_price(symbol, bid, ask)
        self.publish(quote)
        return quote

    def set_prices(self, ticks: Iterable[Sequence[Any]]) -> int:
        """Publish many prices in order: ``[[symbol, bid], [symbol, bid, ask], ...]``.

        One call for a whole batch, for drivers that push thousands of ticks per second.
        """
        count = 0
        for tick in ticks:
            if len(tick) not in (2, 3):
                raise SimError(f"a tick is [symbol, bid] or [symbol, bid, ask], got {tick!r}")
            self.set_price(tick[0], tick[1], tick[2] if len(tick) == 3 else None)
            count += 1
        return count

    def script_prices(
        self, symbol: str, bids: Sequence[float], interval: float | None = None
    ) -> None:
        """Play ``bids`` for ``symbol``: every ``interval`` seconds (the first at once), or one
        per :meth:`step_script` call when ``interval`` is None. Replaces an earlier script for
        the symbol; the random walk leaves the symbol alone until the script ends."""
        self.market.instrument(symbol)
        for bid in bids:
            if not (isinstance(bid, int | float) and math.isfinite(bid) and bid > 0):
                raise SimError(f"script prices must be positive numbers, got {bid!r}")
        if interval is not None and interval < 0:
            raise SimError("interval must be >= 0")
        old = self._script_tasks.pop(symbol, None)
        if old is not None:
            old.cancel()
        script = PriceScript(symbol, deque(float(b) for b in bids), interval)
        if not script.bids:
            self._scripts.pop(symbol, None)
            return
        self._scripts[symbol] = script
        if self._closing is not None:  # running: otherwise start() picks it up
            self._start_script(script)

    def step_script(self, symbol: str) -> Quote | None:
        """Play the next scripted price of ``symbol``; None when no script has prices left."""
        script = self._scripts.get(symbol)
        if script is None or not script.bids:
            return None
        quote = self.set_price(symbol, script.bids.popleft())
        if not script.bids and self._scripts.get(symbol) is script:
            del self._scripts[symbol]
        return quote

    def script_remaining(self, symbol: str) -> int:
        """How many scripted prices of ``symbol`` are still to be played."""
        script = self._scripts.get(symbol)
        return 0 if script is None else len(script.bids)

    def set_tick_rate(self, rate: float) -> None:
        """Random-walk ticks per second across all symbols (0: only scripted/set prices)."""
        self._tick_rate = self._check_rate(rate)
        if self._rate_changed is not None:
            self._rate_changed.set()

    @property
    def tick_rate(self) -> float:
        """Random-walk ticks per second."""
        return self._tick_rate

    # -- controls: time and streams ---------------------------------------------------------

    def set_time(self, time: datetime | str | None = None) -> None:
        """Freeze the simulator's clock at ``time``; None goes back to the configured clock."""
        self._frozen = None if time is None else ManualClock(_as_time(time))

    def advance_time(self, seconds: float) -> datetime:
        """Move a frozen clock forward (freezing it at now first if it was running)."""
        if self._frozen is None:
            self._frozen = ManualClock(self.now())
        return self._frozen.advance(seconds)

    def drop_streams(self, code: int = CLOSE_SERVICE_RESTART) -> int:
        """Close every live stream connection now (a stream fault); returns how many."""
        return self.hub.close_all(code)

    def stream_connections(self) -> int:
        """How many stream connections are live."""
        return len(self.hub)

    def stream_stats(self) -> list[dict[str, object]]:
        """Per live stream connection: ``account_id``, ``symbols``, ``queued``, ``dropped``
        (messages discarded because that client read too slowly)."""
        return self.hub.stats()

    def reset_faults(self) -> None:
        """Remove every injected fault."""
        self.faults.reset()

    # -- reads, as the wire shows them ------------------------------------------------------

    def summary(self, account_id: str) -> wire.JsonObject:
        """What ``/AccountSummary`` would answer."""
        return wire.summary_json(self.broker.view(self.broker.require(account_id)))

    def positions(self, account_id: str) -> list[wire.JsonObject]:
        """What ``/Positions`` would answer."""
        view = self.broker.view(self.broker.require(account_id))
        return [wire.position_json(p) for p in view.positions]

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _check_rate(rate: float) -> float:
        if not (math.isfinite(rate) and rate >= 0):
            raise SimError(f"tick rate must be >= 0, got {rate!r}")
        return float(rate)

    def _start_script(self, script: PriceScript) -> None:
        if script.interval is None:
            return
        task = asyncio.create_task(self._play(script), name=f"riskd-sim-script-{script.symbol}")
        task.add_done_callback(_log_failure)
        self._script_tasks[script.symbol] = task

    async def _play(self, script: PriceScript) -> None:
        assert script.interval is not None
        try:
            while True:
                if self.step_script(script.symbol) is None:
                    return
                if not script.bids:
                    return
                await asyncio.sleep(script.interval)
        finally:
            if self._script_tasks.get(script.symbol) is asyncio.current_task():
                del self._script_tasks[script.symbol]
