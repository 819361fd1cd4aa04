"""Real delivery through apprise: to a webhook (``json://``) and an SMTP server (``mailto://``)
on loopback; routing by severity tag; dedupe across a restart; reminders; retries; the
queue's bounds; secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from riskd.actions.alerts import Alert, rule_condition, verdict_alerts
from riskd.actions.notify import AlertConfigError, AlertTarget, AppriseAlerter, AppriseSettings
from riskd.store import AsyncStore, StateStore
from tests.alerts.conftest import ACCOUNT, Mailbox, Webhook, make_alert
from tests.alerts.test_messages import DAILY_LOCKOUT, DAY
from tests.engine.helpers import Account, one_rule

Settings = Callable[..., AppriseSettings]


class Outcomes:
    """The alerter's callbacks, recorded."""

    def __init__(self) -> None:
        self.sent: list[Alert] = []
        self.failed: list[tuple[Alert, str]] = []

    def on_sent(self, alert: Alert) -> None:
        self.sent.append(alert)

    def on_failed(self, alert: Alert, reason: str) -> None:
        self.failed.append((alert, reason))


def alerter_for(
    settings: AppriseSettings, store: AsyncStore | None = None
) -> tuple[AppriseAlerter, Outcomes]:
    outcomes = Outcomes()
    alerter = AppriseAlerter(
        settings, store=store, on_sent=outcomes.on_sent, on_failed=outcomes.on_failed
    )
    return alerter, outcomes


async def test_breach_reaches_webhook_and_mailbox_with_every_number(
    webhook: Webhook, mailbox: Mailbox, fast_settings: Settings
) -> None:
    account = Account([one_rule(DAILY_LOCKOUT)])
    account.roll(DAY, 100_000.0)
    evaluation = account.at(DAY + timedelta(hours=10), equity=94_980.0)
    [breach] = verdict_alerts(
        evaluation.verdicts[0], ACCOUNT, "FTMO 100k", "USD", False, evaluation.at
    )
    alerter, outcomes = alerter_for(
        fast_settings((webhook.url(), ("telegram",)), (mailbox.url(), ("email",)))
    )
    await alerter.start()
    try:
        alerter.send(breach)
        await webhook.answered.reach(1)
        await mailbox.received.reach(1)
        await alerter.wait_idle()
    finally:
        await alerter.aclose()

    [posted] = webhook.received
    assert posted["title"] == (
        "[CRITICAL] FTMO 100k: daily-loss BREACHED, closing all and locking out"
    )
    assert posted["type"] == "failure"
    [mail] = mailbox.messages
    assert mail.subject == posted["title"]
    assert mail.rcpt == ["ops@example.com"]
    for text in (str(posted["message"]), mail.body):
        for expected in (
            f"Account: FTMO 100k ({ACCOUNT})",
            "Rule: daily-loss",
            "Equity: 94,980.00 USD",
            "Daily floor: 95,000.00 USD",
            "Distance to floor: -20.00 USD",
            "riskd is closing every position now and will close any new one until "
            "2026-05-05 00:00 UTC.",
            "Next reset: 2026-05-05 00:00 UTC",
        ):
            assert expected in text, text
    assert [a.key for a in outcomes.sent] == [breach.key]
    assert outcomes.failed == []
    assert alerter.stats.sent == 1


async def test_severities_route_by_tag(
    make_webhook: Callable[[], Webhook], mailbox: Mailbox, fast_settings: Settings
) -> None:
    telegram, pager = make_webhook(), make_webhook()
    settings = fast_settings(
        (telegram.url(), ("telegram",)),
        (mailbox.url(), ("email",)),
        (pager.url(), ("pager",)),
        routes={"info": ("telegram",), "warning": ("telegram",), "critical": ("telegram", "email")},
    )
    alerter, outcomes = alerter_for(settings)
    await alerter.start()
    try:
        alerter.send(make_alert("w", event="warn", severity="warning", title="a warning"))
        alerter.send(make_alert("i", event="recovered", severity="info", title="an info"))
        alerter.send(make_alert("c", title="a breach"))
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert telegram.titles() == ["[WARNING] a warning", "[info] an info", "[CRITICAL] a breach"]
    assert [m.subject for m in mailbox.messages] == ["[CRITICAL] a breach"]
    assert pager.received == []  # routed by no severity
    assert alerter.targets == (
        ("JSON[telegram]", ("telegram",)),
        ("E-Mail[email]", ("email",)),
        ("JSON[pager]", ("pager",)),
    )
    assert len(outcomes.sent) == 3


