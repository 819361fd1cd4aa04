"""Deterministic fault injection: what goes wrong, when, and for which endpoint.

Two kinds of knobs, both optionally limited to one endpoint ``path`` (``"/OrderClose"``):

- *counted* faults hit the next N matching requests (``fail_next``, ``hang_next``,
  ``rate_limit_next``, ``queue_retcode``, ``reject_next_streams``, ``close_next_streams``);
  they are consumed first-in first-out, so a test can script "two 503s, then a 429";
- *rates* hit each matching request with a probability drawn from a seeded
  ``random.Random`` (``set_error_rate``, ``set_timeout_rate``, the stream message rates), so a
  given seed and a given request order always produce the same faults.

The injector only decides; the server acts (see :mod:`riskd.sim.server`). It is shared between
the server's event loop and the test thread that configures it, so every method takes a lock:
each is a few dictionary operations, never an await, so holding it cannot stall the loop.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

HttpFaultKind = Literal["error", "hang", "rate_limit"]
StreamConnectKind = Literal["reject", "close"]

TRADE_PATHS = frozenset({"/OrderSend", "/OrderClose", "/OrderModify"})


@dataclass(frozen=True, slots=True)
class HttpFault:
    """What to do to one request instead of (or, for ``hang`` with ``execute``, after) serving it.

    - ``error``: answer ``status`` (5xx) with a JSON message;
    - ``rate_limit``: answer 429 with ``Retry-After: retry_after`` (when not None);
    - ``hang``: hold the request ``seconds`` (longer than a client timeout), then answer 504.
      With ``execute`` the request is carried out first and its normal answer is held instead:
      the client times out although the action happened.
    """

    kind: HttpFaultKind
    status: int = 503
    seconds: float = 0.0
    execute: bool = False
    retry_after: float | None = None

    @property
    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value: seconds, fractional allowed (``"0.2"``)."""
        return None if self.retry_after is None else f"{self.retry_after:g}"


@dataclass(frozen=True, slots=True)
class RetcodeFault:
    """A retcode to answer one trade request with; ``execute`` says whether the trade still
    happens (10012 TIMEOUT with ``execute=True``: "outcome unknown, but it did happen")."""

    retcode: int
    execute: bool


@dataclass(frozen=True, slots=True)
class StreamConnectFault:
    """``reject``: refuse the handshake with HTTP ``status``; ``close``: accept, then close."""

    kind: StreamConnectKind
    status: int = 503


@dataclass(slots=True)
class _Counted:
    fault: HttpFault | RetcodeFault | StreamConnectFault
    remaining: int
    path: str | None


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be within [0, 1], got {rate!r}")
    return rate


def _check_count(n: int) -> int:
    if n < 0:
        raise ValueError(f"count must be >= 0, got {n!r}")
    return n


def _check_status(status: int, low: int = 500) -> int:
    if not low <= status <= 599:
        raise ValueError(f"status must be within [{low}, 599], got {status!r}")
    return status


