"""Typed response models with the SDK's fields and properties.

Wire names are camelCase; Python names are snake_case. Fields the SDK README names are required:
a missing or malformed one is a ``ResponseFormatError`` naming the endpoint and the field (see
``wire.parse``). Fields it does not name are optional and ``None`` when absent.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from riskd.api2trade.enums import RetCode
from riskd.instruments import pip_size

Side = Literal["buy", "sell"]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        allow_inf_nan=False,
    )


def _utc(value: datetime | None) -> datetime | None:
    # The sdk dialect sends UTC with a Z; a server that drops the zone still means UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _side(value: Any) -> Any:
    """Accept ``buy``/``Buy``/``BUY`` and the MT numeric 0/1 for the position side."""
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return "buy" if value == 0 else "sell"
    return value


class ConnectStatus(_Model):
    """Answer of ``/CheckConnect``."""

    id: str
    connected: bool


class AccountSummary(_Model):
    """Answer of ``/AccountSummary``: balance, equity and margin of one account."""

    balance: float
    equity: float
    free_margin: float
    margin_level: float
    currency: str
    credit: float | None = None
    profit: float | None = None
    margin: float | None = None
    leverage: float | None = None

    @property
    def margin_in_use(self) -> float:
        """Margin in use: ``margin``, or ``equity - free_margin`` when the bridge omits it."""
        if self.margin is not None:
            return self.margin
        return max(self.equity - self.free_margin, 0.0)

    @property
    def is_margin_call_risk(self) -> bool:
        """True when margin is in use and the margin level is below 150%.

        MetaTrader reports a margin level of 0 when no margin is used; that is not a risk.
        """
        if self.margin is not None:
            return self.margin > 0 and self.margin_level < 150.0
        return 0.0 < self.margin_level < 150.0


class Quote(_Model):
    """A bid/ask price: the answer of ``/GetQuote`` and each tick of the stream."""

    symbol: str
    bid: float
    ask: float
    time: datetime | None = None

    _utc_time = field_validator("time")(_utc)

    @property
    def spread(self) -> float:
        """Ask minus bid, in price units."""
        return self.ask - self.bid

    @property
    def spread_pips(self) -> float:
        """The spread in pips: 0.0001 for FX, 0.01 for JPY quotes (1.08500/1.08510 is 1.0)."""
        # Rounded so float noise (0.99999999) does not show as a different pip count.
        return round(self.spread / pip_size(self.symbol), 6)

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0

    def __str__(self) -> str:
        return (
            f"Quote({self.symbol}: bid={self.bid:.5f}, ask={self.ask:.5f}, "
            f"spread={self.spread_pips:.1f} pips)"
        )


Tick = Quote
"""A stream tick has the same shape as a quote."""


class OrderResult(_Model):
    """Answer of ``/OrderSend``, ``/OrderModify`` and ``/OrderClose``."""

    ticket: int
    retcode: int
    comment: str = ""

    @property
    def success(self) -> bool:
        """True for retcode 0, 10008 (placed), 10009 (done) or 10010 (done partially)."""
        return RetCode.is_success(self.retcode)

    @property
    def retcode_description(self) -> str:
        return RetCode.description(self.retcode)


class Position(_Model):
    """One open position from ``/Positions``."""

    ticket: int
    symbol: str
    order_type: Side = Field(alias="type")
    volume: float
    open_price: float
    profit: float
    swap: float
    current_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    commission: float | None = None
    comment: str = ""
    open_time: datetime | None = None
    magic: int | None = None

    _side = field_validator("order_type", mode="before")(_side)
    _utc_time = field_validator("open_time")(_utc)

    @property
    def total_pnl(self) -> float:
        """Floating profit plus swap plus commission, in the account currency."""
        return self.profit + self.swap + (self.commission or 0.0)


class OrderHistoryItem(_Model):
    """One closed order from ``/OrderHistory`` or ``/OrderHistoryPagination``."""

    ticket: int
    symbol: str
    order_type: str = Field(alias="type")
    volume: float
    open_price: float
    close_price: float
    open_time: datetime
    close_time: datetime
    profit: float
    swap: float
    commission: float | None = None
    comment: str = ""

    _side = field_validator("order_type", mode="before")(_side)
    _utc_times = field_validator("open_time", "close_time")(_utc)

    @property
    def net_profit(self) -> float:
        """Profit plus swap plus commission: what the order changed the balance by."""
        return self.profit + self.swap + (self.commission or 0.0)


class PaginatedHistory(_Model):
    """One page of ``/OrderHistoryPagination``; pages count from 1."""

    data: list[OrderHistoryItem]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total / self.page_size)

    @property
    def has_next(self) -> bool:
        return self.page < self.total_pages


class RegisterResult(_Model):
    """Answer of ``/RegisterAccount``."""

    id: str
    status: str | None = None


def summary_stats(orders: list[OrderHistoryItem]) -> dict[str, float]:
    """Trading statistics over closed orders, by net profit (profit + swap + commission).

    ``profit_factor`` is gross profit over gross loss: ``inf`` with wins and no losses, 0.0 with
    no wins. ``win_rate`` is wins over all trades (break-even trades count as not won).
    """
    nets = [o.net_profit for o in orders]
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    gross_profit = sum(wins)
    gross_loss = -sum(losses)
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = math.inf if gross_profit > 0 else 0.0
    total = len(nets)
    return {
        "total_trades": float(total),
        "winning_trades": float(len(wins)),
        "losing_trades": float(len(losses)),
        "win_rate": len(wins) / total if total else 0.0,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "net_profit": sum(nets),
        "profit_factor": profit_factor,
        "average_win": gross_profit / len(wins) if wins else 0.0,
        "average_loss": -gross_loss / len(losses) if losses else 0.0,
        "largest_win": max(wins, default=0.0),
        "largest_loss": min(losses, default=0.0),
    }
