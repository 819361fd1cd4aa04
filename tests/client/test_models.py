"""Models, enums and statistics: pure, no network."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from riskd.api2trade import OrderType, RetCode, RetryKind
from riskd.api2trade.models import (
    AccountSummary,
    OrderHistoryItem,
    PaginatedHistory,
    Position,
    Quote,
    summary_stats,
)


@pytest.mark.parametrize(
    ("symbol", "bid", "ask", "pips"),
    [
        ("EURUSD", 1.08500, 1.08510, 1.0),
        ("USDJPY", 151.250, 151.270, 2.0),
        ("EURJPY", 163.100, 163.115, 1.5),
        ("XAUUSD", 2650.10, 2650.40, 3.0),
        ("EURUSD.a", 1.08500, 1.08508, 0.8),
    ],
)
def test_spread_pips_counts_pips_not_points(
    symbol: str, bid: float, ask: float, pips: float
) -> None:
    q = Quote(symbol=symbol, bid=bid, ask=ask)
    assert q.spread_pips == pytest.approx(pips)
    assert q.mid == pytest.approx((bid + ask) / 2)


def test_quote_prints_like_the_sdk_readme() -> None:
    q = Quote(symbol="EURUSD", bid=1.085, ask=1.0851)
    assert str(q) == "Quote(EURUSD: bid=1.08500, ask=1.08510, spread=1.0 pips)"


def test_quote_time_without_zone_is_utc() -> None:
    q = Quote.model_validate(
        {"symbol": "EURUSD", "bid": 1, "ask": 1.1, "time": "2026-11-25T12:00:00"}
    )
    assert q.time == datetime(2026, 11, 25, 12, tzinfo=UTC)


def _summary(**kw: float | None) -> AccountSummary:
    base = {
        "balance": 1000.0,
        "equity": 1000.0,
        "free_margin": 1000.0,
        "margin_level": 0.0,
        "currency": "USD",
    }
    base.update(kw)
    return AccountSummary.model_validate(base)


def test_margin_call_risk_ignores_accounts_without_margin() -> None:
    assert not _summary(margin_level=0.0, margin=0.0).is_margin_call_risk
    assert not _summary(margin_level=0.0).is_margin_call_risk
    assert _summary(margin_level=120.0, margin=500.0).is_margin_call_risk
    assert _summary(margin_level=120.0).is_margin_call_risk
    assert not _summary(margin_level=150.0, margin=500.0).is_margin_call_risk


def test_position_total_pnl_and_side_normalisation() -> None:
    p = Position.model_validate(
        {
            "ticket": 1,
            "symbol": "EURUSD",
            "type": "Sell",
            "volume": 0.1,
            "openPrice": 1.1,
            "profit": -12.5,
            "swap": -1.25,
            "commission": -0.7,
        }
    )
    assert p.order_type == "sell"
    assert p.total_pnl == pytest.approx(-14.45)
    numeric = Position.model_validate(
        {
            "ticket": 1,
            "symbol": "EURUSD",
            "type": 0,
            "volume": 0.1,
            "openPrice": 1.1,
            "profit": 3,
            "swap": 0,
        }
    )
    assert numeric.order_type == "buy"
    assert numeric.total_pnl == 3.0  # commission absent: optional


def _item(net: float) -> OrderHistoryItem:
    return OrderHistoryItem.model_validate(
        {
            "ticket": 1,
            "symbol": "EURUSD",
            "type": "buy",
            "volume": 0.1,
            "openPrice": 1.0,
            "closePrice": 1.0,
            "openTime": "2026-11-01T00:00:00Z",
            "closeTime": "2026-11-01T01:00:00Z",
            "profit": net + 1.0,
            "swap": -0.5,
            "commission": -0.5,
        }
    )


def test_summary_stats() -> None:
    stats = summary_stats([_item(100.0), _item(50.0), _item(-50.0), _item(0.0)])
    assert stats["total_trades"] == 4
    assert stats["win_rate"] == pytest.approx(0.5)
    assert stats["profit_factor"] == pytest.approx(3.0)
    assert stats["net_profit"] == pytest.approx(100.0)
    assert stats["largest_loss"] == pytest.approx(-50.0)
    assert summary_stats([_item(10.0)])["profit_factor"] == math.inf
    assert summary_stats([])["win_rate"] == 0.0


def test_pagination_properties() -> None:
    page = PaginatedHistory.model_validate({"data": [], "total": 101, "page": 2, "pageSize": 50})
    assert page.total_pages == 3
    assert page.has_next
    last = PaginatedHistory.model_validate({"data": [], "total": 100, "page": 2, "pageSize": 50})
    assert not last.has_next


def test_order_type() -> None:
    assert int(OrderType.BUY_MARKET) == 0
    assert OrderType.BUY_MARKET.is_market()
    assert OrderType.BUY_LIMIT.is_pending()
    assert OrderType.SELL_STOP.side == "sell"


@pytest.mark.parametrize("code", [0, 10008, 10009, 10010])
def test_success_codes(code: int) -> None:
    assert RetCode.is_success(code)
    assert RetCode.retry_kind(code) is RetryKind.SUCCESS


def test_retry_policy_follows_the_official_table() -> None:
    assert RetCode.description(10019) == "Insufficient margin"
    assert RetCode.is_retryable(10004)
    assert not RetCode.is_retryable(10019)
    for code in (10004, 10020, 10021):
        assert RetCode.retry_kind(code) is RetryKind.REPRICE
    for code in (10024, 10028):
        assert RetCode.retry_kind(code) is RetryKind.BACKOFF
    for code in (10011, 10012, 10031, 128):
        assert RetCode.is_outcome_unknown(code)
        assert not RetCode.is_retryable(code)
    # Above 10025 the SDK's table is wrong; the official one never retries these.
    for code in (10026, 10027, 10029, 10030, 10032, 10036, 10040, 10044, 10046):
        assert RetCode.retry_kind(code) is RetryKind.FATAL
    assert RetCode.is_retryable(138) and RetCode.is_retryable(146)  # MT4
    assert "Unknown" in RetCode.description(10037)
