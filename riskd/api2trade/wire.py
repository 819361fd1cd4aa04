"""The ``sdk`` wire dialect, sans I/O: request descriptions in, parsed models out.

Everything that knows a path, a query parameter, a JSON field name or a status code lives here,
so the transport (I/O, retries) and the resources (what a method means) never do. A second
dialect would be a second module with the same functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from riskd.api2trade.enums import OrderType, RetCode
from riskd.api2trade.exceptions import (
    AccountNotFoundError,
    Api2TradeError,
    AuthenticationError,
    BrokerRejectionError,
    RateLimitError,
    ResponseFormatError,
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
    RegisterResult,
)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Request:
    """One bridge call, described; the transport sends it.

    ``idempotent`` says whether sending it twice is harmless. The transport resends a
    non-idempotent request only when it knows the first copy never reached the server.
    """

    method: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    idempotent: bool = True


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers (lower-case names) and the raw body."""

    status: int
    headers: Mapping[str, str]
    content: bytes


# --- requests ---------------------------------------------------------------------------------


def _iso(moment: datetime, *, round_up: bool = False) -> str:
    """Whole-second UTC, as the spec shows. The end of a range is rounded up, so an order
    closed earlier in the current second is not cut off."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if round_up and moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def register(login: str, password: str, server: str) -> Request:
    body = {"login": str(login), "password": password, "server": server}
    return Request("POST", "/RegisterAccount", json=body, idempotent=False)


def check_connect(account_id: str) -> Request:
    return Request("GET", "/CheckConnect", {"id": account_id})


def summary(account_id: str) -> Request:
    return Request("GET", "/AccountSummary", {"id": account_id})


def delete(account_id: str) -> Request:
    return Request("DELETE", "/DeleteAccount", json={"id": account_id})


def quote(account_id: str, symbol: str) -> Request:
    return Request("GET", "/GetQuote", {"id": account_id, "symbol": symbol})


def order_send(
    account_id: str,
    symbol: str,
    order_type: OrderType,
    volume: float,
    stop_loss: float | None,
    take_profit: float | None,
    comment: str | None,
    price: float | None,
) -> Request:
    # MetaTrader reads a stop of 0 as "none"; the spec lists stopLoss/takeProfit/comment as sent.
    body: dict[str, Any] = {
        "symbol": symbol,
        "operation": int(order_type),
        "volume": volume,
        "stopLoss": stop_loss or 0.0,
        "takeProfit": take_profit or 0.0,
        "comment": comment or "",
    }
    if price is not None:
        body["price"] = price
    return Request("POST", "/OrderSend", {"id": account_id}, body, idempotent=False)


def order_modify(
    account_id: str, ticket: int, stop_loss: float | None, take_profit: float | None
) -> Request:
    body: dict[str, Any] = {"ticket": ticket}
    if stop_loss is not None:
        body["stopLoss"] = stop_loss
    if take_profit is not None:
        body["takeProfit"] = take_profit
    # Setting the same stops twice leaves the same stops: safe to resend.
    return Request("POST", "/OrderModify", {"id": account_id}, body, idempotent=True)


def order_close(account_id: str, ticket: int, volume: float | None) -> Request:
    body: dict[str, Any] = {"ticket": ticket}
    if volume is not None:
        body["volume"] = volume
    return Request("POST", "/OrderClose", {"id": account_id}, body, idempotent=False)


def positions(account_id: str) -> Request:
    return Request("GET", "/Positions", {"id": account_id})


def history(account_id: str, date_from: datetime, date_to: datetime) -> Request:
    params = {"id": account_id, "dateFrom": _iso(date_from), "dateTo": _iso(date_to, round_up=True)}
    return Request("GET", "/OrderHistory", params)


def history_page(
    account_id: str, date_from: datetime, date_to: datetime, page: int, page_size: int
) -> Request:
    params = {
        "id": account_id,
        "dateFrom": _iso(date_from),
        "dateTo": _iso(date_to, round_up=True),
        "page": str(page),
        "pageSize": str(page_size),
    }
    return Request("GET", "/OrderHistoryPagination", params)


def subscribe_message(symbols: list[str]) -> str:
    return json.dumps({"action": "subscribe", "symbols": symbols})


# --- responses --------------------------------------------------------------------------------


def _server_message(content: bytes) -> str:
    """The server's own words from an error body, cut short; never request data."""
    try:
        body = json.loads(content)
    except ValueError:
        text = content.decode("utf-8", "replace").strip()
    else:
        text = str(body.get("message", "")) if isinstance(body, dict) else ""
    return text[:200]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None  # an HTTP date: rare from APIs; fall back to back-off
    return max(value, 0.0)


