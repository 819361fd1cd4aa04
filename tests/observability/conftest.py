"""A riskd service wired for observability exactly as ``riskd.service`` wires it, against the
live simulator, and helpers to read and normalise the metrics exposition."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from riskd.api2trade import Quote
from riskd.metrics import Metrics
from riskd.service import Service, ServiceSettings
from riskd.sim import SimServer
from riskd.web import WebServer, WebSettings
from tests.daemon.conftest import RecordingAlerter, service_settings

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden") / "metrics.txt"

# One rule of every kind, so the exposition shows each unit.
ALL_KINDS = """
- name: daily-loss
  kind: daily_loss
  baseline: balance
  limit: 5%
  limit_of: initial_balance
  reset: {at: "00:00", zone: Europe/Prague}
  warn_at: [50%, 80%]
  action: lockout
  severity: critical
- name: max-loss
  kind: max_loss
  limit: 1000
  warn_at: [50%]
  action: lockout
  severity: critical
- name: trailing
  kind: trailing_drawdown
  limit: 3000
  track: equity
  update: intraday
  action: close_all
  severity: critical
- name: margin-low
  kind: margin_level
  below: 150%
  action: alert
  severity: warning
- name: lots-cap
  kind: exposure
  max_total_lots: 5
  action: alert
  severity: warning
- name: target
  kind: profit_target
  target: 10%
  action: alert
  severity: info
- name: stale
  kind: stale_data
  max_poll_age: 2m
  action: alert
  severity: warning
"""


def observed_service(
    settings: ServiceSettings, metrics: Metrics, alerter: RecordingAlerter
) -> Service:
    """The daemon's own wiring: ``Service`` plugs ``metrics`` into the client, the alerter,
    the watcher's observers and its collectors."""
    return Service(settings, alerter=alerter, metrics=metrics)


def all_kinds_settings(sim: SimServer, state: Path, account: str) -> ServiceSettings:
    settings = service_settings(sim, state, account, ALL_KINDS)
    spec = settings.accounts[0]
    return replace(settings, accounts=(replace(spec, name="Golden 100k"),))


@dataclass
class Scenario:
    """A deterministic service state: what the golden file and the dashboard test read."""

    service: Service
    metrics: Metrics
    account: str
    alerter: RecordingAlerter


async def build_scenario(
    sim: SimServer, tmp_path: Path, *, process_metrics: bool = False
) -> Scenario:
    """One account holding 1 lot EURUSD bought at 1.09100 with the bid at 1.08500 (-600 USD:
    max-loss at 60% of its 1000, a warning), polled once each way, two ticks (one accepted,
    one crossed), a third jumping tick, a re-anchoring summary (estimate error 50/99400), an
    idle stream, and one alert delivered and one failed. Not started: no scheduler, so every
    request and count is deterministic."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0, open_price=1.09100)
    metrics = Metrics(process_metrics=process_metrics)
    alerter = RecordingAlerter()
    service = observed_service(
        all_kinds_settings(sim, tmp_path / "state.sqlite", account), metrics, alerter
    )
    book = service.books[account]
    await service.poller.poll_summary(book)
    await service.poller.poll_positions(book)  # newer: the anchor is at its prices
    now = datetime.now(UTC)
    tick = service.watcher.on_tick
    tick(book, Quote(symbol="EURUSD", bid=1.08450, ask=1.08460, time=now), time.perf_counter())
    tick(book, Quote(symbol="EURUSD", bid=1.08460, ask=1.08450, time=now), time.perf_counter())
    tick(book, Quote(symbol="EURUSD", bid=1.20000, ask=1.20010, time=now), time.perf_counter())
    summary = await service.client.accounts.summary(account)
    await service.watcher.on_summary(book, summary)  # the service's observer records the error
    book.stream = service.client.open_stream(account, ["EURUSD"])
    metrics.alert_sent("warn", "warning")
    metrics.alert_failed("warn", "timeout")
    service.ready.set()
    return Scenario(service, metrics, account, alerter)


async def close_scenario(scenario: Scenario) -> None:
    book = scenario.service.books[scenario.account]
    if book.stream is not None:
        await book.stream.aclose()
        book.stream = None
    await scenario.service.stop()


@pytest.fixture
async def scenario(sim: SimServer, tmp_path: Path) -> AsyncIterator[Scenario]:
    built = await build_scenario(sim, tmp_path)
    try:
        yield built
    finally:
        await close_scenario(built)


async def scrape(service: Service, metrics: Metrics, path: str = "/metrics") -> httpx.Response:
    """One GET through a real WebServer on a free loopback port."""
    async with (
        WebServer(service, metrics, WebSettings(port=0)) as web,
        httpx.AsyncClient(base_url=web.url, timeout=5.0) as http,
    ):
        return await http.get(path)


# A stale_data rule measures the age of the last poll: microseconds that vary.
_AGE_FAMILIES = ("riskd_rule_value", "riskd_rule_headroom", "riskd_rule_used_ratio")
_VOLATILE_HISTOGRAMS = (
    "riskd_api_request_duration_seconds",
    "riskd_tick_decision_latency_seconds",
)


def normalise(exposition: str, account: str) -> str:
    """The exposition with what varies between runs replaced: timestamps, durations, the
    stale-data rule's age, versions, and the simulator's account id."""
    out = []
    for line in exposition.splitlines():
        line = line.replace(account, "ACCOUNT")
        if line.startswith("riskd_build_info{"):
            line = re.sub(r'(python|version)="[^"]*"', r'\1="<v>"', line)
        elif not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            metric = name.group(0) if name else ""
            volatile = (
                metric.endswith("_timestamp_seconds")
                or metric.startswith("riskd_event_loop_lag_seconds")
                or any(metric in (f"{h}_bucket", f"{h}_sum") for h in _VOLATILE_HISTOGRAMS)
                or (metric in _AGE_FAMILIES and 'kind="stale_data"' in line)
            )
            if volatile:
                line = line.rsplit(" ", 1)[0] + " <v>"
        out.append(line)
    return "\n".join(out) + "\n"


def promtool() -> str:
    """Path of promtool, or skip the test with how to get it."""
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus; .ci/run does)")
    return found


def run_promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (a fixed tool with our own arguments)
        [promtool(), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
