"""HTTP and trade fault injection (stream faults are in test_stream.py)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from riskd.sim import SimServer
from tests.sim.conftest import buy, close, positions, send


def quote(http: httpx.Client, account: str) -> httpx.Response:
    return http.get("/GetQuote", params={"id": account, "symbol": "EURUSD"})


def test_latency_is_added_per_path(sim: SimServer, http: httpx.Client, account: str) -> None:
    sim.faults.set_latency(0.25, path="/GetQuote")
    started = time.monotonic()
    assert quote(http, account).status_code == 200
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    http.get("/CheckConnect", params={"id": account})
    assert time.monotonic() - started < 0.2


def test_fail_next_then_recover(sim: SimServer, http: httpx.Client, account: str) -> None:
    sim.faults.fail_next(2, status=502)
    responses = [quote(http, account) for _ in range(3)]
    statuses = [r.status_code for r in responses]
    assert statuses == [502, 502, 200]
    assert "message" in responses[0].json()
    # Every attempt reached the simulator and is in the log with its answer.
    assert [r.status for r in sim.requests.records(path="/GetQuote")] == statuses


def test_faults_can_target_one_path(sim: SimServer, http: httpx.Client, account: str) -> None:
    sim.faults.set_error_rate(1.0, status=500, path="/GetQuote")
    assert quote(http, account).status_code == 500
    assert http.get("/AccountSummary", params={"id": account}).status_code == 200
    sim.faults.set_error_rate(0.0, path="/GetQuote")
    assert quote(http, account).status_code == 200


def _error_pattern(seed: int) -> list[int]:
    with SimServer(port=0, tick_rate=0, seed=seed) as sim:
        account = sim.create_account()
        sim.faults.set_error_rate(0.5)
        with httpx.Client(base_url=sim.base_url, headers={"x-api-key": sim.api_key}) as http:
            return [quote(http, account).status_code for _ in range(24)]


def test_error_rate_is_seeded_and_deterministic() -> None:
    first, again, other = _error_pattern(7), _error_pattern(7), _error_pattern(8)
    assert first == again
    assert first != other
    assert {200, 503} == set(first)


def test_rate_limit_with_fractional_retry_after(
    sim: SimServer, http: httpx.Client, account: str
) -> None:
    sim.faults.rate_limit_next(2, retry_after=0.2)
    sim.faults.rate_limit_next(1, retry_after=3)
    sim.faults.rate_limit_next(1, retry_after=None)
    responses = [quote(http, account) for _ in range(5)]
    assert [r.status_code for r in responses] == [429, 429, 429, 429, 200]
    assert [r.headers.get("retry-after") for r in responses[:4]] == ["0.2", "0.2", "3", None]


def test_hang_outlives_the_client_timeout_without_blocking_others(
    sim: SimServer, http: httpx.Client, account: str
) -> None:
    sim.faults.hang_next(1, seconds=30, path="/Positions")
    outcome: list[BaseException] = []

    def hanging() -> None:
        try:
            http.get("/Positions", params={"id": account}, timeout=0.3)
        except httpx.TimeoutException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=hanging)
    worker.start()
    assert sim.requests.wait_for(1, path="/Positions")
    # While it hangs, other requests are answered at once.
    started = time.monotonic()
    with httpx.Client(base_url=sim.base_url, headers={"x-api-key": sim.api_key}) as other:
        assert quote(other, account).status_code == 200
    assert time.monotonic() - started < 0.5
    worker.join(5)
    assert len(outcome) == 1
    [record] = sim.requests.records(path="/Positions")
    assert record.status is None  # still held by the server


def test_hang_that_executes_closes_the_position_although_the_client_timed_out(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    ticket = buy(http, account, "EURUSD", 0.1)
    priced.faults.hang_next(seconds=30, execute=True, path="/OrderClose")
    with pytest.raises(httpx.TimeoutException):
        http.post("/OrderClose", params={"id": account}, json={"ticket": ticket}, timeout=0.3)
    assert positions(http, account) == {}
    assert priced.requests.count(path="/OrderClose") == 1


def test_timeout_rate_hangs_then_answers_504(
    sim: SimServer, http: httpx.Client, account: str
) -> None:
    sim.faults.set_timeout_rate(1.0, seconds=0.1, path="/GetQuote")
    response = quote(http, account)
    assert response.status_code == 504


def test_stop_releases_hanging_requests_quickly() -> None:
    sim = SimServer(port=0, tick_rate=0).start()
    account = sim.create_account()
    sim.faults.hang_next(seconds=60)
    results: list[int] = []

    def hanging() -> None:
        results.append(httpx.get(f"{sim.base_url}/Positions", params={"id": account}).status_code)

    worker = threading.Thread(target=hanging)
    worker.start()
    assert sim.requests.wait_for(1)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    worker.join(5)
    assert results == [503]


# -- trade retcodes -----------------------------------------------------------------------------


def test_requote_without_execution(priced: SimServer, http: httpx.Client, account: str) -> None:
    priced.faults.queue_retcode(10004, execute=False)
    result = send(http, account, symbol="EURUSD", operation=0, volume=0.1)
    assert result == {"ticket": 0, "retcode": 10004, "comment": "Requote"}
    assert positions(http, account) == {}
    assert buy(http, account, "EURUSD", 0.1) > 0  # the queue is used up


def test_timeout_retcode_that_did_execute(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    priced.faults.queue_retcode(10012, execute=True)
    result = send(http, account, symbol="EURUSD", operation=0, volume=0.1)
    assert (result["retcode"], result["ticket"]) == (10012, 0)  # outcome unknown to the client
    [pos] = positions(http, account).values()
    assert pos["volume"] == 0.1  # but it happened


def test_retcodes_are_queued_per_path_in_order(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    priced.faults.queue_retcode(10031, times=2, path="/OrderClose")
    priced.faults.queue_retcode(10024, path="/OrderClose")
    ticket = buy(http, account, "EURUSD", 0.1)  # OrderSend is not affected
    assert [close(http, account, ticket)["retcode"] for _ in range(4)] == [
        10031,
        10031,
        10024,
        10009,
    ]
    assert close(http, account, ticket)["retcode"] == 10036


def test_success_retcode_with_execution_reports_the_ticket(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    priced.faults.queue_retcode(10010, execute=True, path="/OrderSend")
    result = send(http, account, symbol="EURUSD", operation=0, volume=0.1)
    assert result["retcode"] == 10010
    assert result["ticket"] in positions(http, account)


def test_reset_faults(sim: SimServer, http: httpx.Client, account: str) -> None:
    sim.faults.fail_next(5)
    sim.faults.set_latency(5.0)
    sim.faults.queue_retcode(10004)
    sim.reset_faults()
    assert quote(http, account).status_code == 200


def test_bad_fault_arguments_raise(sim: SimServer) -> None:
    with pytest.raises(ValueError, match="rate"):
        sim.faults.set_error_rate(1.5)
    with pytest.raises(ValueError, match="status"):
        sim.faults.fail_next(status=200)
    with pytest.raises(ValueError, match="retcodes only apply"):
        sim.faults.queue_retcode(10004, path="/GetQuote")
