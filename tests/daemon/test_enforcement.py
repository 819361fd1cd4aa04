"""Breach to flatten against the live simulator: once per ticket, dry run, lockout."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from riskd.service import Service
from riskd.sim import SimServer
from tests.daemon.conftest import RecordingAlerter, service_settings, wait_until


def _account_with_positions(sim: SimServer) -> tuple[str, list[int]]:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    sim.set_price("XAUUSD", 2350.00, 2350.30)
    account = sim.create_account(balance=100_000.0)
    tickets = [
        sim.open_position(account, "EURUSD", "buy", 1.0),
        sim.open_position(account, "XAUUSD", "sell", 0.5),
    ]
    return account, tickets


def _closes(sim: SimServer) -> Counter[int]:
    return Counter(r.body["ticket"] for r in sim.requests.records(path="/OrderClose"))


async def test_breach_flattens_once_per_ticket_and_locks_out(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account, tickets = _account_with_positions(sim)
    service = Service(service_settings(sim, tmp_path / "s.sqlite", account), alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)  # -150 pips on 1 lot: equity 98,500 < 99,000
        await wait_until(lambda: sim.positions(account) == [])
        await wait_until(lambda: "flatten_done" in alerter.events())
        # More polls and checks run; none may close again.
        polls = sim.requests.count(path="/AccountSummary")
        await wait_until(lambda: sim.requests.count(path="/AccountSummary") >= polls + 5)
        assert _closes(sim) == Counter({t: 1 for t in tickets})
        assert "breach" in alerter.events()
        journal = await service.store.flattens(account)
        assert [(r.status, r.rule) for r in journal] == [("done", "max-loss")]

        # Lockout: a position opened now is closed at once.
        late = sim.open_position(account, "EURUSD", "buy", 0.1)
        await wait_until(lambda: sim.positions(account) == [])
        assert _closes(sim)[late] == 1
        assert "lockout_close" in alerter.events()
    finally:
        await service.stop()


async def test_dry_run_sends_no_trade_request(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account, _ = _account_with_positions(sim)
    settings = service_settings(sim, tmp_path / "s.sqlite", account, dry_run=True)
    service = Service(settings, alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)
        await wait_until(lambda: "flatten_done" in alerter.events())
        sim.open_position(account, "EURUSD", "buy", 0.1)  # lockout would close it, if not dry
        await wait_until(lambda: "lockout_close" in alerter.events())
        journal = await service.store.flattens(account)
        assert journal[0].detail.startswith("dry run: would close")
    finally:
        await service.stop()
    trade_paths = ("/OrderClose", "/OrderSend", "/OrderModify")
    assert sum(sim.requests.count(path=p) for p in trade_paths) == 0
    assert len(sim.positions(account)) == 3


TWO_RULES = """
- name: daily
  kind: daily_loss
  baseline: balance
  limit: 500
  reset: {at: "00:00", zone: Europe/Prague}
  action: close_all
- name: max-loss
  kind: max_loss
  limit: 1000
  action: close_all
