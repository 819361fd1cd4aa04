"""One alert interface for everything riskd tells people.

Alerts are built from state changes (a warning crossed, a breach, a flatten done or failed,
recovery, stale data, a lockout cleared), never from every evaluation. ``Alerter.send`` never
blocks and never raises: a flatten must not wait for a notification. ``LogAlerter`` writes one
structured log line per alert; apprise delivery plugs in behind the same interface.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from riskd.engine import Verdict

Severity = Literal["info", "warning", "critical"]

log = logging.getLogger("riskd.alerts")

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person should know, at a glance.

    ``key`` identifies the state change (the same change gives the same key, so a delivery
    layer can drop duplicates); ``event`` is its kind: ``warn``, ``breach``, ``flatten_done``,
    ``flatten_failed``, ``recovered``, ``stale``, ``lockout_cleared``, ``lockout_close``,
    ``not_confirmed``, ``no_baseline``, ``account_down``, ``account_up``.
    """

    key: str
    event: str
    severity: Severity
    account_id: str
    account_name: str
    title: str
    body: str
    rule: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


class Alerter(Protocol):
    """Takes alerts; must return at once (queue internally) and never raise."""

    def send(self, alert: Alert) -> None: ...


class LogAlerter:
    """Alerts as structured log lines on the ``riskd.alerts`` logger."""

    def send(self, alert: Alert) -> None:
        extras = " ".join(f"{k}={_quote(v)}" for k, v in alert.fields.items())
        log.log(
            _LEVELS[alert.severity],
            "ALERT event=%s account=%s rule=%s title=%s %s",
            alert.event,
            _quote(alert.account_name),
            alert.rule or "-",
            _quote(alert.title),
            extras,
        )


def _quote(value: str) -> str:
    return f'"{value}"' if any(c.isspace() for c in value) else value


def money(value: float | None, currency: str) -> str:
    return "n/a" if value is None else f"{value:,.2f} {currency}"


def _when(moment: datetime | None) -> str:
    return (
        "never (a person must unlock)" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
    )


def verdict_fields(verdict: Verdict, currency: str) -> dict[str, str]:
    """The numbers a trader wants in every rule alert: where equity is, where the floor is."""
    in_money = verdict.kind in ("daily_loss", "max_loss", "trailing_drawdown", "profit_target")

    def fmt(value: float | None) -> str:
        if in_money:
            return money(value, currency)
        return "n/a" if value is None else f"{value:,.2f}"

    fields = {
        "value": fmt(verdict.value),
        "threshold": fmt(verdict.threshold),
        "headroom": fmt(verdict.headroom),
        "used": "n/a" if verdict.used is None else f"{verdict.used:.0%}",
        "action": verdict.action,
    }
    if verdict.latched or verdict.next_reset is not None:
        fields["reset"] = _when(verdict.next_reset)
    return fields


def verdict_alerts(
    verdict: Verdict, account_id: str, account_name: str, currency: str, dry_run: bool
) -> list[Alert]:
    """The alerts one verdict's changes call for (usually none)."""
    from riskd.engine import Newly, Status

    out: list[Alert] = []
    fields = verdict_fields(verdict, currency)
    base = f"{account_id}:{verdict.rule}"
    stamp = verdict.condition_since or verdict.next_reset
    episode = stamp.isoformat() if stamp is not None else "-"
    what = {
        "daily_loss": "equity vs daily floor",
        "max_loss": "equity vs max-loss floor",
        "trailing_drawdown": "equity vs trailing floor",
        "profit_target": "equity vs profit target",
        "margin_level": "margin level",
        "exposure": "exposure",
        "stale_data": "data age",
    }[verdict.kind]
    numbers = f"{what}: {fields['value']} / {fields['threshold']} (headroom {fields['headroom']})"
    if Newly.WARN in verdict.newly and verdict.warn_crossed is not None:
        out.append(
            Alert(
                key=f"{base}:warn:{verdict.warn_crossed}:{episode}",
                event="warn",
                severity="warning",
                account_id=account_id,
                account_name=account_name,
                rule=verdict.rule,
                title=f"{account_name}: {verdict.rule} at {verdict.warn_crossed:.0%} "
                "of the allowed loss",
                body=numbers,
                fields=fields,
            )
        )
    if Newly.BREACH in verdict.newly:
        event = "stale" if verdict.kind == "stale_data" else "breach"
        if verdict.action == "alert":
            next_step = "riskd only alerts for this rule"
        elif dry_run:
            next_step = "DRY RUN: riskd would flatten the account now (no order is sent)"
        elif verdict.action == "lockout":
            next_step = "riskd flattens the account and keeps it flat until " + fields.get(
                "reset", "a person unlocks it"
            )
        else:
            next_step = "riskd flattens the account now"
        out.append(
            Alert(
                key=f"{base}:{event}:{episode}",
                event=event,
                severity="critical" if verdict.severity == "critical" else verdict.severity,
                account_id=account_id,
                account_name=account_name,
                rule=verdict.rule,
                title=f"{account_name}: {verdict.rule} BREACHED",
                body=f"{numbers}. {next_step}.",
                fields=fields,
            )
        )
    if Newly.RESOLVED in verdict.newly:
        out.append(
            Alert(
                key=f"{base}:recovered:{verdict.previous_status}:{episode}",
                event="recovered",
                severity="info",
                account_id=account_id,
                account_name=account_name,
                rule=verdict.rule,
                title=f"{account_name}: {verdict.rule} back to {verdict.status}",
                body=numbers,
                fields=fields,
            )
        )
    if Newly.NO_BASELINE in verdict.newly and verdict.status is Status.NO_BASELINE:
        out.append(
            Alert(
                key=f"{base}:no_baseline:{episode}",
                event="no_baseline",
                severity="warning",
                account_id=account_id,
                account_name=account_name,
                rule=verdict.rule,
                title=f"{account_name}: {verdict.rule} has no day-start baseline yet",
                body="The daily floor is unknown until the day-start balance is known.",
                fields=fields,
            )
        )
    return out
