"""The Starlette app: the ``sdk`` dialect's 11 REST endpoints, the stream handshake, and
(mounted from :mod:`riskd.sim.control`) the ``/_sim/...`` control routes.

Every bridge request goes through the same steps, in the order a real deployment would apply
them (infrastructure in front, then the application)::

    record in the request log -> injected latency -> injected 429/5xx/hang
        -> auth (401) -> malformed JSON (400) -> account lookup (400/404) -> endpoint

Endpoint handlers are plain synchronous functions from a :class:`Call` to a JSON value; they
raise :class:`BadRequest` for a 400.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from riskd.api2trade.enums import RetCode
from riskd.sim import wire
from riskd.sim.broker import Account, TradeResult
from riskd.sim.control import control_routes
from riskd.sim.faults import HttpFault
from riskd.sim.simulator import Simulator
from riskd.sim.wire import error_response

log = logging.getLogger(__name__)

AccountSource = Literal["query", "body"] | None


class BadRequest(Exception):
    """Answered as 400 ``{"message": ...}``."""


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated bridge request, as a handler sees it."""

    path: str
    query: Mapping[str, str]
    body: Any
    maybe_account: Account | None

    @property
    def account(self) -> Account:
        """The request's account (only for endpoints that take one)."""
        assert self.maybe_account is not None
        return self.maybe_account

    def fields(self) -> Mapping[str, Any]:
        """The JSON body as an object, or BadRequest."""
        if not isinstance(self.body, dict):
            raise BadRequest("expected a JSON object body")
        return self.body


# -- parameter parsing ------------------------------------------------------------------------


def _string(source: Mapping[str, Any], name: str) -> str:
    value = source.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and name == "login":
        return str(value)  # logins are numbers to many clients
    if not isinstance(value, str) or not value:
        raise BadRequest(f"missing or invalid '{name}'")
    return value


def _number(source: Mapping[str, Any], name: str, *, required: bool = True) -> float | None:
    value = source.get(name)
    if value is None:
        if required:
            raise BadRequest(f"missing '{name}'")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"'{name}' must be a number")
    return float(value)


def _required_number(source: Mapping[str, Any], name: str) -> float:
    value = _number(source, name)
    assert value is not None
    return value


def _integer(source: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = source.get(name)
    if value is None:
        if default is None:
            raise BadRequest(f"missing '{name}'")
        return default
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"'{name}' must be an integer") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"'{name}' must be an integer")
    return value


def _optional_string(source: Mapping[str, Any], name: str) -> str:
    value = source.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"'{name}' must be a string")
    return value


def _dates(query: Mapping[str, str]) -> tuple[datetime, datetime]:
    date_from, date_to = _string(query, "dateFrom"), _string(query, "dateTo")
    try:
        return wire.parse_time(date_from), wire.parse_time(date_to)
    except ValueError:
        raise BadRequest("dateFrom and dateTo must be ISO 8601 times") from None


# -- the bridge endpoints ---------------------------------------------------------------------