class FaultInjector:
    """All fault knobs of one simulator; see the module docstring for the model."""

    def __init__(self, seed: int = 1) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._latency: dict[str | None, tuple[float, float]] = {}
        self._http_next: list[_Counted] = []
        self._http_rates: dict[tuple[HttpFaultKind, str | None], tuple[float, HttpFault]] = {}
        self._retcodes: list[_Counted] = []
        self._stream_next: list[_Counted] = []
        self._reset()

    def _reset(self) -> None:
        # Containers are cleared in place: _push may hold a reference taken before the lock.
        self._rng = random.Random(f"faults:{self._seed}")
        for container in (
            self._latency,
            self._http_next,
            self._http_rates,
            self._retcodes,
            self._stream_next,
        ):
            container.clear()
        self._malformed_rate = 0.0
        self._bad_tick_rate = 0.0

    def reset(self) -> None:
        """Remove every fault and re-seed, as if freshly created."""
        with self._lock:
            self._reset()

    # -- HTTP knobs -------------------------------------------------------------------------

    def set_latency(self, seconds: float, *, jitter: float = 0.0, path: str | None = None) -> None:
        """Delay every matching request by ``seconds`` plus up to ``jitter`` (uniform).

        A path-specific latency replaces the global one for that path. 0 removes it.
        """
        if seconds < 0 or jitter < 0:
            raise ValueError("latency and jitter must be >= 0")
        with self._lock:
            if seconds == 0 and jitter == 0:
                self._latency.pop(path, None)
            else:
                self._latency[path] = (seconds, jitter)

    def fail_next(self, n: int = 1, *, status: int = 503, path: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` (5xx)."""
        self._push_http(HttpFault("error", status=_check_status(status)), n, path)

    def set_error_rate(self, rate: float, *, status: int = 503, path: str | None = None) -> None:
        """Answer each matching request with ``status`` with probability ``rate`` (0 removes)."""
        self._set_rate("error", rate, HttpFault("error", status=_check_status(status)), path)

    def hang_next(
        self, n: int = 1, *, seconds: float = 30.0, execute: bool = False, path: str | None = None
    ) -> None:
        """Hold the next ``n`` matching requests for ``seconds`` (see :class:`HttpFault`)."""
        self._push_http(HttpFault("hang", status=504, seconds=seconds, execute=execute), n, path)

    def set_timeout_rate(
        self, rate: float, *, seconds: float = 30.0, execute: bool = False, path: str | None = None
    ) -> None:
        """Hang each matching request with probability ``rate`` (0 removes)."""
        fault = HttpFault("hang", status=504, seconds=seconds, execute=execute)
        self._set_rate("hang", rate, fault, path)

    def rate_limit_next(
        self, n: int = 1, *, retry_after: float | None = 1.0, path: str | None = None
    ) -> None:
        """Answer the next ``n`` matching requests 429 with ``Retry-After: retry_after``."""
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        self._push_http(HttpFault("rate_limit", status=429, retry_after=retry_after), n, path)

    def queue_retcode(
        self, retcode: int, *, execute: bool = False, times: int = 1, path: str | None = None
    ) -> None:
        """Answer the next ``times`` trade requests (OrderSend/OrderClose/OrderModify, or only
        ``path``) with ``retcode``; with ``execute`` the trade is carried out anyway."""
        if path is not None and path not in TRADE_PATHS:
            raise ValueError(f"retcodes only apply to {sorted(TRADE_PATHS)}, not {path!r}")
        self._push(self._retcodes, RetcodeFault(int(retcode), execute), times, path)

    # -- stream knobs -----------------------------------------------------------------------

    def reject_next_streams(self, n: int = 1, *, status: int = 503) -> None:
        """Refuse the next ``n`` stream handshakes with HTTP ``status``."""
        fault = StreamConnectFault("reject", _check_status(status, low=400))
        self._push(self._stream_next, fault, n, None)

    def close_next_streams(self, n: int = 1) -> None:
        """Accept the next ``n`` stream connections, then close them at once."""
        self._push(self._stream_next, StreamConnectFault("close"), n, None)

    def set_stream_malformed_rate(self, rate: float) -> None:
        """Replace each quote message with probability ``rate`` by a malformed one (not JSON,
        or JSON with fields missing)."""
        with self._lock:
            self._malformed_rate = _check_rate(rate)

    def set_stream_bad_tick_rate(self, rate: float) -> None:
        """Replace each quote message with probability ``rate`` by a well-formed quote with a
        broken price (zero, negative, or ask below bid)."""
        with self._lock:
            self._bad_tick_rate = _check_rate(rate)

    # -- decisions (called by the server) ---------------------------------------------------

    def latency(self, path: str) -> float:
        """Seconds to delay a request to ``path``."""
        with self._lock:
            rule = self._latency.get(path) or self._latency.get(None)
            if rule is None:
                return 0.0
            seconds, jitter = rule
            return seconds + (self._rng.uniform(0.0, jitter) if jitter else 0.0)

    def http_fault(self, path: str) -> HttpFault | None:
        """The fault for this request, if any: counted faults first, then rates."""
        with self._lock:
            fault = _take(self._http_next, path)
            if fault is not None:
                assert isinstance(fault, HttpFault)
                return fault
            for (_kind, rule_path), (rate, rule) in self._http_rates.items():
                if rule_path in (None, path) and self._rng.random() < rate:
                    return rule
            return None

    def trade_retcode(self, path: str) -> RetcodeFault | None:
        """The injected retcode for this trade request, if one is queued."""
        with self._lock:
            fault = _take(self._retcodes, path)
            assert fault is None or isinstance(fault, RetcodeFault)
            return fault

    def stream_connect(self) -> StreamConnectFault | None:
        """The fault for this stream handshake, if one is queued."""
        with self._lock:
            fault = _take(self._stream_next, None)
            assert fault is None or isinstance(fault, StreamConnectFault)
            return fault

    def corrupt_quote(self, quote: Mapping[str, Any]) -> str | None:
        """A broken replacement for this stream quote message, or None to send it as is."""
        with self._lock:
            if not (self._malformed_rate or self._bad_tick_rate):
                return None
            if self._malformed_rate and self._rng.random() < self._malformed_rate:
                return self._malformed(quote)
            if self._bad_tick_rate and self._rng.random() < self._bad_tick_rate:
                return self._bad_tick(quote)
            return None

    # -- internals --------------------------------------------------------------------------

    def _push_http(self, fault: HttpFault, n: int, path: str | None) -> None:
        self._push(self._http_next, fault, n, path)

    def _push(
        self,
        queue: list[_Counted],
        fault: HttpFault | RetcodeFault | StreamConnectFault,
        n: int,
        path: str | None,
    ) -> None:
        if _check_count(n) == 0:
            return
        with self._lock:
            queue.append(_Counted(fault, n, path))

    def _set_rate(
        self, kind: HttpFaultKind, rate: float, fault: HttpFault, path: str | None
    ) -> None:
        with self._lock:
            if _check_rate(rate) == 0:
                self._http_rates.pop((kind, path), None)
            else:
                self._http_rates[(kind, path)] = (rate, fault)

    def _malformed(self, quote: Mapping[str, Any]) -> str:
        text = json.dumps({"type": "quote", **quote}, separators=(",", ":"))
        choice = self._rng.randrange(3)
        if choice == 0:
            return text[: len(text) // 2]  # truncated: not JSON
        if choice == 1:
            return json.dumps({"type": "quote", "symbol": quote.get("symbol")})  # no prices
        return json.dumps({"type": "quote", "bid": quote.get("bid"), "ask": quote.get("ask")})

    def _bad_tick(self, quote: Mapping[str, Any]) -> str:
        bid = float(quote["bid"])
        ask = float(quote["ask"])
        choice = self._rng.randrange(3)
        if choice == 0:
            bid, ask = 0.0, ask
        elif choice == 1:
            bid, ask = -bid, -ask
        else:
            bid, ask = ask * 1.01, bid  # ask below bid
        return json.dumps({"type": "quote", **quote, "bid": bid, "ask": ask})


def _take(
    queue: list[_Counted], path: str | None
) -> HttpFault | RetcodeFault | StreamConnectFault | None:
    """Consume one use of the first queued fault matching ``path``."""
    for i, entry in enumerate(queue):
        if entry.path is None or entry.path == path:
            entry.remaining -= 1
            fault = entry.fault
            if entry.remaining == 0:
                del queue[i]
            return fault
    return None
