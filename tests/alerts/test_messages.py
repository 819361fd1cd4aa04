"""What a trader reads: account, rule, equity, floor, distance, what riskd did, what next;
and keys that name one state change each."""

from __future__ import annotations

from datetime import timedelta

from riskd.actions.alerts import Alert, render, rule_condition, verdict_alerts
from riskd.engine import Evaluation, evaluate
from tests.engine.helpers import Account, one_rule, snap, utc

DAILY_LOCKOUT = """
- name: daily-loss
  kind: daily_loss
  baseline: balance
  limit: 5%
  limit_of: initial_balance
  reset: {at: "00:00", zone: UTC}
  warn_at: [50%, 80%]
  action: lockout
  severity: critical
"""

MAX_ALERT_ONLY = """
- name: max-loss
  kind: max_loss
  limit: 10%
  warn_at: [50%]
  action: alert
  severity: critical
"""

STALE = """
- name: data-age
  kind: stale_data
  max_poll_age: 30s
  action: alert
  severity: critical
"""

DAY = utc("2026-05-04 00:00")


def alerts_of(evaluation: Evaluation, dry_run: bool = False) -> list[Alert]:
    out: list[Alert] = []
    for verdict in evaluation.verdicts:
        out += verdict_alerts(verdict, "acc-1", "FTMO 100k", "USD", dry_run, evaluation.at)
    return out


def daily_account() -> Account:
    account = Account([one_rule(DAILY_LOCKOUT)])
    account.roll(DAY, 100_000.0)
    return account


def test_warning_says_where_equity_is_and_what_riskd_will_do() -> None:
    account = daily_account()
    [warn] = alerts_of(account.at(DAY + timedelta(hours=9), equity=97_400.0))
    assert warn.event == "warn"
    assert warn.severity == "warning"
    assert warn.title == "FTMO 100k: daily-loss at 50% of the allowed loss"
    assert warn.body.startswith(
        "Equity 97,400.00 USD is 2,400.00 USD above the daily floor of 95,000.00 USD."
    )
    assert "riskd closes every position and keeps the account flat until 2026-05-05 00:00 UTC" in (
        warn.body
    )
    title, text = render(warn)
    assert title == "[WARNING] FTMO 100k: daily-loss at 50% of the allowed loss"
    for line in (
        "Account: FTMO 100k (acc-1)",
        "Rule: daily-loss",
        "Equity: 97,400.00 USD",
        "Daily floor: 95,000.00 USD",
        "Distance to floor: 2,400.00 USD (52% of the allowed loss used)",
        "Next reset: 2026-05-05 00:00 UTC",
    ):
        assert line in text.splitlines(), text
    assert not warn.ongoing


def test_lockout_breach_says_flatten_and_until_when() -> None:
    account = daily_account()
    [breach] = alerts_of(account.at(DAY + timedelta(hours=10), equity=94_980.0))
    assert breach.event == "breach"
    assert breach.severity == "critical"
    assert breach.title == "FTMO 100k: daily-loss BREACHED, closing all and locking out"
    assert breach.body == (
        "Equity 94,980.00 USD is 20.00 USD below the daily floor of 95,000.00 USD. "
        "riskd is closing every position now and will close any new one until "
        "2026-05-05 00:00 UTC."
    )
    _, text = render(breach)
    assert "Status: latched until 2026-05-05 00:00 UTC" in text
    # A lockout stays unresolved until its reset: reminded.
    assert breach.ongoing
    assert breach.condition == rule_condition("acc-1", "daily-loss")


def test_dry_run_and_alert_only_say_nothing_is_closed() -> None:
    account = daily_account()
    [breach] = alerts_of(account.at(DAY + timedelta(hours=10), equity=94_000.0), dry_run=True)
    assert breach.title == "FTMO 100k: daily-loss BREACHED (dry run)"
    assert "DRY RUN: riskd would close every position now; no order is sent." in breach.body

    alert_only = Account([one_rule(MAX_ALERT_ONLY)])
    [breach] = alerts_of(alert_only.at(DAY, equity=89_000.0))
    assert breach.title == "FTMO 100k: max-loss BREACHED"
    assert "This rule only alerts: riskd closes nothing." in breach.body
    assert breach.ongoing  # nobody fixes it but a person: reminded until it recovers
    [recovered] = alerts_of(alert_only.at(DAY + timedelta(minutes=5), equity=96_000.0))
    assert recovered.event == "recovered"
    assert recovered.title == "FTMO 100k: max-loss back to ok"
    assert recovered.body.startswith("Equity 96,000.00 USD is 6,000.00 USD above")
    assert recovered.condition == breach.condition
    assert not recovered.ongoing


def test_stale_data_names_the_age() -> None:
    account = Account([one_rule(STALE)])
    evaluation = account.at(DAY, equity=100_000.0)
    assert alerts_of(evaluation) == []
    late = snap(DAY + timedelta(seconds=95), equity=100_000.0, last_poll_at=DAY)
    result = evaluate(account.rules, late, account.states)
    [stale] = alerts_of(result)
    assert stale.event == "stale"
    assert stale.title == "FTMO 100k: account data is stale (data-age)"
    assert "95 s old; the allowed age is 30 s" in stale.body
    assert "check the bridge and the terminal" in stale.body


def test_keys_name_the_state_change_not_the_moment_it_is_sent() -> None:
    account = daily_account()
    evaluation = account.at(DAY + timedelta(hours=10), equity=94_980.0)
    first = [a.key for a in alerts_of(evaluation)]
    assert first == [a.key for a in alerts_of(evaluation)]  # same change, same key
    since = evaluation.verdicts[0].condition_since
    assert since is not None
    assert first == [f"acc-1:daily-loss:breach:{since.isoformat()}"]


def test_a_rearmed_warning_is_a_new_alert() -> None:
    account = daily_account()
    [one] = alerts_of(account.at(DAY + timedelta(hours=1), equity=97_400.0))
    assert alerts_of(account.at(DAY + timedelta(hours=2), equity=97_300.0)) == []
    assert alerts_of(account.at(DAY + timedelta(hours=3), equity=99_000.0)) == []  # re-armed
    [two] = alerts_of(account.at(DAY + timedelta(hours=4), equity=97_400.0))
    assert one.key != two.key
