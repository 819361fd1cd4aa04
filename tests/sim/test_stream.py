"""The quote stream over a real websockets client: handshake, subscriptions, ticks, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from riskd.sim import SimServer
from riskd.sim.faults import FaultInjector
from riskd.sim.market import Market
from riskd.sim.stream import StreamConnection, StreamHub

KEY = {"x-api-key": "sim-key"}


@asynccontextmanager
async def stream(
    sim: SimServer, account: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    url = f"{sim.ws_url}?id={account}"
    async with connect(url, additional_headers=KEY if headers is None else headers, **kwargs) as ws:
        yield ws


async def recv(ws: ClientConnection, within: float = 2.0) -> dict[str, Any]:
    """The next message as JSON, failing after ``within`` seconds."""
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return message


async def subscribe(ws: ClientConnection, *symbols: str, action: str = "subscribe") -> None:
    await ws.send(json.dumps({"action": action, "symbols": list(symbols)}))


async def wait_until(predicate: Callable[[], bool], within: float = 2.0) -> None:
    """Poll ``predicate`` until true, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def status_of_refusal(url: str, headers: dict[str, str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers):
            pass
    return refused.value.response.status_code


# -- handshake ----------------------------------------------------------------------------------


async def test_auth_is_refused_with_http_401(sim: SimServer, account: str) -> None:
    url = f"{sim.ws_url}?id={account}"
    assert await status_of_refusal(url, {}) == 401
    assert await status_of_refusal(url, {"x-api-key": "wrong"}) == 401
    assert await status_of_refusal(f"{url}&api_key=wrong", {}) == 401
    token = base64.b64encode(b"pro-user:nope").decode()
    assert await status_of_refusal(url, {"authorization": f"Basic {token}"}) == 401


async def test_unknown_or_missing_account_is_refused(sim: SimServer) -> None:
    assert await status_of_refusal(f"{sim.ws_url}?id=nope", KEY) == 404
    assert await status_of_refusal(sim.ws_url, KEY) == 400


async def test_every_auth_mode_is_accepted(sim: SimServer, account: str) -> None:
    token = base64.b64encode(b"pro-user:pro-pass").decode()
    for headers, suffix in (
        (KEY, ""),
        ({"authorization": f"Basic {token}"}, ""),
        ({}, "&api_key=sim-key"),
    ):
        async with connect(f"{sim.ws_url}?id={account}{suffix}", additional_headers=headers) as ws:
            await subscribe(ws, "EURUSD")
            assert (await recv(ws))["type"] == "quote"
    assert [r.status for r in sim.requests.records(method="WS")] == [101, 101, 101]


# -- subscriptions and ticks --------------------------------------------------------------------


async def test_subscribe_sends_a_snapshot_then_every_tick(sim: SimServer, account: str) -> None:
    sim.set_price("EURUSD", 1.0850, 1.0851)
    async with stream(sim, account) as ws:
        await subscribe(ws, "EURUSD")
        snapshot = await recv(ws)
        assert {k: snapshot[k] for k in ("type", "symbol", "bid", "ask")} == {
            "type": "quote",
            "symbol": "EURUSD",
            "bid": 1.0850,
            "ask": 1.0851,
        }
        assert snapshot["time"].endswith("Z")
        sim.set_price("GBPUSD", 1.3)  # not subscribed: not sent
        sim.set_price("EURUSD", 1.0860)
        tick = await recv(ws)
        assert (tick["symbol"], tick["bid"], tick["ask"]) == ("EURUSD", 1.0860, 1.08608)


async def test_subscriptions_are_additive_and_can_be_removed(sim: SimServer, account: str) -> None:
    async with stream(sim, account) as ws:
        await subscribe(ws, "EURUSD")
        await subscribe(ws, "xauusd", "EURUSD")  # case-insensitive; EURUSD already there
        assert {(await recv(ws))["symbol"] for _ in range(2)} == {"EURUSD", "XAUUSD"}
        await subscribe(ws, "EURUSD", action="unsubscribe")
        await wait_until(lambda: sim.stream_stats()[0]["symbols"] == ["XAUUSD"])
        sim.set_prices([("EURUSD", 1.09), ("XAUUSD", 2400.0)])
        assert (await recv(ws))["symbol"] == "XAUUSD"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("{not json", "invalid JSON"),
        ("[1]", "expected a JSON object"),
        ('{"action": "dance", "symbols": []}', "unknown action"),
        ('{"action": "subscribe", "symbols": "EURUSD"}', "'symbols' must be a list"),
        ('{"action": "subscribe", "symbols": ["FOO", "BAR"]}', "unknown symbol(s): FOO, BAR"),
    ],
)
async def test_bad_client_messages_get_an_error_message(
    sim: SimServer, account: str, message: str, error: str
) -> None:
    async with stream(sim, account) as ws:
        await ws.send(message)
        reply = await recv(ws)
        assert reply["type"] == "error"
        assert error in reply["message"]
        await subscribe(ws, "EURUSD")  # the connection is still usable
        assert (await recv(ws))["type"] == "quote"


async def test_random_walk_ticks_are_rounded_with_the_usual_spread() -> None:
    async with SimServer(port=0, tick_rate=500, snapshot_on_subscribe=False) as sim:
        account = sim.create_account()
        async with stream(sim, account) as ws:
            await subscribe(ws, "EURUSD", "USDJPY", "XAUUSD")
            ticks = [await recv(ws) for _ in range(30)]
    spreads = {"EURUSD": 0.00008, "USDJPY": 0.010, "XAUUSD": 0.30}
    digits = {"EURUSD": 5, "USDJPY": 3, "XAUUSD": 2}
    for tick in ticks:
        symbol = tick["symbol"]
        assert tick["bid"] == round(tick["bid"], digits[symbol])
        assert tick["ask"] - tick["bid"] == pytest.approx(spreads[symbol], abs=1e-9)
    assert len({t["bid"] for t in ticks}) > 5  # it moves


async def test_timed_script_drives_ticks_and_stop_loss(sim: SimServer, account: str) -> None:
    sim.set_price("EURUSD", 1.0850, 1.0851)
    ticket = sim.open_position(account, "EURUSD", "buy", 0.1, stop_loss=1.0820)
    async with stream(sim, account) as ws:
        await subscribe(ws, "EURUSD")
        await recv(ws)  # snapshot
        sim.script_prices("EURUSD", [1.0840, 1.0830, 1.0819, 1.0830], interval=0.02)
        bids = [(await recv(ws))["bid"] for _ in range(4)]
    assert bids == [1.0840, 1.0830, 1.0819, 1.0830]
    assert ticket not in {p["ticket"] for p in sim.positions(account)}  # stopped at 1.0819
    assert sim.script_remaining("EURUSD") == 0


async def test_manual_script_steps(sim: SimServer, account: str) -> None:
    sim.script_prices("GER40", [18000.0, 18010.0])
    async with stream(sim, account) as ws:
        await subscribe(ws, "GER40")
        await recv(ws)
        assert sim.script_remaining("GER40") == 2
        sim.step_script("GER40")
        assert (await recv(ws))["bid"] == 18000.0
        sim.step_script("GER40")
        assert (await recv(ws))["ask"] == 18011.5
        assert sim.step_script("GER40") is None


# -- slow clients -------------------------------------------------------------------------------


def test_a_full_queue_drops_the_oldest_message() -> None:
    async def scenario() -> None:
        conn = StreamConnection("acc", queue_size=3)
        for i in range(10):
            conn.offer(str(i))  # never blocks
        assert (conn.queued, conn.dropped) == (3, 7)
        sent: list[str] = []

        async def send(text: str) -> None:
            sent.append(text)

        async def close(code: int) -> None:
            sent.append(f"close {code}")

        sender = asyncio.create_task(conn.run_sender(send, close))
        await asyncio.sleep(0)
        conn.close(1001)
        await asyncio.wait_for(sender, 1)
        assert sent[-1] == "close 1001"
        assert all(int(s) >= 7 for s in sent[:-1])

    asyncio.run(scenario())


async def test_a_stalled_client_does_not_hold_up_the_others() -> None:
    # A server thread of its own, so its loop runs the senders between our control calls.
    with SimServer(port=0, tick_rate=0, stream_queue_size=64) as sim:
        account, other = sim.create_account(), sim.create_account()
        # A client that stops reading: tiny receive buffer, one-frame client queue.
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        raw.connect(("127.0.0.1", sim.port))
        async with (
            connect(
                f"{sim.ws_url}?id={account}",
                additional_headers=KEY,
                sock=raw,
                max_queue=1,
                close_timeout=0.1,  # its close frame is stuck behind the backlog
            ) as stalled,
            stream(sim, other) as reader,
        ):
            await subscribe(stalled, "EURUSD")
            await subscribe(reader, "EURUSD")
            await wait_until(lambda: all(s["symbols"] for s in sim.stream_stats()))
            started = time.monotonic()
            for batch in range(60):  # in batches, so the server's senders run in between
                sim.set_prices([("EURUSD", 1.0 + (batch + i) / 10_000) for i in range(100)])
            sim.set_price("EURUSD", 1.2345)
            while (await recv(reader))["bid"] != 1.2345:
                pass
            assert time.monotonic() - started < 5
            # (How much the stalled one loses depends on kernel socket buffers, up to 4 MB on
            # loopback; the hub-level test below pins the bounded-queue behaviour down.)


def test_hub_fans_out_past_a_sender_that_never_returns() -> None:
    async def scenario() -> None:
        market = Market(seed=1)
        hub = StreamHub(market, FaultInjector(), queue_size=16, snapshot_on_subscribe=False)
        stuck, live = hub.open("stuck"), hub.open("live")
        for conn in (stuck, live):
            hub.handle_message(conn, '{"action": "subscribe", "symbols": ["EURUSD"]}')
        never = asyncio.Event()
        received: list[str] = []

        async def blocked(text: str) -> None:
            await never.wait()

        async def record(text: str) -> None:
            received.append(text)

        async def close(code: int) -> None:
            pass

        tasks = [
            asyncio.create_task(stuck.run_sender(blocked, close)),
            asyncio.create_task(live.run_sender(record, close)),
        ]
        for i in range(1000):
            hub.broadcast(market.set_price("EURUSD", 1.0 + i / 10_000))
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(received) == 1000  # the live client got every tick
        assert json.loads(received[-1])["bid"] == 1.0999
        assert (stuck.queued, stuck.dropped) == (16, 1000 - 16 - 1)  # one is in the blocked send
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())


# -- stream faults ------------------------------------------------------------------------------


async def test_reject_next_streams_with_503(sim: SimServer, account: str) -> None:
    sim.faults.reject_next_streams(2)
    url = f"{sim.ws_url}?id={account}"
    assert await status_of_refusal(url, KEY) == 503
    assert await status_of_refusal(url, KEY) == 503
    async with stream(sim, account) as ws:
        await subscribe(ws, "EURUSD")
        assert (await recv(ws))["type"] == "quote"
    assert [r.status for r in sim.requests.records(path="/stream")] == [503, 503, 101]


async def test_accept_then_close(sim: SimServer, account: str) -> None:
    sim.faults.close_next_streams(1)
    async with stream(sim, account) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    async with stream(sim, account) as ws:  # only the next one
        await subscribe(ws, "EURUSD")
        assert (await recv(ws))["type"] == "quote"


async def test_drop_all_live_streams(sim: SimServer, account: str) -> None:
    async with stream(sim, account) as first, stream(sim, account) as second:
        await wait_until(lambda: sim.stream_connections() == 2)
        assert sim.drop_streams() == 2
        for ws in (first, second):
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 2)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    await wait_until(lambda: sim.stream_connections() == 0)
    async with stream(sim, account) as again:  # reconnecting works
        await subscribe(again, "EURUSD")
        assert (await recv(again))["type"] == "quote"


async def test_malformed_messages(sim: SimServer, account: str) -> None:
    sim.faults.set_stream_malformed_rate(1.0)
    async with stream(sim, account) as ws:
        await subscribe(ws, "EURUSD")
        await recv(ws)  # the snapshot is never corrupted
        kinds = set()
        for i in range(12):
            sim.set_price("EURUSD", 1.08 + i / 10_000)
            text = await asyncio.wait_for(ws.recv(), 2)
            try:
                message = json.loads(text)
            except ValueError:
                kinds.add("not json")
                continue
            assert not {"bid", "ask", "time", "symbol"} <= message.keys()
            kinds.add("missing fields")
    assert kinds == {"not json", "missing fields"}


async def test_bad_ticks(sim: SimServer, account: str) -> None:
    sim.faults.set_stream_bad_tick_rate(1.0)
    async with stream(sim, account) as ws:
        await subscribe(ws, "EURUSD")
        await recv(ws)
        for i in range(8):
            sim.set_price("EURUSD", 1.08 + i / 10_000)
            tick = await recv(ws)
            assert tick["type"] == "quote" and tick["symbol"] == "EURUSD"
            assert tick["bid"] <= 0 or tick["ask"] < tick["bid"]
        sim.reset_faults()
        sim.set_price("EURUSD", 1.0900)
        assert (await recv(ws))["bid"] == 1.0900
    assert sim.quote("EURUSD").bid == 1.0900  # broken ticks never reach the market


async def test_stop_closes_live_streams(account: str, sim: SimServer) -> None:
    async with stream(sim, account) as ws:
        await wait_until(lambda: sim.stream_connections() == 1)
        await asyncio.to_thread(sim.stop)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
