"""Wire cases the simulator cannot produce, from a scripted HTTP server on loopback, and
configuration."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from riskd.api2trade import AsyncApi2TradeClient
from riskd.api2trade.backoff import Backoff
from riskd.api2trade.exceptions import (
    Api2TradeError,
    ConfigurationError,
    RateLimitError,
    ResponseFormatError,
)

KEY = "sk-very-secret-key-123"


class Bridge:
    """A real HTTP server on 127.0.0.1 answering each path from a script (the last answer
    repeats), counting the requests it got."""

    def __init__(self) -> None:
        self.script: dict[str, deque[web.Response]] = {}
        self.calls: Counter[str] = Counter()
        self.url = ""

    def respond(self, path: str, *answers: web.Response) -> None:
        self.script[path] = deque(answers)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls[request.path] += 1
        answers = self.script.get(request.path)
        if not answers:
            return web.json_response({"message": "not scripted"}, status=404)
        return answers.popleft() if len(answers) > 1 else _copy(answers[0])


def _copy(response: web.Response) -> web.Response:
    # A web.Response can be sent once; a repeated answer is rebuilt from its parts.
    return web.Response(
        status=response.status,
        body=response.body,
        headers=response.headers,
    )


def json_answer(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def bridge() -> AsyncIterator[Bridge]:
    scripted = Bridge()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    scripted.url = str(server.make_url("")).rstrip("/")
    yield scripted
    await server.close()


def _client(bridge: Bridge) -> AsyncApi2TradeClient:
    return AsyncApi2TradeClient(
        api_key=KEY, base_url=bridge.url, backoff=Backoff(base=0.001, cap=0.002)
    )


SUMMARY = {
    "balance": 1000.0,
    "equity": 990.0,
    "freeMargin": 900.0,
    "marginLevel": 1100.0,
    "currency": "USD",
}


async def test_missing_required_field_names_endpoint_and_field(bridge: Bridge) -> None:
    body = dict(SUMMARY)
    del body["equity"]
    bridge.respond("/AccountSummary", json_answer(body))
    async with _client(bridge) as client:
        with pytest.raises(ResponseFormatError) as info:
            await client.accounts.summary("acc")
    assert "/AccountSummary" in str(info.value)
    assert "'equity'" in str(info.value)


async def test_malformed_field_is_an_error_not_a_silent_zero(bridge: Bridge) -> None:
    bridge.respond("/AccountSummary", json_answer({**SUMMARY, "balance": "n/a"}))
    async with _client(bridge) as client:
        with pytest.raises(ResponseFormatError, match=r"/AccountSummary: field 'balance'"):
            await client.accounts.summary("acc")


async def test_optional_fields_may_be_absent(bridge: Bridge) -> None:
    bridge.respond("/AccountSummary", json_answer(SUMMARY))
    bridge.respond(
        "/Positions",
        json_answer(
            [
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
        ),
    )
    async with _client(bridge) as client:
        s = await client.accounts.summary("acc")
        (p,) = await client.orders.positions("acc")
    assert s.credit is None and s.leverage is None
    assert p.commission is None and p.current_price is None and p.magic is None


async def test_bad_entry_in_a_list_names_its_index(bridge: Bridge) -> None:
    bridge.respond("/Positions", json_answer([{"ticket": 5, "symbol": "EURUSD"}]))
    async with _client(bridge) as client:
        with pytest.raises(ResponseFormatError, match=r"/Positions: field '0.type'"):
            await client.orders.positions("acc")


async def test_non_json_body(bridge: Bridge) -> None:
    bridge.respond("/AccountSummary", web.Response(text="<html>gateway</html>"))
    async with _client(bridge) as client:
        with pytest.raises(ResponseFormatError, match="not JSON"):
            await client.accounts.summary("acc")


async def test_retry_after_as_http_date_falls_back_to_backoff(bridge: Bridge) -> None:
    bridge.respond(
        "/AccountSummary",
        web.Response(status=429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}),
        json_answer(SUMMARY),
    )
    async with _client(bridge) as client:
        assert (await client.accounts.summary("acc")).balance == 1000.0
    assert bridge.calls["/AccountSummary"] == 2


async def test_retry_after_beyond_the_limit_is_not_waited(bridge: Bridge) -> None:
    bridge.respond("/AccountSummary", web.Response(status=429, headers={"Retry-After": "3600"}))
    async with _client(bridge) as client:
        with pytest.raises(RateLimitError) as info:
            await client.accounts.summary("acc")
    assert info.value.retry_after == 3600
    assert bridge.calls["/AccountSummary"] == 1


async def test_400_carries_the_server_message(bridge: Bridge) -> None:
    bridge.respond("/GetQuote", json_answer({"message": "unknown symbol FOO"}, status=400))
    async with _client(bridge) as client:
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


async def test_secrets_never_in_repr_errors_or_logs(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bridge.respond("/AccountSummary", json_answer({"message": "bad key"}, status=401))
    client = _client(bridge)
    pro = AsyncApi2TradeClient(pro_username="u", pro_password="pro-secret-pw", base_url=bridge.url)
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


def test_the_proxy_comes_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from riskd.api2trade.transport import _env_proxy

    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert _env_proxy("https://api.metatraderapi.dev") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert _env_proxy("https://api.metatraderapi.dev") == "http://proxy.invalid:3128"
    assert _env_proxy("http://127.0.0.1:9108") is None
