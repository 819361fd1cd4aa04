"""A riskd service wired to the live simulator, in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from riskd.actions.alerts import Alert
from riskd.actions.enforcer import EnforcementSettings
from riskd.api2trade import ClientSettings
from riskd.engine import parse_rules
from riskd.monitor.poller import PollSettings
from riskd.monitor.watcher import WatchSettings
from riskd.service import AccountSpec, Service, ServiceSettings
from riskd.sim import SimServer

MAX_LOSS_1000 = """
- name: max-loss
  kind: max_loss
  limit: 1000
  warn_at: [50%]
  action: lockout
  severity: critical
"""


class RecordingAlerter:
    """Keeps every alert (and is the same interface the daemon uses)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def events(self) -> list[str]:
        return [a.event for a in self.alerts]


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true, failing the test after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def service_settings(
    sim: SimServer, state: Path, account: str, rules: str = MAX_LOSS_1000, **kw: object
) -> ServiceSettings:
    dry_run = bool(kw.pop("dry_run", False))
    return ServiceSettings(
        client=ClientSettings(api_key=sim.api_key, base_url=sim.base_url, timeout=2.0),
        state_path=str(state),
        accounts=(
            AccountSpec(account, "Test 100k", 100_000.0, tuple(parse_rules(rules)), dry_run),
        ),
        poll=PollSettings(
            summary_interval=0.2,
            positions_interval=0.2,
            start_jitter=0.05,
            job_timeout=2.0,
            check_interval=0.2,
        ),
        watch=WatchSettings(confirm_breach=bool(kw.pop("confirm", True)), request_timeout=2.0),
        enforcement=EnforcementSettings(
            flat_timeout=5.0, market_closed_retry=0.2, reminder_interval=1.0, round_pause=0.1
        ),
    )


@pytest.fixture
def alerter() -> RecordingAlerter:
    return RecordingAlerter()


@pytest.fixture
def make_service(
    tmp_path: Path, alerter: RecordingAlerter
) -> AsyncIterator[Callable[[ServiceSettings], Service]]:
    started: list[Service] = []

    def make(settings: ServiceSettings) -> Service:
        service = Service(settings, alerter=alerter)
        started.append(service)
        return service

    return make  # type: ignore[return-value]