def raise_for_status(path: str, response: Response) -> None:
    """Map a non-2xx response to the exception the spec assigns it."""
    status = response.status
    if 200 <= status < 300:
        return
    message = _server_message(response.content)
    if status == 401:
        raise AuthenticationError(
            message or "credentials refused (check the API key or Pro login)",
            status_code=status,
            endpoint=path,
        )
    if status == 404:
        raise AccountNotFoundError(
            message or "account not registered on the bridge", status_code=status, endpoint=path
        )
    if status == 429:
        raise RateLimitError(
            message or "rate limited",
            retry_after=_retry_after(response.headers),
            status_code=status,
            endpoint=path,
        )
    if status >= 500:
        raise ServerError(message or f"HTTP {status}", status_code=status, endpoint=path)
    raise Api2TradeError(message or f"HTTP {status}", status_code=status, endpoint=path)


def decode(path: str, response: Response) -> Any:
    """The JSON body of a successful response; an empty body is ``{}``."""
    if not response.content.strip():
        return {}
    try:
        return json.loads(response.content)
    except ValueError:
        raise ResponseFormatError(
            "response is not JSON", status_code=response.status, endpoint=path
        ) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        problems.append(f"field '{loc}': {err['msg']}")
    return "; ".join(problems[:5])


def parse(path: str, model: type[M], payload: Any) -> M:
    """Validate ``payload`` as ``model``, or raise ``ResponseFormatError`` naming the field."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise ResponseFormatError(_describe(exc), endpoint=path) from None


_POSITIONS = TypeAdapter(list[Position])
_HISTORY = TypeAdapter(list[OrderHistoryItem])


def _parse_list(path: str, adapter: TypeAdapter[list[Any]], payload: Any) -> list[Any]:
    try:
        return adapter.validate_python(payload)
    except ValidationError as exc:
        raise ResponseFormatError(_describe(exc), endpoint=path) from None


def parse_register(payload: Any) -> str:
    return parse("/RegisterAccount", RegisterResult, payload).id


def parse_check_connect(payload: Any) -> ConnectStatus:
    return parse("/CheckConnect", ConnectStatus, payload)


def parse_summary(payload: Any) -> AccountSummary:
    return parse("/AccountSummary", AccountSummary, payload)


def parse_quote(payload: Any) -> Quote:
    return parse("/GetQuote", Quote, payload)


def parse_positions(payload: Any) -> list[Position]:
    result: list[Position] = _parse_list("/Positions", _POSITIONS, payload)
    return result


def parse_history(payload: Any) -> list[OrderHistoryItem]:
    result: list[OrderHistoryItem] = _parse_list("/OrderHistory", _HISTORY, payload)
    return result


def parse_history_page(payload: Any) -> PaginatedHistory:
    return parse("/OrderHistoryPagination", PaginatedHistory, payload)


def parse_order_result(path: str, payload: Any) -> OrderResult:
    """An order answer; a non-success retcode raises ``BrokerRejectionError``."""
    result = parse(path, OrderResult, payload)
    if not result.success:
        raise BrokerRejectionError(
            f"retcode {result.retcode} ({RetCode.description(result.retcode)})"
            + (f": {result.comment}" if result.comment else ""),
            retcode=result.retcode,
            is_retryable=RetCode.is_retryable(result.retcode),
            outcome_unknown=RetCode.is_outcome_unknown(result.retcode),
            ticket=result.ticket or None,
            endpoint=path,
        )
    return result


class _QuoteFrame(Quote):
    """A stream tick as framed on the wire (``"type": "quote"`` beside the quote's fields)."""

    type: Literal["quote"]


def parse_stream_message(raw: str | bytes) -> Quote | str | None:
    """One stream frame: a ``Quote``, an error message string, or None for unknown types.

    Raises ``ResponseFormatError`` for a frame that is not JSON or a quote with bad fields.
    """
    # Ticks are nearly every frame: pydantic's JSON parser takes a well-formed one in one
    # pass (half the cost of json.loads + validation). Anything else takes the slow path,
    # which tells error frames, unknown types and bad fields apart.
    try:
        return _QuoteFrame.model_validate_json(raw)
    except ValidationError:
        pass
    try:
        message = json.loads(raw)
    except ValueError:
        raise ResponseFormatError("stream frame is not JSON", endpoint="stream") from None
    if not isinstance(message, dict):
        raise ResponseFormatError("stream frame is not a JSON object", endpoint="stream")
    kind = message.get("type")
    if kind == "quote":
        return parse("stream", Quote, message)
    if kind == "error":
        return str(message.get("message", ""))[:200]
    return None
