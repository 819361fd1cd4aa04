"""riskd's internal API2Trade client: every bridge endpoint and the tick stream.

``AsyncApi2TradeClient`` is the core; ``Api2TradeClient`` is the SDK's synchronous surface over
it. Exceptions live in ``riskd.api2trade.exceptions``.
"""

from riskd.api2trade.client import AsyncApi2TradeClient
from riskd.api2trade.config import ClientSettings
from riskd.api2trade.enums import OrderType, RetCode, RetryKind
from riskd.api2trade.hooks import ClientHooks
from riskd.api2trade.models import (
    AccountSummary,
    ConnectStatus,
    OrderHistoryItem,
    OrderResult,
    PaginatedHistory,
    Position,
    Quote,
    Tick,
)
from riskd.api2trade.stream import StreamStats, TickStream
from riskd.api2trade.sync import Api2TradeClient

__all__ = [
    "AccountSummary",
    "Api2TradeClient",
    "AsyncApi2TradeClient",
    "ClientHooks",
    "ClientSettings",
    "ConnectStatus",
    "OrderHistoryItem",
    "OrderResult",
    "OrderType",
    "PaginatedHistory",
    "Position",
    "Quote",
    "RetCode",
    "RetryKind",
    "StreamStats",
    "Tick",
    "TickStream",
]
