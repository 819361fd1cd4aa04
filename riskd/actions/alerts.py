"""One alert interface for everything riskd tells people.

Alerts are built from state changes (a warning crossed, a breach, a flatten done or failed,
recovery, stale data, a lockout cleared), never from every evaluation. ``Alerter.send`` never
blocks and never raises: a flatten must not wait for a notification. ``LogAlerter`` writes one
structured log line per alert; ``riskd.actions.notify.AppriseAlerter`` delivers them through
apprise behind the same interface.

Three fields tie alerts to the states they report:

- ``key`` names one state change. The same change always gets the same key (a breach is keyed
  by the instant its condition started, a flatten by its journal episode), so a delivery
  layer that remembers keys (the store's ``claim_alert``) sends each change once, across
  restarts too. Keys never hold a wall-clock "now".
- ``condition`` names the ongoing situation an alert is about (one rule of one account, one
  flatten episode). The newest alert of a condition says whether it is still unresolved:
  ``ongoing=True`` (a critical state a person must see to: a breach riskd does not fix by
  itself, a latched lockout, a flatten that cannot get flat) asks for reminders until a later
  alert of the same condition arrives with ``ongoing=False`` (recovered, lockout cleared,
  flatten done).
- ``reminder`` is 0 for the state change itself and n for its n-th repeat; repeats are never
  deduplicated away.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from riskd.engine import Newly, Status, Verdict

Severity = Literal["info", "warning", "critical"]

log = logging.getLogger("riskd.alerts")

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person should know, at a glance.

    ``key`` identifies the state change (the same change gives the same key, so a delivery
    layer can drop duplicates); ``event`` is its kind: ``warn``, ``breach``, ``flatten_done``,
    ``flatten_failed``, ``close_refused``, ``recovered``, ``stale``, ``lockout_cleared``,
    ``lockout_close``, ``no_baseline``, ``account_down``, ``account_up``; from the daemon
    itself ``config_reload_failed``, ``rule_removed`` and ``state_left_behind``.

    ``title`` is one line (a Telegram preview, an e-mail subject); ``body`` says what
    happened, what riskd did and what happens next, in a sentence or three; ``details`` are
    the numbers as labelled lines (``("Equity", "94,980.00 USD")``); ``fields`` are the same
    facts under stable machine keys for log lines. See the module docstring for
    ``condition``, ``ongoing`` and ``reminder``.
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
    details: tuple[tuple[str, str], ...] = ()
    condition: str | None = None
    ongoing: bool = False
    reminder: int = 0


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


def rule_condition(account_id: str, rule: str) -> str:
    """The condition id of one rule of one account (breach, lockout, recovery)."""
    return f"{account_id}:rule:{rule}"


def flatten_condition(account_id: str, episode: str) -> str:
    """The condition id of one flatten episode (failed until done)."""
    return f"{account_id}:flatten:{episode}"


def render(alert: Alert) -> tuple[str, str]:
    """The (title, text) a person receives: the body, then account, rule and the numbers."""
    prefix = {"info": "[info]", "warning": "[WARNING]", "critical": "[CRITICAL]"}[alert.severity]
    title = f"{prefix} {alert.title}"
    if alert.reminder:
        title = f"{prefix} REMINDER: {alert.title}"
    lines = [alert.body, ""]
    account = alert.account_name
    if alert.account_id and alert.account_id != alert.account_name:
        account = f"{alert.account_name} ({alert.account_id})"
    lines.append(f"Account: {account}")
    if alert.rule:
        lines.append(f"Rule: {alert.rule}")
    lines.extend(f"{label}: {value}" for label, value in alert.details)
    return title, "\n".join(lines)


def money(value: float | None, currency: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.2f} {currency}".rstrip()


def _when(moment: datetime | None) -> str:
    return (
        "never (a person must unlock)" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
    )


_MONEY_KINDS = ("daily_loss", "max_loss", "trailing_drawdown", "profit_target")
_LOSS_KINDS = ("daily_loss", "max_loss", "trailing_drawdown")

_FLOOR_NAMES = {
    "daily_loss": "daily floor",
    "max_loss": "max-loss floor",
    "trailing_drawdown": "trailing floor",
}

# Labels of (value, threshold, headroom) per rule kind, for the lines under the message.
_LABELS = {
    "daily_loss": ("Equity", "Daily floor", "Distance to floor"),
    "max_loss": ("Equity", "Max-loss floor", "Distance to floor"),
    "trailing_drawdown": ("Equity", "Trailing floor", "Distance to floor"),
    "profit_target": ("Equity", "Profit target", "Still to go"),
    "margin_level": ("Margin level", "Minimum margin level", "Headroom"),
    "exposure": ("Exposure", "Cap", "Headroom"),
    "stale_data": ("Data age", "Allowed age", "Headroom"),
}


def verdict_fields(verdict: Verdict, currency: str) -> dict[str, str]:
    """The numbers a trader wants in every rule alert: where equity is, where the floor is."""
    in_money = verdict.kind in _MONEY_KINDS

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


def _show(verdict: Verdict, value: float | None, currency: str, *, delta: bool = False) -> str:
    """One number of a verdict in its kind's unit (money, percent, seconds, lots)."""
    if value is None:
        return "n/a"
    kind = verdict.kind
    if kind in _MONEY_KINDS:
        return money(value, currency)
    if kind == "margin_level":
        return f"{value:,.0f} points" if delta else f"{value:,.0f}%"
    if kind == "stale_data":
        return f"{value:,.0f} s"
    return f"{value:,.2f}"