async def test_a_severity_without_a_route_goes_everywhere_and_an_empty_one_nowhere(
    make_webhook: Callable[[], Webhook], fast_settings: Settings
) -> None:
    one, two = make_webhook(), make_webhook()
    settings = fast_settings((one.url(), ("a",)), (two.url(), ()), routes={"info": ()})
    alerter, outcomes = alerter_for(settings)
    await alerter.start()
    try:
        alerter.send(make_alert("c", title="everywhere"))
        alerter.send(make_alert("i", severity="info", title="log only"))
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert one.titles() == two.titles() == ["[CRITICAL] everywhere"]
    assert alerter.stats.unrouted == 1
    assert [a.key for a in outcomes.sent] == ["c"]


async def test_dedupe_survives_a_restart(
    webhook: Webhook, store_path: Path, fast_settings: Settings
) -> None:
    settings = fast_settings((webhook.url(), ()))
    first_store = AsyncStore(StateStore(store_path))
    first, _ = alerter_for(settings, first_store)
    await first.start()
    first.send(make_alert("acc:daily-loss:breach:2026-05-04T10:00:00+00:00", title="breach"))
    first.send(make_alert("acc:daily-loss:breach:2026-05-04T10:00:00+00:00", title="breach"))
    await first.wait_idle()
    await first.aclose()
    await first_store.close()
    assert webhook.titles() == ["[CRITICAL] breach"]
    assert first.stats.duplicates == 1

    # A new process: new alerter, same SQLite file. The old change is not replayed.
    second_store = AsyncStore(StateStore(store_path))
    second, outcomes = alerter_for(settings, second_store)
    await second.start()
    try:
        second.send(make_alert("acc:daily-loss:breach:2026-05-04T10:00:00+00:00", title="breach"))
        second.send(make_alert("acc:daily-loss:recovered:2026-05-04T11:00:00+00:00", title="ok"))
        await second.wait_idle()
    finally:
        await second.aclose()
        await second_store.close()
    assert webhook.titles() == ["[CRITICAL] breach", "[CRITICAL] ok"]
    assert second.stats.duplicates == 1
    assert [a.title for a in outcomes.sent] == ["ok"]


async def test_reminders_repeat_while_unresolved_and_stop_when_resolved(
    webhook: Webhook, fast_settings: Settings
) -> None:
    alerter, _ = alerter_for(fast_settings((webhook.url(), ()), repeat_interval=0.05))
    condition = rule_condition(ACCOUNT, "max-loss")
    await alerter.start()
    try:
        alerter.send(make_alert("b1", title="max-loss BREACHED", condition=condition, ongoing=True))
        await webhook.answered.reach(3)  # the breach, then reminders
        assert alerter.open_conditions == (condition,)
        alerter.send(
            make_alert(
                "r1",
                event="recovered",
                severity="info",
                title="max-loss back to ok",
                condition=condition,
            )
        )
        assert not alerter.open_conditions
        await alerter.wait_idle()
        # Nothing is left to remind of, however late it gets.
        assert alerter.due_reminders(float("inf")) == []
    finally:
        await alerter.aclose()
    titles = webhook.titles()
    assert titles[0] == "[CRITICAL] max-loss BREACHED"
    assert titles[-1] == "[info] max-loss back to ok"
    reminders = titles[1:-1]
    assert len(reminders) >= 2
    assert set(reminders) == {"[CRITICAL] REMINDER: max-loss BREACHED"}
    messages = [str(m["message"]) for m in webhook.received[1:-1]]
    assert all("Still unresolved after" in m for m in messages)


