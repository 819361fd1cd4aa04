"""The HTTP endpoints on the daemon's loop: readiness, status, liveness of a hung loop,
secrets, listen addresses."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from riskd.api2trade import ClientSettings
from riskd.engine import parse_rules
from riskd.metrics import Metrics
from riskd.service import AccountSpec
from riskd.sim import SimServer
from riskd.web import WebServer, WebSettings
from tests.daemon.conftest import MAX_LOSS_1000, RecordingAlerter, service_settings, wait_until
from tests.observability.conftest import Scenario, observed_service


class _Records(logging.Handler):
    """Log records of one logger, and an event set when a message containing ``marker``
    arrives (the watchdog logs from its own thread)."""

    def __init__(self, marker: str) -> None:
        super().__init__(logging.DEBUG)
        self.marker = marker
        self.seen = threading.Event()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if self.marker in message:
            self.seen.set()


@pytest.fixture
def web_log() -> Iterator[_Records]:
    handler = _Records("event loop blocked")
    logger = logging.getLogger("riskd.web")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def test_readyz_waits_for_every_account(sim: SimServer, tmp_path: Path) -> None:
    account = sim.create_account(balance=100_000.0)
    base = service_settings(sim, tmp_path / "state.sqlite", account)
    missing = AccountSpec("no-such-account", "Gone", 100_000.0, tuple(parse_rules(MAX_LOSS_1000)))
    settings = dataclasses.replace(base, accounts=(*base.accounts, missing))
    metrics = Metrics(process_metrics=False)
    service = observed_service(settings, metrics, RecordingAlerter())
    try:
        async with (
            WebServer(service, metrics, WebSettings(port=0)) as web,
            httpx.AsyncClient(base_url=web.url, timeout=5.0) as http,
        ):
            before = await http.get("/readyz")
            assert before.status_code == 503
            assert before.json() == {
                "ready": False,
                "started": False,
                "waiting_for": [account, "no-such-account"],
            }
            assert (await http.get("/livez")).status_code == 200  # alive while starting
            await service.start()
            after = await http.get("/readyz")
            # Started, but one account was never polled: still not ready, and says which.
            assert after.status_code == 503
            assert after.json()["started"] is True
            assert after.json()["waiting_for"] == ["no-such-account"]
            status = (await http.get("/status")).json()
            gone = next(a for a in status["accounts"] if a["id"] == "no-such-account")
            assert gone["polling"]["failing_since"] is not None
            assert gone["balance"] is None
            metrics_text = (await http.get("/metrics")).text
            assert 'riskd_account_poll_failing{account="no-such-account"} 1.0' in metrics_text
            assert "riskd_ready 0.0" in metrics_text

            # Once the last account answers, ready.
            service.books["no-such-account"].summary_at = service.books[account].summary_at
            assert (await http.get("/readyz")).status_code == 200
    finally:
        await service.stop()


async def test_status_shows_money_floors_distances_states_and_stream(scenario: Scenario) -> None:
    async with (
        WebServer(scenario.service, scenario.metrics, WebSettings(port=0)) as web,
        httpx.AsyncClient(base_url=web.url, timeout=5.0) as http,
    ):
        response = await http.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["ready"] is True
    (account,) = doc["accounts"]
    assert account["id"] == scenario.account
    assert account["name"] == "Golden 100k"
    assert account["currency"] == "USD"
    assert account["balance"] == 100_000.0
    assert account["equity"] == {"polled": 99_400.0, "estimated": 99_400.0, "rules_used": "polled"}
    assert account["positions"] == 1 and account["lots"] == 1.0
    assert account["polling"]["last_poll"] is not None
    assert account["polling"]["failing_since"] is None
    assert account["stream"]["state"] == "idle"
    assert account["stream"]["connected"] is False
    assert account["stream"]["symbols"] == ["EURUSD"]
    rules = {r["name"]: r for r in account["rules"]}
    assert list(rules) == ["daily-loss", "max-loss", "trailing", "margin-low", "lots-cap",
                           "target", "stale"]  # fmt: skip
    max_loss = rules["max-loss"]
    assert max_loss["status"] == "warn"
    assert max_loss["threshold"] == 99_000.0  # the floor
    assert max_loss["headroom"] == 400.0  # the distance to it
    assert max_loss["latched"] is False
    assert max_loss["unit"] == "USD"
    assert rules["daily-loss"]["threshold"] == 95_000.0
    assert rules["daily-loss"]["next_reset"] is not None
    assert rules["margin-low"]["unit"] == "percent"
    assert rules["margin-low"]["threshold"] == 150.0
    assert rules["lots-cap"]["unit"] == "lots"
    assert rules["stale"]["unit"] == "seconds"


async def test_a_hung_event_loop_fails_livez(scenario: Scenario, web_log: _Records) -> None:
    """Block the loop the server runs on; a probe from another thread must get no answer,
    the watchdog must log where the loop is stuck, and after the block /livez is 200."""
    settings = WebSettings(port=0, heartbeat_interval=0.02, stall_after=0.25)
    metrics = scenario.metrics
    async with WebServer(scenario.service, metrics, settings) as web:
        url = web.url + "/livez"
        async with httpx.AsyncClient(timeout=5.0) as http:
            alive = await http.get(url)
        assert alive.status_code == 200
        assert alive.json()["status"] == "ok"

        blocking, release = threading.Event(), threading.Event()
        outcome: dict[str, object] = {}

        def probe() -> None:
            try:
                blocking.wait(10)
                try:
                    outcome["livez"] = httpx.get(url, timeout=1.0).status_code
                except httpx.TimeoutException:
                    outcome["livez"] = "no answer"
                outcome["watchdog"] = web_log.seen.wait(10)
            finally:
                release.set()

        thread = threading.Thread(target=probe, name="probe")
        thread.start()
        blocking.set()
        release.wait(30)  # the loop hangs here: nothing else runs on it until the probe ends
        thread.join(10)

        assert outcome == {"livez": "no answer", "watchdog": True}
        stalled = next(m for m in web_log.messages if "event loop blocked" in m)
        assert "test_a_hung_event_loop_fails_livez" in stalled  # the loop thread's stack
        async with httpx.AsyncClient(timeout=5.0) as http:
            assert (await http.get(url)).status_code == 200
        await wait_until(lambda: any("running again" in m for m in web_log.messages))
        assert metrics.registry.get_sample_value("riskd_event_loop_stalls_total") == 1.0
        count = metrics.registry.get_sample_value("riskd_event_loop_lag_seconds_count") or 0.0
        fast = metrics.registry.get_sample_value("riskd_event_loop_lag_seconds_bucket",
                                                 {"le": "0.5"})  # fmt: skip
        assert fast is not None and count - fast >= 1  # the block shows as a late heartbeat


async def test_livez_fails_when_the_heartbeat_died(scenario: Scenario) -> None:
    async with WebServer(scenario.service, scenario.metrics, WebSettings(port=0)) as web:
        task = web.heartbeat._task
        assert task is not None
        task.cancel()
        async with httpx.AsyncClient(base_url=web.url, timeout=5.0) as http:
            response = await http.get("/livez")
        assert response.status_code == 503
        assert response.json()["reason"] == "heartbeat task stopped"


SECRET_KEY = "sk-riskd-test-7f3a9c2e51d84b6f"
APPRISE_TOKEN = "tgram-0123456789-abcdefSECRET"


async def test_secrets_never_appear_in_any_endpoint(tmp_path: Path) -> None:
    async with SimServer(host="127.0.0.1", port=0, tick_rate=0, api_keys=(SECRET_KEY,)) as sim:
        sim.set_price("EURUSD", 1.08500, 1.08510)
        account = sim.create_account(balance=100_000.0)
        sim.open_position(account, "EURUSD", "buy", 1.0)
        base = service_settings(sim, tmp_path / "state.sqlite", account)
        client = ClientSettings(api_key=SECRET_KEY, base_url=sim.base_url, timeout=2.0,
                                stream_auth="query")  # fmt: skip
        settings = dataclasses.replace(base, client=client)
        metrics = Metrics(process_metrics=False)
        service = observed_service(settings, metrics, RecordingAlerter())
        await service.start()
        web = WebServer(service, metrics, WebSettings(port=0), extra_secrets=[APPRISE_TOKEN])
        try:
            book = service.books[account]
            await wait_until(lambda: book.stream is not None and book.stream.connected)
            # A message that echoes credentials (as a careless library error might).
            book.failure = f'401 for key "{SECRET_KEY}" via json://x/{APPRISE_TOKEN}'
            await web.start()
            async with httpx.AsyncClient(base_url=web.url, timeout=5.0) as http:
                bodies = {}
                for path in ("/", "/metrics", "/livez", "/readyz", "/status", "/nope"):
                    response = await http.get(path)
                    bodies[path] = response.text + str(response.headers)
        finally:
            await web.stop()
            await service.stop()
    assert '"stream":{"state":"connected"' in bodies["/status"]
    assert "[redacted]" in bodies["/status"]
    for path, body in bodies.items():
        assert SECRET_KEY not in body, path
        assert APPRISE_TOKEN not in body, path


def test_listen_address_defaults_to_loopback_and_parses() -> None:
    default = WebSettings()
    assert (default.host, default.port, default.listen) == ("127.0.0.1", 9108, "127.0.0.1:9108")
    assert WebSettings.parse("0.0.0.0:9200").listen == "0.0.0.0:9200"
    assert WebSettings.parse(":9300").listen == "127.0.0.1:9300"
    assert WebSettings.parse("[::1]:9108").host == "::1"
    assert WebSettings.parse("[::1]:9108").listen == "[::1]:9108"
    for bad in ("9108", "localhost", "::1:9108", "host:port", "127.0.0.1:70000"):
        with pytest.raises(ValueError):
            WebSettings.parse(bad)


async def test_server_leaves_signals_alone_and_a_busy_port_raises(scenario: Scenario) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    async with WebServer(scenario.service, scenario.metrics, WebSettings(port=0)) as web:
        assert web.url.startswith("http://127.0.0.1:")
        busy = WebServer(scenario.service, scenario.metrics, WebSettings(port=web.port))
        with pytest.raises(OSError):
            await busy.start()
        async with httpx.AsyncClient(base_url=web.url, timeout=5.0) as http:
            assert (await http.get("/nope")).status_code == 404
            assert (await http.head("/metrics")).status_code == 200
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


async def test_ipv6_loopback(scenario: Scenario) -> None:
    try:
        web = WebServer(scenario.service, scenario.metrics, WebSettings(host="::1", port=0))
        await web.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        assert web.url.startswith("http://[::1]:")
        async with httpx.AsyncClient(base_url=web.url, timeout=5.0) as http:
            assert (await http.get("/livez")).status_code == 200
    finally:
        await web.stop()
