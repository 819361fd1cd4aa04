"""Event metrics from a running riskd against the simulator: bridge requests, breaches and
flattens, ticks and reconnects; and the counting rules themselves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from riskd.actions.alerts import Alert
from riskd.api2trade import AsyncApi2TradeClient
from riskd.api2trade.backoff import Backoff
from riskd.metrics import Metrics, alert_failure_reason
from riskd.sim import SimServer
from tests.daemon.conftest import RecordingAlerter, service_settings, wait_until
from tests.observability.conftest import observed_service


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def test_client_hooks_count_attempts_outcomes_retries_and_429s(sim: SimServer) -> None:
    account = sim.create_account(balance=50_000.0)
    metrics = Metrics(process_metrics=False)
    sim.faults.rate_limit_next(1, retry_after=0.01, path="/AccountSummary")
    sim.faults.fail_next(1, status=503, path="/AccountSummary")
    async with AsyncApi2TradeClient(
        api_key=sim.api_key,
        base_url=sim.base_url,
        hooks=metrics.client_hooks,
        backoff=Backoff(base=0.001, cap=0.01),
    ) as client:
        summary = await client.accounts.summary(account)
    assert summary.balance == 50_000.0
    ep = "/AccountSummary"
    for outcome in ("http_429", "http_503", "ok"):
        assert _value(metrics, "riskd_api_requests_total", endpoint=ep, outcome=outcome) == 1
    assert _value(metrics, "riskd_api_request_duration_seconds_count", endpoint=ep) == 3
    assert _value(metrics, "riskd_api_retries_total", endpoint=ep, reason="rate_limited") == 1
    assert _value(metrics, "riskd_api_retries_total", endpoint=ep, reason="http_503") == 1
    assert _value(metrics, "riskd_api_rate_limited_total", endpoint=ep) == 1


def test_labels_from_callers_stay_bounded() -> None:
    metrics = Metrics(process_metrics=False)
    hooks = metrics.client_hooks
    hooks.on_request("/AccountSummary?id=123", "ok", 0.01)
    hooks.on_request("https://bridge.example/Positions", "weird outcome", 0.01)
    hooks.on_retry("/OrderClose", "retcode_10004")
    hooks.on_retry("/OrderClose", "Ticket 123456 refused")
    metrics.alert_failed("breach", "ConnectionError('host 10.1.2.3 down')")
    metrics.alert_sent("breach", "critical")
    text = metrics.exposition().decode()
    assert 'riskd_api_requests_total{endpoint="other",outcome="ok"} 1.0' in text
    assert 'riskd_api_requests_total{endpoint="other",outcome="other"} 1.0' in text
    assert 'riskd_api_retries_total{endpoint="/OrderClose",reason="retcode_10004"} 1.0' in text
    assert 'riskd_api_retries_total{endpoint="/OrderClose",reason="other"} 1.0' in text
    assert 'riskd_alerts_failed_total{event="breach",reason="other"} 1.0' in text
    assert "123456" not in text and "10.1.2.3" not in text


def test_delivery_callbacks_count_by_event_and_reason_class() -> None:
    metrics = Metrics(process_metrics=False)
    metrics.on_alert_sent(_alert("breach"))
    metrics.on_alert_failed(_alert("breach"), "Telegram[tg]: no answer within 10s (3 attempts)")
    metrics.on_alert_failed(_alert("warn"), "alert queue full")
    failed = "riskd_alerts_failed_total"
    assert _value(metrics, "riskd_alerts_sent_total", event="breach", severity="critical") == 1
    assert _value(metrics, failed, event="breach", reason="timeout") == 1
    assert _value(metrics, failed, event="warn", reason="queue_full") == 1
    for reason, label in [
        ("riskd is shutting down", "shutdown"),
        ("Mail[email]: refused or unreachable (3 attempts)", "unreachable"),
        ("Json[hook]: apprise raised ValueError (1 attempt)", "error"),
        ("target queue full", "queue_full"),
        ("timeout", "timeout"),
        ("Something else entirely", "other"),
    ]:
        assert alert_failure_reason(reason) == label


def _alert(event: str, rule: str = "max-loss") -> Alert:
    return Alert(key=f"k-{event}", event=event, severity="critical", account_id="a1",
                 account_name="A", title=event, body="", rule=rule)  # fmt: skip


def test_a_flatten_counts_once_whatever_its_reminders() -> None:
    metrics = Metrics(process_metrics=False)
    inner = RecordingAlerter()
    alerter = metrics.count_alerts(inner)
    for event in ("breach", "flatten_failed", "flatten_failed", "flatten_failed", "flatten_done",
                  "breach", "flatten_failed", "warn", "lockout_close"):  # fmt: skip
        alerter.send(_alert(event))
    assert inner.events()[0] == "breach" and len(inner.alerts) == 9  # all handed on
    flattens = "riskd_flattens_total"
    assert _value(metrics, flattens, account="a1", outcome="failed") == 2  # two flattens
    assert _value(metrics, flattens, account="a1", outcome="done") == 1
    assert _value(metrics, "riskd_rule_breaches_total", account="a1", rule="max-loss") == 2
    assert _value(metrics, "riskd_rule_warnings_total", account="a1", rule="max-loss") == 1
    assert _value(metrics, "riskd_lockout_closes_total", account="a1") == 1
    raised = "riskd_alerts_raised_total"
    assert _value(metrics, raised, event="flatten_failed", severity="critical") == 4


async def test_breach_and_flatten_that_cannot_get_flat_then_does(
    sim: SimServer, tmp_path: Path
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    sim.faults.queue_retcode(10017, times=1000, path="/OrderClose")  # trade disabled
    settings = service_settings(sim, tmp_path / "state.sqlite", account)
    settings = replace(
        settings, enforcement=replace(settings.enforcement, flat_timeout=0.3, reminder_interval=0.2)
    )
    metrics, alerter = Metrics(process_metrics=False), RecordingAlerter()
    service = observed_service(settings, metrics, alerter)
    await service.start()
    try:
        sim.set_price("EURUSD", 1.07000, 1.07010)  # -1500 USD: max-loss (1000) breached
        await wait_until(lambda: alerter.events().count("flatten_failed") >= 3)
        assert _value(metrics, "riskd_flattens_total", account=account, outcome="failed") == 1
        assert _value(metrics, "riskd_flatten_in_progress", account=account) == 1
        assert _value(metrics, "riskd_rule_breaches_total", account=account, rule="max-loss") == 1
        assert _value(metrics, "riskd_rule_latched", account=account, rule="max-loss") == 1
        assert _value(metrics, "riskd_account_locked_out", account=account) == 1
        assert _value(metrics, "riskd_close_requests_total") >= 2
        sim.faults.reset()  # the broker allows trading again
        await wait_until(lambda: "flatten_done" in alerter.events())
        await wait_until(lambda: _value(metrics, "riskd_flatten_in_progress", account=account) == 0)
        assert _value(metrics, "riskd_flattens_total", account=account, outcome="done") == 1
        assert _value(metrics, "riskd_flattens_total", account=account, outcome="failed") == 1
        raised = _value(metrics, "riskd_alerts_raised_total", event="breach", severity="critical")
        assert raised == 1
        state = {
            s: _value(metrics, "riskd_rule_state", account=account, rule="max-loss", state=s)
            for s in ("breach", "latched")
        }
        assert sum(state.values()) == 1  # one-hot: latched or still in breach
    finally:
        await service.stop()


async def test_stream_ticks_latency_and_reconnects(sim: SimServer, tmp_path: Path) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0)
    settings = service_settings(sim, tmp_path / "state.sqlite", account)
    settings = replace(settings, poll=replace(settings.poll, summary_interval=60.0,
                                              positions_interval=60.0))  # fmt: skip
    metrics = Metrics(process_metrics=False)
    service = observed_service(settings, metrics, RecordingAlerter())
    await service.start()
    try:
        book = service.books[account]
        await wait_until(lambda: _value(metrics, "riskd_stream_connected", account=account) == 1)
        bid = 1.08500
        for _ in range(5):
            bid = round(bid - 0.0001, 5)
            sim.set_price("EURUSD", bid, round(bid + 0.0001, 5))
        await wait_until(
            lambda: _value(metrics, "riskd_ticks_accepted_total", account=account) >= 5
        )
        assert _value(metrics, "riskd_ticks_received_total", account=account) >= 5
        assert _value(metrics, "riskd_tick_decision_latency_seconds_count") >= 5
        assert _value(metrics, "riskd_stream_last_tick_timestamp_seconds", account=account) > 0
        assert book.estimator.equity is not None
        assert _value(metrics, "riskd_account_estimated_equity", account=account) == (
            book.estimator.equity
        )
        sim.drop_streams()
        await wait_until(
            lambda: (
                _value(metrics, "riskd_stream_reconnects_total", account=account) >= 1
                and _value(metrics, "riskd_stream_connected", account=account) == 1
            )
        )
        assert _value(metrics, "riskd_stream_connects_total", account=account) >= 2
    finally:
        await service.stop()
