"""The daemon's alert keys name state changes: a flatten by its journal episode (the same
across a restart that resumes it), a breach by the instant its condition started."""

from __future__ import annotations

from pathlib import Path

from riskd.actions.alerts import flatten_condition, rule_condition
from riskd.actions.notify import AppriseAlerter
from riskd.service import Service
from riskd.sim import SimServer
from riskd.store import AsyncStore, StateStore
from tests.alerts.conftest import Webhook
from tests.alerts.test_delivery import Settings
from tests.daemon.conftest import RecordingAlerter, service_settings, wait_until


def _account(sim: SimServer) -> tuple[str, list[int]]:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    tickets = [
        sim.open_position(account, "EURUSD", "buy", 1.0),
        sim.open_position(account, "EURUSD", "buy", 0.5),
    ]
    return account, tickets


async def test_breach_flatten_and_lockout_keys(sim: SimServer, tmp_path: Path) -> None:
    account, _ = _account(sim)
    alerter = RecordingAlerter()
    service = Service(service_settings(sim, tmp_path / "s.sqlite", account), alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)
        await wait_until(lambda: "flatten_done" in alerter.events())
        [record] = await service.store.flattens(account)
        late = sim.open_position(account, "EURUSD", "sell", 0.1)
        await wait_until(lambda: "lockout_close" in alerter.events())
    finally:
        await service.stop()
    by_event = {a.event: a for a in alerter.alerts}
    breach, done, closed = by_event["breach"], by_event["flatten_done"], by_event["lockout_close"]
    state = service.books[account].states["max-loss"]
    assert state.condition_since is not None
    assert breach.key == f"{account}:max-loss:breach:{state.condition_since.isoformat()}"
    assert breach.condition == rule_condition(account, "max-loss")
    assert breach.ongoing  # a lockout: reminded until it clears
    assert done.key == f"{account}:flatten_done:{record.episode}"
    assert done.condition == flatten_condition(account, record.episode)
    assert not done.ongoing
    assert closed.key == f"{account}:max-loss:lockout_close:{late}"
    assert "riskd is closing ticket(s)" in closed.body


async def test_a_resumed_flatten_is_not_announced_twice(
    sim: SimServer, tmp_path: Path, webhook: Webhook, fast_settings: Settings
) -> None:
    """The previous run claimed the episode's keys; the restart resumes the flatten and
    its alert is the same change, so it is not delivered again."""
    account, _ = _account(sim)
    state = tmp_path / "s.sqlite"
    seed = StateStore(state)
    record = seed.begin_flatten(account, "max-loss@2026-05-04T10:00:00+00:00", "max-loss", "t")
    assert record is not None
    seed.claim_alert(f"{account}:flatten_done:{record.episode}")  # sent by the previous run
    seed.close()

    store = AsyncStore(StateStore(state))
    alerter = AppriseAlerter(fast_settings((webhook.url(), ())), store=store)
    await alerter.start()
    service = Service(service_settings(sim, state, account), alerter=alerter)
    await service.start()
    try:
        await wait_until(lambda: sim.positions(account) == [])
        await wait_until(lambda: alerter.stats.duplicates == 1)
    finally:
        await service.stop()
        await alerter.aclose()
        await store.close()
    assert webhook.received == []