class BridgeApi:
    """The ``sdk`` dialect's endpoints over one :class:`Simulator`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, str, Callable[[Call], object], AccountSource]] = [
            ("/RegisterAccount", "POST", self.register_account, None),
            ("/CheckConnect", "GET", self.check_connect, "query"),
            ("/AccountSummary", "GET", self.account_summary, "query"),
            ("/DeleteAccount", "DELETE", self.delete_account, "body"),
            ("/GetQuote", "GET", self.get_quote, "query"),
            ("/OrderSend", "POST", self.order_send, "query"),
            ("/OrderModify", "POST", self.order_modify, "query"),
            ("/OrderClose", "POST", self.order_close, "query"),
            ("/Positions", "GET", self.positions, "query"),
            ("/OrderHistory", "GET", self.order_history, "query"),
            ("/OrderHistoryPagination", "GET", self.order_history_page, "query"),
        ]
        routes: list[BaseRoute] = [
            Route(path, self._endpoint(handler, source), methods=[method])
            for path, method, handler, source in table
        ]
        routes.append(WebSocketRoute("/stream", self.stream))
        return routes

    # Handlers ------------------------------------------------------------------------------

    def register_account(self, call: Call) -> object:
        body = call.fields()
        _string(body, "password")
        account = self.sim.broker.register(_string(body, "login"), _string(body, "server"))
        return {"id": account.id, "status": "connected"}

    def check_connect(self, call: Call) -> object:
        return {"id": call.account.id, "connected": call.account.connected}

    def account_summary(self, call: Call) -> object:
        return wire.summary_json(self.sim.broker.view(call.account))

    def delete_account(self, call: Call) -> object:
        self.sim.delete_account(call.account.id)
        return {"id": call.account.id, "status": "deleted"}

    def get_quote(self, call: Call) -> object:
        symbol = _string(call.query, "symbol")
        if not self.sim.market.has(symbol):
            raise BadRequest(f"unknown symbol {symbol!r}")
        return wire.quote_json(self.sim.market.quote(symbol))

    def order_send(self, call: Call) -> object:
        body = call.fields()
        symbol = _string(body, "symbol")
        operation = _integer(body, "operation")
        volume = _required_number(body, "volume")
        stop_loss = _number(body, "stopLoss", required=False) or 0.0
        take_profit = _number(body, "takeProfit", required=False) or 0.0
        price = _number(body, "price", required=False)
        comment = _optional_string(body, "comment")
        magic = _integer(body, "magic", default=0)
        return self._trade(
            call,
            0,
            lambda: self.sim.broker.send(
                call.account,
                symbol=symbol,
                operation=operation,
                volume=volume,
                stop_loss=stop_loss,
                take_profit=take_profit,
                price=price,
                comment=comment,
                magic=magic,
            ),
        )

    def order_modify(self, call: Call) -> object:
        body = call.fields()
        ticket = _integer(body, "ticket")
        stop_loss = _number(body, "stopLoss", required=False)
        take_profit = _number(body, "takeProfit", required=False)
        return self._trade(
            call,
            ticket,
            lambda: self.sim.broker.modify(call.account, ticket, stop_loss, take_profit),
        )

    def order_close(self, call: Call) -> object:
        body = call.fields()
        ticket = _integer(body, "ticket")
        volume = _number(body, "volume", required=False)
        return self._trade(
            call, ticket, lambda: self.sim.broker.close(call.account, ticket, volume)
        )

    def positions(self, call: Call) -> object:
        view = self.sim.broker.view(call.account)
        return [wire.position_json(p) for p in view.positions]

    def order_history(self, call: Call) -> object:
        date_from, date_to = _dates(call.query)
        rows = self.sim.broker.history(call.account, date_from, date_to)
        return [wire.history_json(r) for r in rows]

    def order_history_page(self, call: Call) -> object:
        date_from, date_to = _dates(call.query)
        page = _integer(call.query, "page", default=1)
        size = _integer(call.query, "pageSize", default=50)
        if page < 1 or size < 1:
            raise BadRequest("page and pageSize count from 1")
        rows = self.sim.broker.history(call.account, date_from, date_to)
        start = (page - 1) * size
        return {
            "data": [wire.history_json(r) for r in rows[start : start + size]],
            "total": len(rows),
            "page": page,
            "pageSize": size,
        }

    def _trade(self, call: Call, ticket: int, execute: Callable[[], TradeResult]) -> object:
        """Run a trade request, unless an injected retcode answers it (see faults)."""
        injected = self.sim.faults.trade_retcode(call.path)
        if injected is None:
            return wire.trade_json(execute())
        if injected.execute:
            result = execute()
            if RetCode.is_success(injected.retcode):
                ticket = result.ticket
        # An OrderSend whose outcome the client cannot know carries no ticket (0).
        return wire.trade_json(TradeResult.of(injected.retcode, ticket))

    # The shared request pipeline ---------------------------------------------------------

    def _endpoint(
        self, handler: Callable[[Call], object], source: AccountSource
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            body: Any = None
            malformed = False
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    malformed = True
            account_id = request.query_params.get("id")
            if source == "body" and isinstance(body, dict) and "id" in body:
                account_id = body["id"] if isinstance(body["id"], str) else None
            record = self.sim.requests.add(request.method, request.url.path, account_id, body)
            try:
                response = await self._serve(request, handler, source, body, malformed, account_id)
            except Exception:  # a simulator bug: answer like a broken bridge, and say so
                log.exception("simulator failed serving %s %s", request.method, request.url.path)
                response = error_response(500, "simulator error")
            self.sim.requests.finish(record, response.status_code)
            return response

        return endpoint

    async def _serve(
        self,
        request: Request,
        handler: Callable[[Call], object],
        source: AccountSource,
        body: Any,
        malformed: bool,
        account_id: str | None,
    ) -> Response:
        path = request.url.path
        sim = self.sim
        delay = sim.faults.latency(path)
        if delay > 0 and not await sim.pause(delay):
            return error_response(503, "simulator shutting down")
        fault = sim.faults.http_fault(path)
        if fault is not None and not (fault.kind == "hang" and fault.execute):
            return await self._fault_response(fault)
        if not sim.auth.allows(request.headers):
            return error_response(401, wire.AUTH_FAILED)
        if malformed:
            return error_response(400, "malformed JSON body")
        account: Account | None = None
        if source is not None:
            if not account_id:
                return error_response(400, "missing account 'id'")
            account = sim.broker.get(account_id)
            if account is None:
                return error_response(404, f"account {account_id} not found")
        try:
            payload = handler(Call(path, request.query_params, body, account))
        except BadRequest as exc:
            return error_response(400, str(exc))
        response = JSONResponse(payload)
        if fault is not None:  # a hang that executes: the work is done, the answer is late
            await sim.pause(fault.seconds)
        return response

    async def _fault_response(self, fault: HttpFault) -> Response:
        if fault.kind == "rate_limit":
            header = fault.retry_after_header
            headers = {"Retry-After": header} if header is not None else None
            return error_response(429, "too many requests (injected)", headers)
        if fault.kind == "hang":
            if not await self.sim.pause(fault.seconds):
                return error_response(503, "simulator shutting down")
            return error_response(fault.status, "gateway timeout (injected)")
        return error_response(fault.status, "bridge error (injected)")

    # The stream handshake -----------------------------------------------------------------

    async def stream(self, websocket: WebSocket) -> None:
        """``/stream?id=<uuid>``: refuse (401/404/503) or accept and run a stream session."""
        sim = self.sim
        account_id = websocket.query_params.get("id")
        record = sim.requests.add("WS", "/stream", account_id, None)
        fault = sim.faults.stream_connect()
        denial: tuple[int, str] | None = None
        if sim.closing:
            denial = (503, "simulator shutting down")
        elif fault is not None and fault.kind == "reject":
            denial = (fault.status, "stream unavailable (injected)")
        elif not sim.auth.allows(websocket.headers, websocket.query_params):
            denial = (401, wire.AUTH_FAILED)
        elif not account_id:
            denial = (400, "missing account 'id'")
        elif sim.broker.get(account_id) is None:
            denial = (404, f"account {account_id} not found")
        if denial is not None:
            await websocket.send_denial_response(error_response(*denial))
            sim.requests.finish(record, denial[0])
            return
        await websocket.accept()
        sim.requests.finish(record, 101)
        if fault is not None:  # "close": accepted, then closed at once
            await websocket.close(1011)
            return
        assert account_id is not None
        conn = sim.hub.open(account_id)
        await sim.hub.run_session(websocket, conn)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Unknown paths and wrong methods answer JSON like every other error.
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail), exc.headers)


def build_app(sim: Simulator) -> Starlette:
    """The simulator's ASGI app: bridge endpoints, ``/stream`` and ``/_sim/...`` controls."""
    routes = BridgeApi(sim).routes() + control_routes(sim)
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
