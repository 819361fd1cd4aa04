"""Fixtures and helpers for the simulator's own tests: plain httpx against the live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from riskd.sim import SimServer

# The starting prices every arithmetic test uses (bid, ask).
BASE_PRICES: dict[str, tuple[float, float]] = {
    "EURUSD": (1.0850, 1.0851),
    "USDJPY": (150.000, 150.010),
    "EURJPY": (162.750, 162.765),
    "XAUUSD": (2350.00, 2350.30),
    "GER40": (18500.00, 18501.50),
}


@pytest.fixture
def http(sim: SimServer) -> Iterator[httpx.Client]:
    """An httpx client for ``sim`` sending the default API key."""
    with httpx.Client(
        base_url=sim.base_url, headers={"x-api-key": sim.api_key}, timeout=5.0
    ) as client:
        yield client


@pytest.fixture
def priced(sim: SimServer) -> SimServer:
    """``sim`` with :data:`BASE_PRICES` set."""
    for symbol, (bid, ask) in BASE_PRICES.items():
        sim.set_price(symbol, bid, ask)
    return sim


@pytest.fixture
def account(sim: SimServer) -> str:
    """A USD 100k account, leverage 100."""
    return sim.create_account()


def send(http: httpx.Client, account_id: str, **body: Any) -> dict[str, Any]:
    """POST /OrderSend and return the JSON answer (asserting HTTP 200)."""
    body.setdefault("stopLoss", 0)
    body.setdefault("takeProfit", 0)
    body.setdefault("comment", "")
    response = http.post("/OrderSend", params={"id": account_id}, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def buy(http: httpx.Client, account_id: str, symbol: str, volume: float, **extra: Any) -> int:
    """A market buy that must succeed; returns the ticket."""
    result = send(http, account_id, symbol=symbol, operation=0, volume=volume, **extra)
    assert result["retcode"] == 10009, result
    ticket: int = result["ticket"]
    return ticket


def sell(http: httpx.Client, account_id: str, symbol: str, volume: float, **extra: Any) -> int:
    """A market sell that must succeed; returns the ticket."""
    result = send(http, account_id, symbol=symbol, operation=1, volume=volume, **extra)
    assert result["retcode"] == 10009, result
    ticket: int = result["ticket"]
    return ticket


def close(
    http: httpx.Client, account_id: str, ticket: int, volume: float | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"ticket": ticket}
    if volume is not None:
        body["volume"] = volume
    response = http.post("/OrderClose", params={"id": account_id}, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def modify(http: httpx.Client, account_id: str, ticket: int, **body: Any) -> dict[str, Any]:
    response = http.post("/OrderModify", params={"id": account_id}, json={"ticket": ticket, **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def positions(http: httpx.Client, account_id: str) -> dict[int, dict[str, Any]]:
    """GET /Positions, keyed by ticket."""
    response = http.get("/Positions", params={"id": account_id})
    assert response.status_code == 200, response.text
    return {p["ticket"]: p for p in response.json()}


def summary(http: httpx.Client, account_id: str) -> dict[str, Any]:
    response = http.get("/AccountSummary", params={"id": account_id})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def history(
    http: httpx.Client,
    account_id: str,
    date_from: str = "2000-01-01T00:00:00Z",
    date_to: str = "2100-01-01T00:00:00Z",
) -> list[dict[str, Any]]:
    response = http.get(
        "/OrderHistory", params={"id": account_id, "dateFrom": date_from, "dateTo": date_to}
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows
