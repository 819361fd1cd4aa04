"""The ``/_sim`` HTTP control surface and the in-process lifecycle of SimServer."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from riskd.sim import SimServer
from tests.sim.conftest import positions, summary


def ctl(http: httpx.Client, name: str, **kwargs: Any) -> Any:
    response = http.post(f"/_sim/{name}", json=kwargs)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_drive_a_scenario_over_http(sim: SimServer, http: httpx.Client) -> None:
    account = ctl(http, "create_account", balance=5000, currency="eur", leverage=30)
    assert summary(http, account)["currency"] == "EUR"
    quote = ctl(http, "set_price", symbol="GER40", bid=18000, ask=18001)
    assert (quote["bid"], quote["ask"]) == (18000, 18001)
    ticket = ctl(
        http,
        "open_position",
        account_id=account,
        symbol="GER40",
        side="buy",
        volume=1.0,
        open_time="2026-11-01T09:00:00Z",
    )
    ctl(http, "set_swap", account_id=account, ticket=ticket, swap=-1.5)
    assert ctl(http, "set_prices", ticks=[["GER40", 18100], ["GER40", 18101, 18102.5]]) == 2
    pos = positions(http, account)[ticket]
    assert (pos["profit"], pos["swap"], pos["openTime"]) == (
        100.0,
        -1.5,
        "2026-11-01T09:00:00.000Z",
    )
    ctl(http, "set_balance", account_id=account, balance=6000, credit=100)
    assert summary(http, account)["equity"] == 6198.5
    ctl(http, "set_time", time="2030-01-01T00:00:00Z")
    assert ctl(http, "advance_time", seconds=1.5) == "2030-01-01T00:00:01.500Z"
    ctl(http, "script_prices", symbol="GER40", bids=[18200, 18300])
    assert ctl(http, "step_script", symbol="GER40")["time"] == "2030-01-01T00:00:01.500Z"
    assert ctl(http, "script_remaining", symbol="GER40") == 1
    ctl(http, "set_tick_rate", rate=0)
    assert ctl(http, "stream_connections") == 0
    assert ctl(http, "delete_account", account_id=account) is True


def test_faults_and_request_log_over_http(sim: SimServer, http: httpx.Client, account: str) -> None:
    assert http.post("/_sim/faults/fail_next", json={"n": 1, "status": 500}).status_code == 200
    assert http.get("/Positions", params={"id": account}).status_code == 500
    assert http.get("/Positions", params={"id": account}).status_code == 200
    log = http.get("/_sim/requests", params={"path": "/Positions"}).json()["result"]
    assert [(r["method"], r["account_id"], r["status"]) for r in log] == [
        ("GET", account, 500),
        ("GET", account, 200),
    ]
    assert log[0]["at"] <= log[1]["at"]
    assert http.delete("/_sim/requests").status_code == 200
    assert http.get("/_sim/requests").json()["result"] == []
    http.post("/_sim/faults/queue_retcode", json={"retcode": 10004, "path": "/OrderSend"})
    http.post("/_sim/faults/reset")
    assert sim.faults.trade_retcode("/OrderSend") is None


def test_control_errors(sim: SimServer, http: httpx.Client, account: str) -> None:
    assert http.post("/_sim/nope").status_code == 404
    assert http.post("/_sim/faults/nope").status_code == 404
    assert http.post("/_sim/create_account", json={"bogus": 1}).status_code == 400
    assert http.post("/_sim/set_price", json={"symbol": "NOPE", "bid": 1}).status_code == 400
    assert http.post("/_sim/set_price", json={"symbol": "EURUSD", "bid": -1}).status_code == 400
    assert http.post("/_sim/set_price", content=b"{bad").status_code == 400
    assert http.post("/_sim/set_balance", json={"account_id": "x", "balance": 1}).status_code == 404
    assert http.post("/_sim/faults/set_error_rate", json={"rate": 2}).status_code == 400
    unauthenticated = httpx.post(f"{sim.base_url}/_sim/create_account", json={})
    assert unauthenticated.status_code == 401
    assert httpx.get(f"{sim.base_url}/_sim/requests").status_code == 401
    # Control calls are not bridge requests: they never show up in the request log.
    assert all(not r.path.startswith("/_sim") for r in sim.requests.records())


def test_controls_reject_bad_input_in_process(sim: SimServer, account: str) -> None:
    from riskd.sim import SimError, UnknownAccount

    with pytest.raises(UnknownAccount):
        sim.set_balance("nope", 1)
    with pytest.raises(SimError):
        sim.create_account(currency="XYZ")
    with pytest.raises(SimError):
        sim.set_price("EURUSD", 1.1, 1.0)  # ask below bid
    with pytest.raises(SimError):
        sim.open_position(account, "EURUSD", "buy", 0.1, stop_loss=2.0)  # wrong side
    with pytest.raises(SimError):
        sim.set_swap(account, 1, 1.0)


# -- lifecycle ----------------------------------------------------------------------------------


def test_start_stop_is_fast_and_leaves_no_thread() -> None:
    before = {t.name for t in threading.enumerate()}
    started = time.monotonic()
    sim = SimServer(port=0, tick_rate=50).start()
    assert sim.base_url == f"http://127.0.0.1:{sim.port}"
    assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/stream"
    account = sim.create_account()
    assert httpx.get(
        f"{sim.base_url}/CheckConnect", params={"id": account}, headers={"x-api-key": "sim-key"}
    ).is_success
    sim.stop()
    assert time.monotonic() - started < 1.0
    assert {t.name for t in threading.enumerate()} <= before
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.base_url}/CheckConnect")
    sim.stop()  # idempotent


def test_busy_port_raises_in_the_caller(sim: SimServer) -> None:
    with pytest.raises(OSError, match="in use"):
        SimServer(port=sim.port).start()


def test_same_seed_gives_the_same_accounts_and_prices() -> None:
    def run(seed: int) -> tuple[str, list[str]]:
        with SimServer(port=0, tick_rate=0, seed=seed) as sim:
            account = sim.create_account()
            ticks = [sim.call(sim.sim.market.random_tick) for _ in range(5)]
            return account, [f"{t.symbol} {t.bid}" for t in ticks if t is not None]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_controls_from_many_threads(sim: SimServer, http: httpx.Client, account: str) -> None:
    sim.set_price("EURUSD", 1.08)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                sim.open_position(account, "EURUSD", "buy" if i % 2 else "sell", 0.01)
                sim.set_price("EURUSD", 1.08 + n / 1000 + i / 100_000)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(positions(http, account)) == 200
    assert len(sim.positions(account)) == 200


async def test_async_entry_in_the_running_loop() -> None:
    async with SimServer(port=0, tick_rate=0) as sim:
        account = sim.create_account()  # on the loop's own thread: runs directly
        async with httpx.AsyncClient(base_url=sim.base_url, headers={"x-api-key": "sim-key"}) as c:
            response = await c.get("/AccountSummary", params={"id": account})
        assert response.json()["balance"] == 100_000
    async with httpx.AsyncClient() as after:
        with pytest.raises(httpx.ConnectError):
            await after.get(f"{sim.base_url}/AccountSummary")


def test_a_higher_tick_rate_takes_effect_at_once() -> None:
    # At 0.05 ticks/s the walk sleeps 20 s between ticks; a new rate must not wait for that.
    with SimServer(port=0, tick_rate=0.05, seed=3) as sim:
        symbols = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "GER40")
        before = {s: sim.quote(s) for s in symbols}
        sim.set_tick_rate(500)
        deadline = time.monotonic() + 3.0
        while all(sim.quote(s) == before[s] for s in symbols):
            assert time.monotonic() < deadline, "the walk did not speed up"
            time.sleep(0.01)