def test_only_unresolved_critical_conditions_are_reminded(fast_settings: Settings) -> None:
    now = [100.0]
    alerter = AppriseAlerter(fast_settings(repeat_interval=60.0), clock=lambda: now[0])
    rule = rule_condition(ACCOUNT, "max-loss")
    alerter.send(make_alert("w", severity="warning", condition="a", ongoing=True))
    alerter.send(make_alert("b", condition=rule, ongoing=True))
    alerter.send(make_alert("x", condition=None, ongoing=True))  # no condition: nothing to track
    assert alerter.open_conditions == (rule,)
    assert alerter.due_reminders(159.0) == []
    [first] = alerter.due_reminders(160.0)
    assert (first.reminder, first.key) == (1, "b:reminder:1")
    assert first.body.startswith("Still unresolved after 60s. First alert: Equity 94,980.00")
    assert alerter.due_reminders(200.0) == []
    [second] = alerter.due_reminders(220.0)
    assert second.reminder == 2

    # A repeat from the producer (the enforcer's "still not flat") restarts the timer.
    now[0] = 230.0
    alerter.send(make_alert("b", condition=rule, ongoing=True, reminder=3))
    assert alerter.due_reminders(280.0) == []
    assert len(alerter.due_reminders(290.0)) == 1

    # Any later alert of the condition that is not ongoing resolves it.
    alerter.send(make_alert("done", event="flatten_done", condition=rule))
    assert alerter.due_reminders(10_000.0) == []


async def test_an_already_sent_critical_state_is_still_reminded_after_a_restart(
    webhook: Webhook, store: AsyncStore, fast_settings: Settings
) -> None:
    assert await store.claim_alert("acc:flatten_failed:max-loss@x")  # sent by the previous run
    alerter, _ = alerter_for(fast_settings((webhook.url(), ()), repeat_interval=0.05), store)
    await alerter.start()
    try:
        alerter.send(
            make_alert(
                "acc:flatten_failed:max-loss@x",
                event="flatten_failed",
                title="CANNOT GET FLAT",
                condition="acc:flatten:max-loss@x",
                ongoing=True,
            )
        )
        await webhook.answered.reach(1)
    finally:
        await alerter.aclose()
    assert webhook.titles()[0] == "[CRITICAL] REMINDER: CANNOT GET FLAT"
    assert alerter.stats.duplicates == 1


async def test_failed_attempts_are_retried_with_backoff(
    webhook: Webhook, fast_settings: Settings
) -> None:
    webhook.fail(2)
    alerter, outcomes = alerter_for(fast_settings((webhook.url(), ()), retries=3))
    await alerter.start()
    try:
        alerter.send(make_alert("k"))
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert webhook.arrived.count == 3
    assert len(webhook.received) == 1
    assert alerter.stats.retries == 2
    assert [a.key for a in outcomes.sent] == ["k"]


async def test_a_target_that_keeps_failing_is_counted_and_reported(
    mailbox: Mailbox, closed_port: int, fast_settings: Settings
) -> None:
    # json:// rather than a second mailto://: apprise paces e-mail sends 5.5 s apart.
    dead = f"json://127.0.0.1:{closed_port}/hook"
    settings = fast_settings((mailbox.url(), ("ok",)), (dead, ("dead",)), retries=2)
    alerter, outcomes = alerter_for(settings)
    await alerter.start()
    try:
        alerter.send(make_alert("k", title="breach"))
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert [m.subject for m in mailbox.messages] == ["[CRITICAL] breach"]  # the other got it
    [(alert, reason)] = outcomes.failed
    assert alert.key == "k"
    assert reason.startswith("JSON[dead]: refused or unreachable")
    assert reason.endswith("(3 attempts)")
    assert str(closed_port) not in reason
    assert (alerter.stats.failed, alerter.stats.sent, alerter.stats.retries) == (1, 0, 2)


async def test_full_queue_drops_and_counts_never_blocks(
    webhook: Webhook, fast_settings: Settings
) -> None:
    alerter, outcomes = alerter_for(fast_settings((webhook.url(), ()), queue_size=2))
    # Not started yet: everything stays queued.
    alerter.send(make_alert("w1", severity="warning", title="w1"))
    alerter.send(make_alert("w2", severity="warning", title="w2"))
    alerter.send(make_alert("w3", severity="warning", title="w3"))  # full: refused
    alerter.send(make_alert("c1", title="c1"))  # critical: evicts the oldest warning
    assert [(a.key, reason) for a, reason in outcomes.failed] == [
        ("w3", "alert queue full"),
        ("w1", "alert queue full"),
    ]
    assert alerter.stats.dropped == 2
    await alerter.start()
    try:
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert webhook.titles() == ["[WARNING] w2", "[CRITICAL] c1"]


