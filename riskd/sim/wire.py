"""The ``sdk`` dialect's JSON shapes: the one place that knows field names and time format.

Everything here maps the simulator's objects to JSON-ready values (or back, for times), plus
the one error body shape, so the server modules never spell a field name themselves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from riskd.sim.broker import AccountView, ClosedTrade, PositionView, TradeResult
    from riskd.sim.market import Quote

JsonObject = dict[str, Any]

AUTH_FAILED = "invalid API key or credentials"


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Every non-200 answer: ``{"message": ...}`` with ``status``."""
    return JSONResponse({"message": message}, status_code=status, headers=headers)


def format_time(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2026-11-25T12:00:00.123Z``."""
    utc = when.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time (``Z``, an offset, or none meaning UTC) into an aware UTC datetime.

    Raises ValueError on anything else.
    """
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def quote_json(quote: Quote) -> JsonObject:
    """``/GetQuote`` answer."""
    return {
        "symbol": quote.symbol,
        "bid": quote.bid,
        "ask": quote.ask,
        "time": format_time(quote.time),
    }


def stream_quote_text(quote: Quote) -> str:
    """One stream ``quote`` message, serialised once per tick and shared by all subscribers."""
    return json.dumps({"type": "quote", **quote_json(quote)}, separators=(",", ":"))


def stream_error_text(message: str) -> str:
    """A stream ``error`` message."""
    return json.dumps({"type": "error", "message": message}, separators=(",", ":"))


def summary_json(view: AccountView) -> JsonObject:
    """``/AccountSummary`` answer."""
    return {
        "balance": view.balance,
        "credit": view.credit,
        "profit": view.profit,
        "equity": view.equity,
        "margin": view.margin,
        "freeMargin": view.free_margin,
        "marginLevel": view.margin_level,
        "leverage": view.leverage,
        "currency": view.currency,
    }


def position_json(view: PositionView) -> JsonObject:
    """One ``/Positions`` row."""
    p = view.position
    return {
        "ticket": p.ticket,
        "symbol": p.symbol,
        "type": p.side,
        "volume": p.volume,
        "openPrice": p.open_price,
        "currentPrice": view.current_price,
        "stopLoss": p.stop_loss,
        "takeProfit": p.take_profit,
        "profit": view.profit,
        "swap": view.swap,
        "commission": view.commission,
        "comment": p.comment,
        "openTime": format_time(p.open_time),
        "magic": p.magic,
    }


def history_json(row: ClosedTrade) -> JsonObject:
    """One ``/OrderHistory`` row (a full or partial close)."""
    return {
        "ticket": row.ticket,
        "symbol": row.symbol,
        "type": row.side,
        "volume": row.volume,
        "openPrice": row.open_price,
        "closePrice": row.close_price,
        "openTime": format_time(row.open_time),
        "closeTime": format_time(row.close_time),
        "profit": row.profit,
        "swap": row.swap,
        "commission": row.commission,
        "comment": row.comment,
    }


def trade_json(result: TradeResult) -> JsonObject:
    """``/OrderSend``, ``/OrderModify`` and ``/OrderClose`` answer."""
    return {"ticket": result.ticket, "retcode": result.retcode, "comment": result.comment}