def _details(verdict: Verdict, currency: str, dry_run: bool) -> tuple[tuple[str, str], ...]:
    value_label, threshold_label, headroom_label = _LABELS[verdict.kind]
    headroom = _show(verdict, verdict.headroom, currency, delta=True)
    if verdict.used is not None and verdict.kind in _LOSS_KINDS:
        headroom += f" ({verdict.used:.0%} of the allowed loss used)"
    elif verdict.used is not None and verdict.kind == "profit_target":
        headroom += f" ({verdict.used:.0%} of the way)"
    out = [
        (value_label, _show(verdict, verdict.value, currency)),
        (threshold_label, _show(verdict, verdict.threshold, currency)),
        (headroom_label, headroom),
        ("On breach", _consequence(verdict, dry_run)),
    ]
    if verdict.next_reset is not None:
        out.append(("Next reset", _when(verdict.next_reset)))
    if verdict.latched:
        out.append(("Status", f"latched until {_until(verdict)}"))
    return tuple(out)


def _until(verdict: Verdict) -> str:
    if verdict.next_reset is None:
        return "a person unlocks the account"
    return _when(verdict.next_reset)


def _consequence(verdict: Verdict, dry_run: bool) -> str:
    """What riskd does when this rule breaches, in words."""
    if verdict.action == "alert":
        return "riskd alerts only (it closes nothing for this rule)"
    if dry_run:
        return "riskd would close every position (DRY RUN: no order is sent)"
    if verdict.action == "lockout":
        return f"riskd closes every position and keeps the account flat until {_until(verdict)}"
    return "riskd closes every position"


def _numbers(verdict: Verdict, currency: str) -> str:
    """Where the rule stands, in a sentence."""
    value = _show(verdict, verdict.value, currency)
    threshold = _show(verdict, verdict.threshold, currency)
    if verdict.kind in _LOSS_KINDS:
        floor = _FLOOR_NAMES[verdict.kind]
        headroom = verdict.headroom
        if headroom is None:
            return f"Equity is {value}; the {floor} is {threshold}."
        if headroom > 0:
            distance = _show(verdict, headroom, currency)
            return f"Equity {value} is {distance} above the {floor} of {threshold}."
        distance = _show(verdict, -headroom, currency)
        return f"Equity {value} is {distance} below the {floor} of {threshold}."
    if verdict.kind == "profit_target":
        return f"Equity {value}; the profit target is {threshold}."
    if verdict.kind == "margin_level":
        return f"Margin level {value}; the minimum is {threshold}."
    if verdict.kind == "exposure":
        return f"Exposure {value}; the cap is {threshold}."
    return f"The newest account data is {value} old; the allowed age is {threshold}."


def _breach_next_step(verdict: Verdict, dry_run: bool) -> str:
    if verdict.kind == "profit_target":
        return "Target reached: stop trading and check the firm's next step."
    if verdict.kind == "stale_data" and verdict.action == "alert":
        return "riskd cannot see this account's equity: check the bridge and the terminal."
    if verdict.action == "alert":
        return "This rule only alerts: riskd closes nothing. Act now if you need to."
    if dry_run:
        return "DRY RUN: riskd would close every position now; no order is sent."
    if verdict.action == "lockout":
        return (
            "riskd is closing every position now and will close any new one until "
            f"{_until(verdict)}."
        )
    return "riskd is closing every position now; a message follows when the account is flat."


