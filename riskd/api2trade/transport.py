"""The one place that does HTTP: auth, timeouts, retries and error mapping.

Retry rules (the wire spec's "Errors" table):
- timeouts, connection errors and 5xx: exponential back-off with jitter, up to ``max_retries``;
- 429: wait ``Retry-After`` (back-off when absent); a wait above ``max_retry_after`` is not
  waited, the ``RateLimitError`` goes to the caller;
- a non-idempotent request (opening or closing an order) is resent only when the first copy
  surely never reached the server (connect failure, 429). Anything else surfaces, and the
  orders resource looks at positions before deciding (see ``resources``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from riskd.api2trade import wire
from riskd.api2trade.backoff import Backoff
from riskd.api2trade.config import ClientSettings
from riskd.api2trade.exceptions import (
    Api2TradeConnectionError,
    Api2TradeError,
    RateLimitError,
    ServerError,
)
from riskd.api2trade.hooks import ClientHooks, NoHooks

log = logging.getLogger("riskd.api2trade")

Sleep = Callable[[float], Awaitable[None]]


def auth_headers(settings: ClientSettings) -> dict[str, str]:
    """Headers that authenticate a request (REST or stream handshake)."""
    if settings.auth_mode == "basic":
        password = settings.pro_password.get_secret_value() if settings.pro_password else ""
        basic = httpx.BasicAuth(settings.pro_username or "", password)
        # httpx builds the header on a request; borrow it so both transports agree.
        request = next(basic.auth_flow(httpx.Request("GET", "http://localhost")))
        return {"authorization": request.headers["authorization"]}
    key = settings.api_key.get_secret_value() if settings.api_key else ""
    return {"x-api-key": key}


class AsyncTransport:
    """Sends ``wire.Request`` objects over one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        hooks: ClientHooks | None = None,
        backoff: Backoff | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._hooks: ClientHooks = hooks or NoHooks()
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._http = http_client or httpx.AsyncClient(
            base_url=settings.base_url,
            timeout=settings.timeout,
            headers=auth_headers(settings),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    @property
    def hooks(self) -> ClientHooks:
        return self._hooks

    @property
    def backoff(self) -> Backoff:
        return self._backoff

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, request: wire.Request) -> Any:
        """Send ``request`` (with retries) and return its decoded JSON body."""
        response = await self.send(request)
        return wire.decode(request.path, response)

    async def send(self, request: wire.Request) -> wire.Response:
        """Send ``request`` with the retry rules above; raise the mapped exception."""
        attempt = 0
        while True:
            outcome = await self._attempt(request, attempt)
            if isinstance(outcome, wire.Response):
                return outcome
            may_resend = request.idempotent or not outcome.reached_server
            if not may_resend or attempt >= self._settings.max_retries:
                raise outcome.error
            self._hooks.on_retry(request.path, outcome.reason)
            log.debug(
                "retrying %s in %.2fs after %s (attempt %d)",
                request.path,
                outcome.delay,
                outcome.reason,
                attempt + 1,
            )
            await self._sleep(outcome.delay)
            attempt += 1

    async def _attempt(self, request: wire.Request, attempt: int) -> wire.Response | _Failure:
        """One try: the response, or a failure the caller may retry (others raise)."""
        path = request.path
        started = time.monotonic()
        try:
            raw = await self._http.request(
                request.method,
                path,
                params=dict(request.params) if request.params else None,
                json=request.json,
            )
        except httpx.TimeoutException as exc:
            self._hooks.on_request(path, "timeout", time.monotonic() - started)
            unsent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            err = Api2TradeConnectionError(
                f"no answer within {self._settings.timeout:g}s ({type(exc).__name__})",
                endpoint=path,
            )
            return _Failure(err, "timeout", self._backoff.delay(attempt), not unsent)
        except httpx.TransportError as exc:
            self._hooks.on_request(path, "connection_error", time.monotonic() - started)
            err = Api2TradeConnectionError(
                f"connection failed ({type(exc).__name__}: {str(exc)[:120]})", endpoint=path
            )
            unsent = isinstance(exc, httpx.ConnectError)
            return _Failure(err, "connection_error", self._backoff.delay(attempt), not unsent)

        status = raw.status_code
        self._hooks.on_request(
            path, "ok" if status < 300 else f"http_{status}", time.monotonic() - started
        )
        response = wire.Response(status, dict(raw.headers), raw.content)
        try:
            wire.raise_for_status(path, response)
        except RateLimitError as exc:
            wait = exc.retry_after
            if wait is not None and wait > self._settings.max_retry_after:
                raise
            delay = wait if wait is not None else self._backoff.delay(attempt)
            return _Failure(exc, "rate_limited", delay, False)
        except ServerError as exc:
            return _Failure(exc, f"http_{status}", self._backoff.delay(attempt), True)
        return response


@dataclass(frozen=True, slots=True)
class _Failure:
    """A failed attempt that may be retried: the error to raise if not, and how to retry."""

    error: Api2TradeError
    reason: str
    delay: float
    reached_server: bool