async def test_urls_never_reach_logs_reprs_or_errors(
    webhook: Webhook, fast_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "S3cr3tPassw0rd"
    url = f"json://riskd:{secret}@127.0.0.1:{webhook.port}/hook"
    caplog.set_level(logging.DEBUG)
    settings = fast_settings((url, ("telegram",)))
    alerter, _ = alerter_for(settings)
    await alerter.start()
    try:
        alerter.send(make_alert("k"))
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert webhook.titles() == ["[CRITICAL] Test 100k: daily-loss BREACHED"]
    assert any(r.name == "apprise" for r in caplog.records)  # apprise did log
    # Should an apprise plugin ever log a URL part, it is masked.
    logging.getLogger("apprise").debug("POST to riskd:%s@127.0.0.1", secret)
    assert "POST to riskd:***@127.0.0.1" in caplog.text
    assert secret not in caplog.text
    assert secret not in repr(settings)
    assert secret not in repr(alerter)

    bad = AppriseSettings(targets=(AlertTarget(SecretStr(f"nosuchscheme://{secret}@x"), ()),))
    with pytest.raises(AlertConfigError) as caught:
        AppriseAlerter(bad)
    assert caught.value.problems == ["alerts.urls[0]: apprise cannot use this nosuchscheme:// URL"]
    assert secret not in str(caught.value)
    assert secret not in caplog.text


async def test_send_after_close_is_logged_not_raised(fast_settings: Settings) -> None:
    alerter, outcomes = alerter_for(fast_settings())
    await alerter.start()
    await alerter.aclose()
    alerter.send(make_alert("late"))
    assert [(a.key, r) for a, r in outcomes.failed] == [("late", "riskd is shutting down")]


async def test_without_targets_it_is_a_log_alerter(
    fast_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    alerter, outcomes = alerter_for(fast_settings())
    assert not alerter.settings.enabled
    await alerter.start()
    try:
        with caplog.at_level(logging.INFO, logger="riskd.alerts"):
            alerter.send(make_alert("k", title="log me"))
            await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert "ALERT event=breach" in caplog.text
    assert 'title="log me"' in caplog.text
    assert (outcomes.sent, outcomes.failed) == ([], [])
    assert alerter.stats.unrouted == 1


async def test_config_file_targets_and_tags(
    webhook: Webhook, mailbox: Mailbox, tmp_path: Path, fast_settings: Settings
) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text(
        "version: 1\n"
        "urls:\n"
        f"  - {webhook.url()}:\n"
        "      tag: telegram\n"
        f"  - {mailbox.url()}:\n"
        "      tag: email\n"
    )
    settings = fast_settings(config_file=str(config), routes={"warning": ("telegram",)})
    alerter, _ = alerter_for(settings)
    await alerter.start()
    try:
        alerter.send(make_alert("w", severity="warning", title="warned"))
        alerter.send(make_alert("c", title="breached"))
        await alerter.wait_idle()
    finally:
        await alerter.aclose()
    assert webhook.titles() == ["[WARNING] warned", "[CRITICAL] breached"]
    assert [m.subject for m in mailbox.messages] == ["[CRITICAL] breached"]


def test_an_empty_config_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "apprise.yml"
    config.write_text("version: 1\nurls: []\n")
    with pytest.raises(AlertConfigError, match="no usable notification URL"):
        AppriseAlerter(AppriseSettings(config_file=str(config)))


async def test_shutdown_drains_within_its_deadline(
    webhook: Webhook, fast_settings: Settings
) -> None:
    webhook.hang()
    alerter, outcomes = alerter_for(fast_settings((webhook.url(), ()), timeout=30.0))
    await alerter.start()
    alerter.send(make_alert("stuck"))
    await webhook.arrived.reach(1)
    async with asyncio.timeout(10):  # generous: aclose gives up after 0.1s
        await alerter.aclose(timeout=0.1)
    assert [(a.key, r) for a, r in outcomes.failed] == [("stuck", "JSON: riskd is shutting down")]
    assert alerter.pending == 0
