"""A dead or hanging alert target delays nothing: ``send()`` returns before any request
leaves, and a flatten runs to the end while the webhook still holds the first alert."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from riskd.actions.alerts import Alert
from riskd.actions.notify import AppriseAlerter, AppriseSettings
from riskd.service import Service
from riskd.sim import SimServer
from tests.alerts.conftest import Webhook, make_alert
from tests.daemon.conftest import service_settings, wait_until

Settings = Callable[..., AppriseSettings]


async def test_send_returns_before_the_target_sees_anything(
    webhook: Webhook, closed_port: int, fast_settings: Settings
) -> None:
    webhook.hang()
    failed: list[tuple[Alert, str]] = []
    settings = fast_settings(
        (webhook.url(), ("hangs",)),
        (f"json://127.0.0.1:{closed_port}/hook", ("dead",)),
        timeout=30.0,  # the hanging webhook is never timed out within this test
    )
    alerter = AppriseAlerter(settings, on_failed=lambda a, r: failed.append((a, r)))
    await alerter.start()
    try:
        alerter.send(make_alert("first"))
        # send() returned without yielding to the loop: no request can have left yet.
        assert webhook.arrived.count == 0
        assert alerter.pending == 1
        await webhook.arrived.reach(1)  # now it is held open by the webhook
        started = time.perf_counter()
        for number in range(200):
            alerter.send(make_alert(f"more-{number}", severity="warning"))
        assert time.perf_counter() - started < 1.0  # generous: each send is microseconds
        assert webhook.answered.count == 0
        assert alerter.pending == 201
    finally:
        webhook.release()
        await alerter.aclose(timeout=0.5)
    # Each alert went to both targets; the dead one refused them (what the short drain left
    # undelivered is reported as such).
    assert failed
    assert "JSON[dead]: refused or unreachable" in failed[0][1]
    assert all("JSON[dead]: " in reason for _, reason in failed)


async def test_a_flatten_is_not_delayed_by_a_hanging_or_dead_target(
    sim: SimServer,
    tmp_path: Path,
    webhook: Webhook,
    closed_port: int,
    fast_settings: Settings,
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    sim.open_position(account, "EURUSD", "sell", 0.2)
    webhook.hang()  # every alert request is held open, unanswered, until the end
    dead = f"json://127.0.0.1:{closed_port}/hook"  # (a mailto:// would be paced 5.5 s apart)
    failed: list[tuple[Alert, str]] = []
    alerter = AppriseAlerter(
        fast_settings((webhook.url(), ("telegram",)), (dead, ("pager",)), timeout=30.0),
        on_failed=lambda a, r: failed.append((a, r)),
    )
    await alerter.start()
    service = Service(service_settings(sim, tmp_path / "s.sqlite", account), alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.06000, 1.06010)  # -2,500 on the long lot: breach
        await wait_until(lambda: sim.positions(account) == [])
        await wait_until(lambda: alerter.stats.queued >= 2)  # the breach and flatten_done
        journal = await service.store.flattens(account)
        await webhook.arrived.reach(1)
        # Flat, while the webhook has answered nothing: the flatten waited for no alert.
        assert webhook.answered.count == 0
        assert alerter.stats.sent == 0
        assert [r.status for r in journal] == ["done"]
    finally:
        webhook.release()
        await service.stop()
        await alerter.aclose(timeout=5.0)
    # Released, the webhook got the breach first (lanes keep their order); the dead target
    # was reported for every alert.
    assert "BREACHED" in webhook.titles()[0]
    assert [a.event for a, _ in failed][:2] == ["breach", "flatten_done"]
    assert all(reason.startswith("JSON[pager]: refused") for _, reason in failed)
