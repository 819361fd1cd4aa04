"""A replica whose store holds a latch of an account it no longer owns (a resize moved it)
says so at start: the account's new owner starts without that latch."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from riskd.engine import RuleState
from riskd.service import Service
from riskd.shard import Shard, owner
from riskd.sim import SimServer
from riskd.store import StateStore
from tests.daemon.conftest import RecordingAlerter, service_settings

MOVED = "6a1f1c4e-0000-4000-8000-000000000001"


async def test_a_latch_left_in_this_store_is_reported(
    sim: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kept = sim.create_account(balance=100_000.0)
    state = tmp_path / "state.sqlite"
    store = StateStore(state)
    latched = RuleState(latched=True, latched_at=datetime(2026, 11, 24, tzinfo=UTC))
    store.save_rule_states(MOVED, {"max-loss": latched, "daily": RuleState()})
    store.save_rule_states(kept, {"max-loss": RuleState()})
    store.close()
    shard = Shard(0, 2)
    new_owner = owner(MOVED, 2)
    settings = replace(service_settings(sim, state, kept), shard=shard)
    alerter = RecordingAlerter()
    service = Service(settings, alerter=alerter)
    caplog.set_level(logging.ERROR, logger="riskd")
    await service.start()
    try:
        [alert] = [a for a in alerter.alerts if a.event == "state_left_behind"]
        assert alert.account_id == MOVED and alert.severity == "critical"
        assert "latched rule max-loss" in alert.title
        assert f"a resize gave it to shard {new_owner}" in alert.body
        assert any(MOVED in r.getMessage() for r in caplog.records)
        # The account this replica does watch is not reported.
        assert not [a for a in alerter.alerts if a.account_id == kept]
    finally:
        await service.stop()
