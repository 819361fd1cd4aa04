"""A graceful stop with polls in flight logs no error: the cancelled poll jobs are not crashes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from riskd.service import Service
from riskd.sim import SimServer
from tests.daemon.conftest import RecordingAlerter, service_settings, wait_until


async def test_stopping_with_polls_in_flight_logs_no_error(
    sim: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    account = sim.create_account(balance=100_000.0)
    service = Service(
        service_settings(sim, tmp_path / "state.sqlite", account), alerter=RecordingAlerter()
    )
    await service.start()
    caplog.set_level(logging.DEBUG)
    sim.faults.hang_next(5, seconds=30.0, path="/AccountSummary")
    held = sim.requests.count(path="/AccountSummary")
    # A scheduled summary poll is now waiting on the simulator.
    await wait_until(lambda: sim.requests.count(path="/AccountSummary") > held)
    await service.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert service.poller.stats.job_errors == 0
