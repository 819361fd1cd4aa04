"""History filtering and pagination; auth and request errors of the REST endpoints."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from riskd.sim import ManualClock, SimServer
from tests.sim.conftest import close, history

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def close_at(sim: SimServer, http: httpx.Client, account: str, when: datetime) -> int:
    """Open a 0.01 EURUSD position an hour before ``when`` and close it at ``when``."""
    sim.set_time(when - timedelta(hours=1))
    ticket = sim.open_position(account, "EURUSD", "buy", 0.01)
    sim.set_time(when)
    assert close(http, account, ticket)["retcode"] == 10009
    return ticket


def page(http: httpx.Client, account: str, number: int, size: int, **dates: str) -> Any:
    params: dict[str, str | int] = {
        "id": account,
        "dateFrom": dates.get("date_from", "2026-01-01T00:00:00Z"),
        "dateTo": dates.get("date_to", "2027-01-01T00:00:00Z"),
        "page": number,
        "pageSize": size,
    }
    response = http.get("/OrderHistoryPagination", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_history_filters_on_close_time(sim: SimServer, http: httpx.Client, account: str) -> None:
    early = close_at(sim, http, account, T0)
    mid = close_at(sim, http, account, T0 + timedelta(days=1))
    close_at(sim, http, account, T0 + timedelta(days=4))
    rows = history(http, account, "2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z")
    assert [r["ticket"] for r in rows] == [early, mid]
    assert rows[0]["closeTime"] == "2026-11-01T10:00:00.000Z"
    assert rows[0]["openTime"] == "2026-11-01T09:00:00.000Z"
    # Both bounds are inclusive, and any ISO 8601 offset is understood.
    exact = history(http, account, "2026-11-02T10:00:00Z", "2026-11-02T11:00:00+01:00")
    assert [r["ticket"] for r in exact] == [mid]


def test_history_is_ordered_by_close_time_not_by_close_order(
    sim: SimServer, http: httpx.Client, account: str
) -> None:
    later = close_at(sim, http, account, T0 + timedelta(hours=5))
    earlier = close_at(sim, http, account, T0)  # closed second, but at an earlier time
    assert [r["ticket"] for r in history(http, account)] == [earlier, later]


def test_pagination_across_pages(sim: SimServer, http: httpx.Client, account: str) -> None:
    times = [T0 + timedelta(minutes=m) for m in (30, 0, 60, 10, 50, 20, 40)]
    by_time = dict(sorted((t, close_at(sim, http, account, t)) for t in times))
    expected = list(by_time.values())
    first, second, third = (page(http, account, n, 3) for n in (1, 2, 3))
    assert (first["total"], first["page"], first["pageSize"]) == (7, 1, 3)
    assert [r["ticket"] for r in first["data"] + second["data"] + third["data"]] == expected
    assert len(third["data"]) == 1
    assert page(http, account, 4, 3) == {"data": [], "total": 7, "page": 4, "pageSize": 3}
    narrow = page(
        http, account, 1, 50, date_from="2026-11-01T10:15:00Z", date_to="2026-11-01T10:45:00Z"
    )
    assert narrow["total"] == 3


def test_pagination_defaults_and_bad_parameters(http: httpx.Client, account: str) -> None:
    params = {"id": account, "dateFrom": "2026-01-01T00:00:00Z", "dateTo": "2027-01-01T00:00:00Z"}
    ok = http.get("/OrderHistoryPagination", params=params).json()
    assert (ok["page"], ok["pageSize"]) == (1, 50)
    for bad in ({"page": 0}, {"pageSize": 0}, {"page": "x"}, {"dateFrom": "yesterday"}):
        response = http.get("/OrderHistoryPagination", params={**params, **bad})
        assert response.status_code == 400
        assert "message" in response.json()
    assert http.get("/OrderHistory", params={"id": account}).status_code == 400


def test_injected_clock_drives_all_times() -> None:
    clock = ManualClock(datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC))
    with SimServer(port=0, tick_rate=0, clock=clock) as sim:
        sim.set_price("EURUSD", 1.1)
        assert sim.quote("EURUSD").time == datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
        account = sim.create_account()
        ticket = sim.open_position(account, "EURUSD", "sell", 0.1)
        clock.advance(minutes=5)
        with httpx.Client(base_url=sim.base_url, headers={"x-api-key": sim.api_key}) as http:
            quote = http.get("/GetQuote", params={"id": account, "symbol": "EURUSD"}).json()
            assert quote["time"] == "2026-03-04T05:06:07.891Z"
            close(http, account, ticket)
            [row] = history(http, account)
            assert row["closeTime"] == "2026-03-04T05:11:07.891Z"


# -- auth and request errors --------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-api-key": "wrong"},
        basic("pro-user", "wrong"),
        basic("nobody", "pro-pass"),
        {"authorization": "Basic !!!not-base64"},
        {"authorization": "Bearer sim-key"},
    ],
)
def test_bad_or_missing_credentials_are_401(
    sim: SimServer, account: str, headers: dict[str, str]
) -> None:
    response = httpx.get(f"{sim.base_url}/AccountSummary", params={"id": account}, headers=headers)
    assert response.status_code == 401
    assert "message" in response.json()


def test_api_key_query_parameter_is_not_accepted_for_rest(sim: SimServer, account: str) -> None:
    response = httpx.get(
        f"{sim.base_url}/AccountSummary", params={"id": account, "api_key": sim.api_key}
    )
    assert response.status_code == 401


def test_basic_auth_works(sim: SimServer, account: str) -> None:
    response = httpx.get(
        f"{sim.base_url}/AccountSummary",
        params={"id": account},
        headers=basic("pro-user", "pro-pass"),
    )
    assert response.status_code == 200
    assert response.json()["currency"] == "USD"


def test_configured_keys_and_users() -> None:
    with SimServer(port=0, tick_rate=0, api_keys=["k1", "k2"], users={"u": "p"}) as sim:
        account = sim.create_account()
        url = f"{sim.base_url}/CheckConnect"
        assert httpx.get(url, params={"id": account}, headers={"x-api-key": "k2"}).is_success
        assert httpx.get(url, params={"id": account}, headers=basic("u", "p")).is_success
        bad = httpx.get(url, params={"id": account}, headers={"x-api-key": "sim-key"})
        assert bad.status_code == 401


def test_unknown_account_is_404(http: httpx.Client) -> None:
    for path in ("/CheckConnect", "/AccountSummary", "/Positions"):
        response = http.get(path, params={"id": "00000000-0000-4000-8000-000000000000"})
        assert response.status_code == 404
        assert "message" in response.json()
    response = http.post("/OrderSend", params={"id": "nope"}, json={"symbol": "EURUSD"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "params", "content"),
    [
        ("GET", "/AccountSummary", {}, None),  # no id
        ("GET", "/GetQuote", {"id": "{account}"}, None),  # no symbol
        ("GET", "/GetQuote", {"id": "{account}", "symbol": "NOPE"}, None),
        ("POST", "/OrderSend", {"id": "{account}"}, b"{not json"),
        ("POST", "/OrderSend", {"id": "{account}"}, b"[1, 2]"),
        ("POST", "/OrderSend", {"id": "{account}"}, b'{"symbol": "EURUSD", "operation": 0}'),
        ("POST", "/OrderSend", {"id": "{account}"}, b'{"symbol": "EURUSD", "volume": "1"}'),
        ("POST", "/OrderClose", {"id": "{account}"}, b"{}"),
        ("POST", "/RegisterAccount", {}, b'{"login": "1"}'),
    ],
)
def test_malformed_requests_are_400(
    http: httpx.Client,
    account: str,
    method: str,
    path: str,
    params: dict[str, str],
    content: bytes | None,
) -> None:
    params = {k: v.format(account=account) for k, v in params.items()}
    response = http.request(method, path, params=params, content=content)
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["message"], str)


def test_account_lifecycle_endpoints(sim: SimServer, http: httpx.Client) -> None:
    body = {"login": "123456", "password": "secret", "server": "ICMarkets-Live01"}
    registered = http.post("/RegisterAccount", json=body).json()
    assert registered["status"] == "connected"
    account = registered["id"]
    assert http.post("/RegisterAccount", json=body).json()["id"] == account  # idempotent
    assert http.get("/CheckConnect", params={"id": account}).json() == {
        "id": account,
        "connected": True,
    }
    sim.set_connected(account, False)
    assert http.get("/CheckConnect", params={"id": account}).json()["connected"] is False
    deleted = http.request("DELETE", "/DeleteAccount", json={"id": account})
    assert deleted.json() == {"id": account, "status": "deleted"}
    assert http.get("/CheckConnect", params={"id": account}).status_code == 404
    again = http.request("DELETE", "/DeleteAccount", json={"id": account})
    assert again.status_code == 404
    # The request log never keeps a password.
    [first, *_] = sim.requests.records(path="/RegisterAccount")
    assert first.body == {**body, "password": "***"}


def test_get_quote(priced: SimServer, http: httpx.Client, account: str) -> None:
    quote = http.get("/GetQuote", params={"id": account, "symbol": "XAUUSD"}).json()
    assert (quote["symbol"], quote["bid"], quote["ask"]) == ("XAUUSD", 2350.00, 2350.30)
    assert quote["time"].endswith("Z") and len(quote["time"]) == len("2026-11-25T12:00:00.123Z")


def test_unknown_paths_and_methods_answer_json(http: httpx.Client) -> None:
    assert http.get("/Nope").status_code == 404
    assert http.get("/Nope").json() == {"message": "Not Found"}
    wrong = http.get("/OrderSend")
    assert wrong.status_code == 405
    assert "message" in wrong.json()
