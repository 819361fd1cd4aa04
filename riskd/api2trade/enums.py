"""Order types and trade return codes.

Return codes follow the official MetaTrader 5 ``TRADE_RETCODE_*`` table (and the MT4 error codes
for MT4 accounts). The SDK's own table is wrong above 10025 and counts only 0 as success; riskd
uses the official one.
"""

from __future__ import annotations

import enum


class OrderType(enum.IntEnum):
    """The ``operation`` of ``/OrderSend``."""

    BUY_MARKET = 0
    SELL_MARKET = 1
    BUY_LIMIT = 2
    SELL_LIMIT = 3
    BUY_STOP = 4
    SELL_STOP = 5

    def is_market(self) -> bool:
        return self in (OrderType.BUY_MARKET, OrderType.SELL_MARKET)

    def is_pending(self) -> bool:
        return not self.is_market()

    @property
    def side(self) -> str:
        """``"buy"`` or ``"sell"``: the side of the position this order opens."""
        return "buy" if self.value % 2 == 0 else "sell"


class RetryKind(enum.Enum):
    """What to do after a return code, per the wire spec's retry policy."""

    SUCCESS = "success"
    REPRICE = "reprice"  # retry at once with a fresh price
    BACKOFF = "backoff"  # retry after a back-off
    UNKNOWN = "unknown"  # the outcome is unknown: look at positions before any retry
    FATAL = "fatal"  # never retry


class RetCode(enum.IntEnum):
    """Trade server return codes (MT5) with their meaning and retry policy."""

    OK = 0
    REQUOTE = 10004
    REJECT = 10006
    CANCEL = 10007
    PLACED = 10008
    DONE = 10009
    DONE_PARTIAL = 10010
    ERROR = 10011
    TIMEOUT = 10012
    INVALID = 10013
    INVALID_VOLUME = 10014
    INVALID_PRICE = 10015
    INVALID_STOPS = 10016
    TRADE_DISABLED = 10017
    MARKET_CLOSED = 10018
    NO_MONEY = 10019
    PRICE_CHANGED = 10020
    PRICE_OFF = 10021
    INVALID_EXPIRATION = 10022
    ORDER_CHANGED = 10023
    TOO_MANY_REQUESTS = 10024
    NO_CHANGES = 10025
    SERVER_DISABLES_AT = 10026
    CLIENT_DISABLES_AT = 10027
    LOCKED = 10028
    FROZEN = 10029
    INVALID_FILL = 10030
    CONNECTION = 10031
    ONLY_REAL = 10032
    LIMIT_ORDERS = 10033
    LIMIT_VOLUME = 10034
    INVALID_ORDER = 10035
    POSITION_CLOSED = 10036
    INVALID_CLOSE_VOLUME = 10038
    CLOSE_ORDER_EXIST = 10039
    LIMIT_POSITIONS = 10040
    REJECT_CANCEL = 10041
    LONG_ONLY = 10042
    SHORT_ONLY = 10043
    CLOSE_ONLY = 10044
    FIFO_CLOSE = 10045
    HEDGE_PROHIBITED = 10046

    @staticmethod
    def description(code: int) -> str:
        """A short human description of ``code`` (MT5 retcode or MT4 error code)."""
        text = _DESCRIPTIONS.get(code) or _MT4_DESCRIPTIONS.get(code)
        return text if text is not None else f"Unknown return code {code}"

    @staticmethod
    def is_success(code: int) -> bool:
        """True for 0, 10008 (placed), 10009 (done) and 10010 (done partially)."""
        return code in _SUCCESS

    @staticmethod
    def retry_kind(code: int) -> RetryKind:
        """The retry policy for ``code``; anything not listed is never retried."""
        if code in _SUCCESS:
            return RetryKind.SUCCESS
        return _RETRY.get(code, RetryKind.FATAL)

    @staticmethod
    def is_retryable(code: int) -> bool:
        """True when a retry may succeed: requotes, price changes, busy servers.

        Codes whose outcome is unknown (10011, 10012, 10031, MT4 128) are not "retryable":
        resending them blindly can open a second position.
        """
        return RetCode.retry_kind(code) in (RetryKind.REPRICE, RetryKind.BACKOFF)

    @staticmethod
    def is_outcome_unknown(code: int) -> bool:
        """True when the order may or may not have been executed."""
        return RetCode.retry_kind(code) is RetryKind.UNKNOWN


_SUCCESS = frozenset({0, 10008, 10009, 10010})

_DESCRIPTIONS: dict[int, str] = {
    0: "Request executed",
    10004: "Requote",
    10006: "Request rejected",
    10007: "Request canceled by trader",
    10008: "Order placed",
    10009: "Request completed",
    10010: "Only part of the request was completed",
    10011: "Request processing error",
    10012: "Request canceled by timeout",
    10013: "Invalid request",
    10014: "Invalid volume in the request",
    10015: "Invalid price in the request",
    10016: "Invalid stops in the request",
    10017: "Trade is disabled",
    10018: "Market is closed",
    10019: "Insufficient margin",
    10020: "Prices changed",
    10021: "There are no quotes to process the request",
    10022: "Invalid order expiration date in the request",
    10023: "Order state changed",
    10024: "Too frequent requests",
    10025: "No changes in request",
    10026: "Autotrading disabled by server",
    10027: "Autotrading disabled by client terminal",
    10028: "Request locked for processing",
    10029: "Order or position frozen",
    10030: "Invalid order filling type",
    10031: "No connection with the trade server",
    10032: "Operation is allowed only for live accounts",
    10033: "The number of pending orders has reached the limit",
    10034: "The volume of orders and positions for the symbol has reached the limit",
    10035: "Incorrect or prohibited order type",
    10036: "Position with the specified identifier has already been closed",
    10038: "A close volume exceeds the current position volume",
    10039: "A close order already exists for the position",
    10040: "The number of open positions has reached the limit",
    10041: "The pending order activation request is rejected, the order is canceled",
    10042: "Only long positions are allowed for the symbol",
    10043: "Only short positions are allowed for the symbol",
    10044: "Only position closing is allowed for the symbol",
    10045: "Position closing is allowed only by FIFO rule",
    10046: "Opposite positions on a single symbol are disabled",
}

# MT4 error codes reported by MT4 accounts (OrderSend/OrderClose GetLastError values).
_MT4_DESCRIPTIONS: dict[int, str] = {
    4: "Trade server is busy",
    6: "No connection with trade server",
    8: "Too frequent requests",
    128: "Trade timeout",
    129: "Invalid price",
    130: "Invalid stops",
    131: "Invalid trade volume",
    132: "Market is closed",
    133: "Trade is disabled",
    134: "Not enough money",
    135: "Price changed",
    136: "Off quotes",
    137: "Broker is busy",
    138: "Requote",
    139: "Order is locked",
    141: "Too many requests",
    146: "Trade context is busy",
}

_RETRY: dict[int, RetryKind] = {
    10004: RetryKind.REPRICE,
    10020: RetryKind.REPRICE,
    10021: RetryKind.REPRICE,
    10024: RetryKind.BACKOFF,
    10028: RetryKind.BACKOFF,
    10011: RetryKind.UNKNOWN,
    10012: RetryKind.UNKNOWN,
    10031: RetryKind.UNKNOWN,
    # MT4
    135: RetryKind.REPRICE,
    136: RetryKind.REPRICE,
    138: RetryKind.REPRICE,
    4: RetryKind.BACKOFF,
    6: RetryKind.BACKOFF,
    8: RetryKind.BACKOFF,
    137: RetryKind.BACKOFF,
    141: RetryKind.BACKOFF,
    146: RetryKind.BACKOFF,
    128: RetryKind.UNKNOWN,
}