"""


async def test_two_rules_breaching_together_close_each_ticket_once(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account, tickets = _account_with_positions(sim)
    settings = service_settings(sim, tmp_path / "s.sqlite", account, rules=TWO_RULES)
    service = Service(settings, alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)
        await wait_until(lambda: alerter.events().count("flatten_done") == 2)
        assert _closes(sim) == Counter({t: 1 for t in tickets})
        assert {r.rule for r in await service.store.flattens(account)} == {"daily", "max-loss"}
    finally:
        await service.stop()


async def test_unconfirmed_breach_does_not_flatten(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account, _ = _account_with_positions(sim)
    service = Service(service_settings(sim, tmp_path / "s.sqlite", account), alerter=alerter)
    await service.start()
    try:
        await service.poller.poll_summary(service.books[account])
        sim.set_price("EURUSD", 1.07000, 1.07010)  # breach...
        summary = await service.client.accounts.summary(account)
        sim.set_price("EURUSD", 1.08500, 1.08510)  # ...gone by the time riskd confirms
        service.poller.shutdown()
        await service.watcher.on_summary(service.books[account], summary)
        assert service.watcher.not_confirmed == 1
        assert sim.requests.count(path="/OrderClose") == 0
        assert not service.books[account].states["max-loss"].latched
    finally:
        await service.stop()


async def test_cannot_get_flat_alerts_loudly_and_keeps_trying(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account, _ = _account_with_positions(sim)
    sim.faults.queue_retcode(10017, times=1000, path="/OrderClose")  # trade disabled
    settings = service_settings(sim, tmp_path / "s.sqlite", account)
    settings = replace(
        settings, enforcement=replace(settings.enforcement, flat_timeout=0.5, reminder_interval=0.3)
    )
    service = Service(settings, alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)
        await wait_until(lambda: alerter.events().count("flatten_failed") >= 2)
        assert "close_refused" in alerter.events()
        assert [r.status for r in await service.store.flattens(account)] == ["failed"]
        sim.faults.reset()  # the broker allows trading again: riskd finishes the job
        await wait_until(lambda: sim.positions(account) == [])
        await wait_until(lambda: "flatten_done" in alerter.events())
        assert [r.status for r in await service.store.flattens(account)] == ["done"]
    finally:
        await service.stop()


async def test_failing_account_is_logged_once_and_recovery_once(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter, caplog: pytest.LogCaptureFixture
) -> None:
    account, _ = _account_with_positions(sim)
    service = Service(service_settings(sim, tmp_path / "s.sqlite", account), alerter=alerter)
    await service.start()
    try:
        sim.faults.set_error_rate(1.0, status=503)
        failed = service.poller.stats.polls_failed
        await wait_until(lambda: service.poller.stats.polls_failed >= failed + 6)
        sim.faults.reset()
        await wait_until(lambda: "account_up" in alerter.events())
    finally:
        await service.stop()
    failing = [r for r in caplog.records if "poll failing" in r.getMessage()]
    recovered = [r for r in caplog.records if "polling recovered" in r.getMessage()]
    assert len(failing) == 1 and len(recovered) == 1
    assert alerter.events().count("account_down") == 1


async def test_rate_limit_pauses_the_shared_budget(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account, _ = _account_with_positions(sim)
    settings = service_settings(sim, tmp_path / "s.sqlite", account)
    settings = replace(settings, client=settings.client.model_copy(update={"max_retries": 0}))
    service = Service(settings, alerter=alerter)
    await service.start()
    try:
        sim.faults.rate_limit_next(1, retry_after=1.0, path="/AccountSummary")
        await wait_until(lambda: service.budget.rate_limited == 1)
        limited_at = next(
            r.at for r in sim.requests.records(path="/AccountSummary") if r.status == 429
        )
        # A request already on the wire when the 429 came back may land just after it.
        settled = limited_at + 0.05
        await wait_until(lambda: any(r.at > settled for r in sim.requests.records()))
        first_after = min(r.at for r in sim.requests.records() if r.at > settled)
        assert first_after - limited_at >= 0.9  # nobody asked while the budget was paused
    finally:
        await service.stop()


async def test_restart_reannounces_a_latched_breach_with_its_first_key(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    """So the store drops it as sent and the alerter resumes its reminders."""
    account, _ = _account_with_positions(sim)
    settings = service_settings(sim, tmp_path / "s.sqlite", account)
    service = Service(settings, alerter=alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)
        await wait_until(lambda: "flatten_done" in alerter.events())
    finally:
        await service.stop()
    first = next(a for a in alerter.alerts if a.event == "breach")

    again = RecordingAlerter()
    restarted = Service(settings, alerter=again)
    await restarted.start()
    try:
        await wait_until(lambda: "breach" in again.events())
    finally:
        await restarted.stop()
    repeat = next(a for a in again.alerts if a.event == "breach")
    assert repeat.key == first.key
    assert repeat.ongoing
