"""Wire cases the simulator cannot produce, through respx (no network), and configuration."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from riskd.api2trade import AsyncApi2TradeClient
from riskd.api2trade.backoff import Backoff
from riskd.api2trade.exceptions import (
    Api2TradeError,
    ConfigurationError,
    RateLimitError,
    ResponseFormatError,
)

BASE = "https://bridge.invalid"
KEY = "sk-very-secret-key-123"


def _client() -> AsyncApi2TradeClient:
    return AsyncApi2TradeClient(api_key=KEY, base_url=BASE, backoff=Backoff(base=0.001, cap=0.002))


SUMMARY = {
    "balance": 1000.0,
    "equity": 990.0,
    "freeMargin": 900.0,
    "marginLevel": 1100.0,
    "currency": "USD",
}


@respx.mock(base_url=BASE)
async def test_missing_required_field_names_endpoint_and_field(
    respx_mock: respx.MockRouter,
) -> None:
    body = dict(SUMMARY)
    del body["equity"]
    respx_mock.get("/AccountSummary").respond(json=body)
    async with _client() as client:
        with pytest.raises(ResponseFormatError) as info:
            await client.accounts.summary("acc")
    assert "/AccountSummary" in str(info.value)
    assert "'equity'" in str(info.value)


@respx.mock(base_url=BASE)
async def test_malformed_field_is_an_error_not_a_silent_zero(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/AccountSummary").respond(json={**SUMMARY, "balance": "n/a"})
    async with _client() as client:
        with pytest.raises(ResponseFormatError, match=r"/AccountSummary: field 'balance'"):
            await client.accounts.summary("acc")


@respx.mock(base_url=BASE)
async def test_optional_fields_may_be_absent(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/AccountSummary").respond(json=SUMMARY)
    respx_mock.get("/Positions").respond(
        json=[
            {
                "ticket": 5,
                "symbol": "EURUSD",
                "type": "buy",
                "volume": 0.1,
                "openPrice": 1.08,
                "profit": 1.5,
                "swap": 0.0,
            }
        ]
    )
    async with _client() as client:
        s = await client.accounts.summary("acc")
        (p,) = await client.orders.positions("acc")
    assert s.credit is None and s.leverage is None
    assert p.commission is None and p.current_price is None and p.magic is None


@respx.mock(base_url=BASE)
async def test_bad_entry_in_a_list_names_its_index(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/Positions").respond(json=[{"ticket": 5, "symbol": "EURUSD"}])
    async with _client() as client:
        with pytest.raises(ResponseFormatError, match=r"/Positions: field '0.type'"):
            await client.orders.positions("acc")


@respx.mock(base_url=BASE)
async def test_non_json_body(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/AccountSummary").respond(text="<html>gateway</html>")
    async with _client() as client:
        with pytest.raises(ResponseFormatError, match="not JSON"):
            await client.accounts.summary("acc")


@respx.mock(base_url=BASE)
async def test_retry_after_as_http_date_falls_back_to_backoff(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("/AccountSummary")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
        httpx.Response(200, json=SUMMARY),
    ]
    async with _client() as client:
        assert (await client.accounts.summary("acc")).balance == 1000.0
    assert route.call_count == 2


@respx.mock(base_url=BASE)
async def test_retry_after_beyond_the_limit_is_not_waited(respx_mock: respx.MockRouter) -> None:
    route = respx_mock.get("/AccountSummary").respond(429, headers={"Retry-After": "3600"})
    async with _client() as client:
        with pytest.raises(RateLimitError) as info:
            await client.accounts.summary("acc")
    assert info.value.retry_after == 3600
    assert route.call_count == 1


@respx.mock(base_url=BASE)
async def test_400_carries_the_server_message(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/GetQuote").respond(400, json={"message": "unknown symbol FOO"})
    async with _client() as client:
        with pytest.raises(Api2TradeError) as info:
            await client.market.quote("acc", "FOO")
    assert info.value.status_code == 400
    assert str(info.value) == "/GetQuote: unknown symbol FOO"


def test_missing_credentials_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("API2TRADE_API_KEY", "API2TRADE_PRO_USERNAME", "API2TRADE_PRO_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigurationError, match="API2TRADE_API_KEY"):
        AsyncApi2TradeClient()
    with pytest.raises(ConfigurationError, match="API2TRADE_PRO_PASSWORD"):
        AsyncApi2TradeClient(pro_username="someone")


def test_env_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API2TRADE_API_KEY", KEY)
    monkeypatch.setenv("API2TRADE_BASE_URL", "http://127.0.0.1:9")
    client = AsyncApi2TradeClient()
    assert client.settings.base_url == "http://127.0.0.1:9"
    assert client.settings.stream_url == "ws://127.0.0.1:9/stream"
    monkeypatch.setenv("API2TRADE_WS_URL", "ws://127.0.0.1:10/feed")
    assert AsyncApi2TradeClient().settings.stream_url == "ws://127.0.0.1:10/feed"


def test_bad_env_value_is_named_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API2TRADE_TIMEOUT", "soon-" + KEY)
    with pytest.raises(ConfigurationError) as info:
        AsyncApi2TradeClient(api_key=KEY)
    assert "API2TRADE_TIMEOUT" in str(info.value)
    assert KEY not in str(info.value)


@respx.mock(base_url=BASE)
async def test_secrets_never_in_repr_errors_or_logs(
    respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    respx_mock.get("/AccountSummary").respond(401, json={"message": "bad key"})
    client = _client()
    pro = AsyncApi2TradeClient(pro_username="u", pro_password="pro-secret-pw", base_url=BASE)
    with pytest.raises(Api2TradeError) as info:
        await client.accounts.summary("acc")
    await client.aclose()
    await pro.aclose()
    texts = [
        repr(client),
        str(client),
        repr(client.settings),
        repr(pro),
        repr(pro.settings),
        str(info.value),
        repr(info.value),
        caplog.text,
    ]
    for text in texts:
        assert KEY not in text
        assert "pro-secret-pw" not in text
