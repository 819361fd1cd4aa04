"""The tick stream in both styles against the live simulator: ticks, reconnects, auth, junk."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging

import pytest

from riskd.api2trade import Api2TradeClient, AsyncApi2TradeClient, Quote, TickStream
from riskd.api2trade.backoff import Backoff
from riskd.api2trade.exceptions import AccountNotFoundError, AuthenticationError
from riskd.sim import SimServer

DEADLINE = 5.0


async def _next_tick(stream: TickStream, symbol: str | None = None) -> Quote:
    """The next tick (of ``symbol``), within a deadline."""
    async with asyncio.timeout(DEADLINE):
        async for tick in stream:
            if symbol is None or tick.symbol == symbol:
                return tick
    raise AssertionError("stream ended")


def _stream(
    client: AsyncApi2TradeClient, account: str, symbols: list[str], **kw: object
) -> TickStream:
    kw.setdefault("backoff", Backoff(base=0.05, cap=0.4))
    return client.open_stream(account, symbols, **kw)


async def test_stream_iter_yields_subscribed_ticks(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    ticks = client.stream_iter(account, ["EURUSD"])
    async with asyncio.timeout(DEADLINE):
        first = await anext(ticks)  # the simulator sends the current price on subscribe
        assert first.symbol == "EURUSD"
        sim.set_price("EURUSD", 1.09000, 1.09008)
        while (tick := await anext(ticks)).bid != 1.09:
            pass
    assert tick.spread_pips == pytest.approx(0.8)
    assert tick.time is not None
    await ticks.aclose()


async def test_reconnect_after_drop_resubscribes(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    connects = 0

    def on_connect() -> None:
        nonlocal connects
        connects += 1

    stream = _stream(client, account, ["EURUSD"], on_connect=on_connect)
    await _next_tick(stream)
    await stream.subscribe(["XAUUSD"])  # added while connected
    await _next_tick(stream, "XAUUSD")

    assert sim.drop_streams() == 1
    sim.set_price("XAUUSD", 2400.00, 2400.30)
    # After the drop the stream must come back with both symbols subscribed.
    async with asyncio.timeout(DEADLINE):
        while True:
            tick = await _next_tick(stream, "XAUUSD")
            if stream.stats.reconnects == 1 and tick.bid == 2400.0:
                break
    assert connects == 2
    assert sim.requests.count(path="/stream", method="WS") == 2
    assert set(stream.symbols) == {"EURUSD", "XAUUSD"}
    await stream.aclose()


async def test_accept_then_close_backs_off_growing(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.close_next_streams(4)
    stream = _stream(client, account, ["EURUSD"], backoff=Backoff(base=0.05, cap=1.0))
    await _next_tick(stream)
    arrivals = [r.at for r in sim.requests.records(path="/stream", method="WS")]
    assert len(arrivals) == 5
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # Delays are 0.05*2**n*U(0.5,1): the fourth wait is at least 0.2 s, the first at most
    # 0.05 s. A back-off that reset on each accepted handshake would keep them all short.
    assert gaps[3] > 2 * gaps[0]
    assert gaps[3] >= 0.2
    await stream.aclose()


async def test_refused_handshake_retries_until_it_is_accepted(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.reject_next_streams(2, status=503)
    stream = _stream(client, account, ["EURUSD"])
    await _next_tick(stream)
    assert sim.requests.count(path="/stream", method="WS") == 3
    await stream.aclose()


async def test_bad_credentials_stop_the_stream(sim: SimServer, account: str) -> None:
    async with AsyncApi2TradeClient(api_key="wrong", base_url=sim.base_url) as client:
        with pytest.raises(AuthenticationError):
            async with asyncio.timeout(DEADLINE):
                async for _ in client.stream_iter(account, ["EURUSD"]):
                    pass
    assert sim.requests.count(path="/stream", method="WS") == 1


async def test_unknown_account_stops_the_stream(client: AsyncApi2TradeClient) -> None:
    with pytest.raises(AccountNotFoundError):
        async with asyncio.timeout(DEADLINE):
            async for _ in client.stream_iter("00000000-0000-0000-0000-000000000000", ["EURUSD"]):
                pass


async def test_malformed_frames_are_counted_and_skipped(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    stream = _stream(client, account, ["EURUSD"])
    await _next_tick(stream)
    sim.faults.set_stream_malformed_rate(1.0)
    for i in range(5):
        sim.set_price("EURUSD", 1.08 + i / 10_000)
    sim.faults.set_stream_malformed_rate(0.0)
    sim.set_price("EURUSD", 1.1)
    tick = await _next_tick(stream)  # the five broken frames before it were skipped
    assert tick.bid == 1.1
    assert stream.stats.malformed == 5
    assert stream.connected  # junk does not cost the connection
    await stream.aclose()


async def test_callback_style_reconnects_too(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    seen: list[float] = []
    got = asyncio.Event()

    async def on_tick(tick: Quote) -> None:
        seen.append(tick.bid)
        got.set()

    task = asyncio.create_task(client.stream(account, ["EURUSD"], on_tick=on_tick))
    async with asyncio.timeout(DEADLINE):
        await got.wait()
        sim.drop_streams()
        sim.set_price("EURUSD", 1.2)
        while 1.2 not in seen:
            got.clear()
            await got.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sim.requests.count(path="/stream", method="WS") == 2


async def test_sync_client_streams_on_the_callers_loop(sim: SimServer, account: str) -> None:
    client = Api2TradeClient(api_key=sim.api_key, base_url=sim.base_url)
    try:
        async with asyncio.timeout(DEADLINE):
            async for tick in client.stream_iter(account, ["USDJPY"]):
                assert tick.symbol == "USDJPY"
                break
    finally:
        client.close()


async def test_query_auth_fallback_never_logs_the_key(
    sim: SimServer, account: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with AsyncApi2TradeClient(
        api_key=sim.api_key, base_url=sim.base_url, stream_auth="query"
    ) as client:
        stream = client.open_stream(account, ["EURUSD"])
        await _next_tick(stream)
        await stream.aclose()
        assert sim.api_key not in repr(stream)
    assert "api_key=" in caplog.text  # websockets logged the request line...
    assert f"api_key={sim.api_key}" not in caplog.text  # ...with the key scrubbed


@pytest.mark.parametrize("auth", ["api_key", "basic"])
async def test_handshake_headers_are_never_logged(
    sim: SimServer, account: str, caplog: pytest.LogCaptureFixture, auth: str
) -> None:
    caplog.set_level(logging.DEBUG)
    if auth == "api_key":
        client = AsyncApi2TradeClient(api_key=sim.api_key, base_url=sim.base_url)
        secrets = [sim.api_key]
    else:
        client = AsyncApi2TradeClient(
            pro_username="pro-user", pro_password="pro-secret-pw", base_url=sim.base_url
        )
        basic = base64.b64encode(b"pro-user:pro-secret-pw").decode()
        secrets = ["pro-secret-pw", basic]
    async with client:
        stream = client.open_stream(account, ["EURUSD"])
        with contextlib.suppress(Exception):  # the simulator refuses Basic auth: fine here
            await asyncio.wait_for(_next_tick(stream), 5)
        await stream.aclose()
    header = "x-api-key" if auth == "api_key" else "authorization"
    assert f"> {header}: ***" in caplog.text.lower()  # websockets logged the header...
    for secret in secrets:
        assert secret not in caplog.text  # ...with its value scrubbed