def verdict_alerts(
    verdict: Verdict,
    account_id: str,
    account_name: str,
    currency: str,
    dry_run: bool,
    at: datetime | None = None,
) -> list[Alert]:
    """The alerts one verdict's changes call for (usually none).

    ``at`` is the evaluation's instant: it keys the changes that carry no episode stamp of
    their own (a warning level crossed, a recovery), so a re-armed warning later in the day
    is a new alert while the same evaluation's alert is one. Breaches are keyed by the
    instant their condition started to hold.
    """
    if not verdict.newly:
        return []  # the common case, on every tick: nothing changed, nothing to format
    out: list[Alert] = []
    fields = verdict_fields(verdict, currency)
    details = _details(verdict, currency, dry_run)
    base = f"{account_id}:{verdict.rule}"
    condition = rule_condition(account_id, verdict.rule)
    stamp = verdict.condition_since or verdict.next_reset
    episode = stamp.isoformat() if stamp is not None else "-"
    now = at.isoformat() if at is not None else episode
    numbers = _numbers(verdict, currency)
    in_loss = verdict.kind in _LOSS_KINDS

    def alert(
        key: str, event: str, severity: Severity, title: str, body: str, ongoing: bool = False
    ) -> Alert:
        return Alert(
            key=key,
            event=event,
            severity=severity,
            account_id=account_id,
            account_name=account_name,
            rule=verdict.rule,
            title=title,
            body=body,
            fields=fields,
            details=details,
            condition=condition,
            ongoing=ongoing,
        )

    if Newly.WARN in verdict.newly and verdict.warn_crossed is not None:
        level = verdict.warn_crossed
        if in_loss:
            title = f"{account_name}: {verdict.rule} at {level:.0%} of the allowed loss"
        elif verdict.kind == "profit_target":
            title = f"{account_name}: {verdict.rule} {level:.0%} of the way to the target"
        else:
            title = f"{account_name}: {verdict.rule} at {level:.0%} of its limit"
        body = f"{numbers} Nothing done yet; at the limit {_consequence(verdict, dry_run)}."
        out.append(alert(f"{base}:warn:{level}:{now}", "warn", "warning", title, body))

    if Newly.BREACH in verdict.newly:
        event = "stale" if verdict.kind == "stale_data" else "breach"
        severity: Severity = verdict.severity
        if verdict.kind == "profit_target":
            title = f"{account_name}: {verdict.rule} target reached"
        elif event == "stale":
            title = f"{account_name}: account data is stale ({verdict.rule})"
        elif verdict.action == "alert":
            title = f"{account_name}: {verdict.rule} BREACHED"
        elif dry_run:
            title = f"{account_name}: {verdict.rule} BREACHED (dry run)"
        elif verdict.action == "lockout":
            title = f"{account_name}: {verdict.rule} BREACHED, closing all and locking out"
        else:
            title = f"{account_name}: {verdict.rule} BREACHED, closing all positions"
        since = verdict.condition_since.isoformat() if verdict.condition_since else now
        # Unresolved until recovery or reset: a breach riskd does not fix by itself, or a
        # lockout that keeps the account flat. A close_all breach is followed by the flatten's
        # own alerts (done, or failed and reminded).
        ongoing = severity == "critical" and (verdict.action in ("alert", "lockout") or dry_run)
        out.append(
            alert(
                f"{base}:{event}:{since}",
                event,
                severity,
                title,
                f"{numbers} {_breach_next_step(verdict, dry_run)}",
                ongoing,
            )
        )

    if Newly.RESOLVED in verdict.newly:
        if verdict.kind == "stale_data":
            body = f"Account data is fresh again ({_show(verdict, verdict.value, currency)} old)."
        else:
            body = f"{numbers} No action needed."
        out.append(
            alert(
                f"{base}:recovered:{now}",
                "recovered",
                "info",
                f"{account_name}: {verdict.rule} back to {verdict.status}",
                body,
            )
        )

    if Newly.NO_BASELINE in verdict.newly and verdict.status is Status.NO_BASELINE:
        out.append(
            alert(
                f"{base}:no_baseline:{now}",
                "no_baseline",
                "warning",
                f"{account_name}: {verdict.rule} has no day-start baseline yet",
                "The daily floor is unknown until the day-start balance is known; "
                "this rule cannot breach meanwhile.",
            )
        )
    return out
