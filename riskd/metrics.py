"""riskd's Prometheus metrics: one registry per process, no global state.

Two kinds of numbers, two mechanisms:

- **State** (balances, equity, floors, headroom, rule states, stream connected, last poll...)
  is read from the live service at scrape time by one custom collector per domain
  (:class:`AccountCollector`, :class:`RuleCollector`, :class:`StreamCollector`,
  :class:`DaemonCollector`). The account book stays the one owner of each fact; nothing here
  keeps a copy that could drift. Counters the daemon already keeps (poll stats, stream and
  tick-filter counts) are exported the same way, as counters.
- **Events** (API requests and their latency, retries, 429s, breaches, warnings, flattens,
  alerts delivered, tick-to-decision latency, estimate error) are counted by callbacks the
  daemon calls: :attr:`Metrics.client_hooks` (the API client's ``ClientHooks``),
  :meth:`Metrics.observe_tick` (``Watcher.tick_observer``), :meth:`Metrics.observe_summary`
  (a poll re-anchoring the estimate), :meth:`Metrics.count_alerts` (wraps the alerter) and
  :meth:`Metrics.alert_sent` / :meth:`Metrics.alert_failed` (the delivery layer).

Conventions (Prometheus' naming practices): every name starts with
``riskd_``; base units (seconds, ratios 0..1; money is in the account's currency, which
``riskd_account_info`` names); counters end in ``_total``. Labels are bounded: ``account`` is
the configured account id, ``rule`` a configured rule name, ``endpoint`` a bridge path from the
client's fixed set (``/AccountSummary``), ``event``/``outcome``/``reason``/``state`` come from
small fixed vocabularies. Never a ticket, a symbol or a URL.

Rule metrics share one set of families whose unit depends on the rule's ``kind`` (a label on
every one of them): money for ``daily_loss``/``max_loss``/``trailing_drawdown``/
``profit_target``, a ratio for ``margin_level`` (MetaTrader's percent divided by 100), lots or
positions for ``exposure``, seconds for ``stale_data``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import platform
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import metadata
from typing import Final, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from riskd.actions.alerts import Alert, Alerter
from riskd.api2trade import AccountSummary, ClientSettings
from riskd.engine import Status
from riskd.monitor.book import AccountBook
from riskd.monitor.estimator import ESTIMATOR_COUNTERS
from riskd.monitor.poller import PollStats
from riskd.monitor.streams import StreamingSettings
from riskd.monitor.tickfilter import DROP_REASONS
from riskd.monitor.watcher import TickTiming
from riskd.shard import Shard

log = logging.getLogger("riskd.metrics")

__all__ = [
    "API_LATENCY_BUCKETS",
    "CONTENT_TYPE",
    "ESTIMATE_ERROR_BUCKETS",
    "LOOP_LAG_BUCKETS",
    "RULE_STATES",
    "TICK_LATENCY_BUCKETS",
    "AccountCollector",
    "ApiHooks",
    "CountingAlerter",
    "DaemonCollector",
    "Metrics",
    "RuleCollector",
    "ServiceView",
    "StreamCollector",
    "alert_failure_reason",
    "is_ready",
    "riskd_version",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""Content type of :meth:`Metrics.exposition`: the classic text format, which is what it is
(legacy metric names, ``generate_latest``'s default escaping). prometheus_client's
``CONTENT_TYPE_LATEST`` says ``version=1.0.0`` now, which older scrapers do not know."""

API_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TICK_LATENCY_BUCKETS: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
)  # fmt: skip
ESTIMATE_ERROR_BUCKETS: Final = (0.000001, 0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1)
LOOP_LAG_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RULE_STATES: Final[tuple[str, ...]] = tuple(s.value for s in Status)
"""Every value of ``riskd_rule_state``'s ``state`` label (the engine's ``Status``)."""

STREAM_DROP_REASONS: Final[tuple[str, ...]] = ("malformed", *DROP_REASONS)
"""Every ``reason`` of ``riskd_ticks_dropped_total``: unparseable on the wire, then the tick
filter's reasons (``riskd.monitor.tickfilter``)."""

FLATTEN_OUTCOMES: Final[tuple[str, ...]] = ("done", "failed")

# Rule kinds whose value/threshold/headroom are MetaTrader percents: exported as ratios.
_PERCENT_KINDS: Final = frozenset({"margin_level"})

_ENDPOINT = re.compile(r"^/[A-Za-z][A-Za-z0-9]{0,63}$")
_TOKEN = re.compile(r"^[a-z0-9_]{1,48}$")
_OUTCOME = re.compile(r"^(ok|timeout|connection_error|http_[1-5][0-9]{2})$")


def _endpoint(path: str) -> str:
    """A bridge path as a label: ``/AccountSummary``; anything else (a query string, an id in
    the path, a full URL) becomes ``other`` so no caller can blow up cardinality."""
    return path if _ENDPOINT.match(path) else "other"


def _token(value: str) -> str:
    """A short lower-case vocabulary word (event, reason, severity), else ``other``."""
    return value if _TOKEN.match(value) else "other"


_FAILURE_REASONS: Final = (
    ("no answer within", "timeout"),
    ("timed out", "timeout"),
    ("timeout", "timeout"),
    ("queue full", "queue_full"),
    ("shutting down", "shutdown"),
    ("refused or unreachable", "unreachable"),
    ("apprise raised", "error"),
)


def alert_failure_reason(reason: str) -> str:
    """A delivery failure as a bounded label: ``timeout``, ``queue_full``, ``shutdown``,
    ``unreachable``, ``error``, a short lower-case word given as is, else ``other``. The
    delivery layer's reasons are sentences naming targets; only their class is a label."""
    if _TOKEN.match(reason):
        return reason
    lowered = reason.lower()
    for marker, label in _FAILURE_REASONS:
        if marker in lowered:
            return label
    return "other"


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


# -- what the collectors read -------------------------------------------------------------------


class _PollerView(Protocol):
    @property
    def stats(self) -> PollStats: ...


class _BudgetView(Protocol):
    @property
    def rate_limited(self) -> int: ...


class _WatcherView(Protocol):
    @property
    def not_confirmed(self) -> int: ...


class _EnforcerView(Protocol):
    @property
    def closes_sent(self) -> int: ...

    def busy(self, account_id: str) -> bool: ...


class _SettingsView(Protocol):
    @property
    def client(self) -> ClientSettings: ...

    @property
    def streaming(self) -> StreamingSettings: ...

    @property
    def shard(self) -> Shard: ...


class ServiceView(Protocol):
    """What metrics and the HTTP endpoints read of ``riskd.service.Service`` (which satisfies
    it as it is; a protocol so this module does not import the daemon's wiring)."""

    @property
    def books(self) -> Mapping[str, AccountBook]: ...

    @property
    def poller(self) -> _PollerView: ...

    @property
    def budget(self) -> _BudgetView: ...

    @property
    def watcher(self) -> _WatcherView: ...

    @property
    def enforcer(self) -> _EnforcerView: ...

    @property
    def settings(self) -> _SettingsView: ...

    @property
    def ready(self) -> asyncio.Event: ...


def is_ready(service: ServiceView) -> bool:
    """Start-up finished (state loaded, flattens resumed) and every account polled once."""
    return service.ready.is_set() and all(b.summary_at is not None for b in service.books.values())


# -- scrape-time collectors ---------------------------------------------------------------------


class AccountCollector(Collector):
    """Per account: money, margin, positions, freshness, lockout, flatten in progress."""

    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def describe(self) -> Iterable[Metric]:
        return self._families((), None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._service.books.values(), self._service.enforcer)

    @staticmethod
    def _families(books: Iterable[AccountBook], enforcer: _EnforcerView | None) -> list[Metric]:
        a = ["account"]
        info = GaugeMetricFamily(
            "riskd_account_info",
            "Configured account (always 1): name, account currency (empty before the first "
            "poll), dry_run. Join on account to show names.",
            labels=["account", "name", "currency", "dry_run"],
        )
        balance = GaugeMetricFamily(
            "riskd_account_balance",
            "Balance of the last polled summary, account currency.",
            labels=a,
        )
        equity = GaugeMetricFamily(
            "riskd_account_equity", "Equity of the last polled summary, account currency.", labels=a
        )
        estimated = GaugeMetricFamily(
            "riskd_account_estimated_equity",
            "Tick-by-tick equity estimate, account currency: the polled equity moved by every "
            "accepted tick since (equal to it right after a poll). Absent before the first "
            "summary and positions poll.",
            labels=a,
        )
        margin = GaugeMetricFamily(
            "riskd_account_margin", "Margin in use from the last poll, account currency.", labels=a
        )
        margin_level = GaugeMetricFamily(
            "riskd_account_margin_level_ratio",
            "Margin level as a ratio (MetaTrader's percent / 100): estimated equity over "
            "polled margin. Absent while no margin is used.",
            labels=a,
        )
        positions = GaugeMetricFamily(
            "riskd_account_open_positions", "Open positions in the last positions poll.", labels=a
        )
        lots = GaugeMetricFamily(
            "riskd_account_open_lots",
            "Open volume in lots in the last positions poll (buys and sells added).",
            labels=a,
        )
        last_poll = GaugeMetricFamily(
            "riskd_account_last_poll_timestamp_seconds",
            "Unix time of the last successful poll of any kind (summary or positions).",
            labels=a,
        )
        last_summary = GaugeMetricFamily(
            "riskd_account_last_equity_poll_timestamp_seconds",
            "Unix time of the last successful account summary poll (balance, equity, margin: the "
            "loss rules' input).",
            labels=a,
        )
        last_eval = GaugeMetricFamily(
            "riskd_account_last_evaluation_timestamp_seconds",
            "Unix time of the last rule evaluation of the account (on a poll, a tick or the "
            "periodic check).",
            labels=a,
        )
        failing = GaugeMetricFamily(
            "riskd_account_poll_failing",
            "1 while polls of the account fail (since the first failure, until one succeeds).",
            labels=a,
        )
        locked = GaugeMetricFamily(
            "riskd_account_locked_out",
            "1 while a lockout rule is latched: riskd closes every position that appears.",
            labels=a,
        )
        flattening = GaugeMetricFamily(
            "riskd_flatten_in_progress",
            "1 from the moment a flatten is requested until it ends (flat, or given up); a "
            "flatten that cannot get flat stays 1 while riskd keeps trying.",
            labels=a,
        )
        estimator = CounterMetricFamily(
            "riskd_estimator_events",
            "Equity estimator valuation events: rederived (a contract size re-derived from a "
            "poll), unexplained (poll and formula disagree, no size explains it), poll_valued "
            "(unknown instrument valued per point from the poll).",
            labels=["account", "event"],
        )
        for book in books:
            account = book.info.id
            s = book.summary
            est = book.estimator
            currency = s.currency if s is not None else est.currency
            info.add_metric([account, book.info.name, currency, str(book.info.dry_run).lower()], 1)
            if s is not None:
                balance.add_metric([account], s.balance)
                equity.add_metric([account], s.equity)
                used_margin = s.margin_in_use
                margin.add_metric([account], used_margin)
                if used_margin > 0:
                    live = est.equity if est.equity is not None else s.equity
                    margin_level.add_metric([account], live / used_margin)
            if est.equity is not None:
                estimated.add_metric([account], est.equity)
            if book.positions is not None:
                positions.add_metric([account], len(book.positions))
                lots.add_metric([account], math.fsum(p.volume for p in book.positions))
            for family, moment in (
                (last_poll, book.last_poll_at),
                (last_summary, book.summary_at),
                (last_eval, book.evaluation.at if book.evaluation is not None else None),
            ):
                stamp = _ts(moment)
                if stamp is not None:
                    family.add_metric([account], stamp)
            failing.add_metric([account], 1 if book.failing_since is not None else 0)
            evaluation = book.evaluation
            locked.add_metric(
                [account], 1 if evaluation is not None and evaluation.locked_out else 0
            )
            if enforcer is not None:
                flattening.add_metric([account], 1 if enforcer.busy(account) else 0)
            for event in ESTIMATOR_COUNTERS:
                estimator.add_metric([account, event], est.counters.get(event, 0))
        return [
            info, balance, equity, estimated, margin, margin_level, positions, lots, last_poll,
            last_summary, last_eval, failing, locked, flattening, estimator,
        ]  # fmt: skip


class RuleCollector(Collector):
    """Per account and rule: the current numbers, and the last evaluation's state and latch."""

    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def describe(self) -> Iterable[Metric]:
        return self._families(())

    def collect(self) -> Iterable[Metric]:
        return self._families(self._service.books.values())

    @staticmethod
    def _families(books: Iterable[AccountBook]) -> list[Metric]:
        keyed = ["account", "rule", "kind"]
        unit = (
            " Unit by kind: account currency (daily_loss, max_loss, trailing_drawdown, "
            "profit_target), ratio (margin_level), lots or positions (exposure), seconds "
            "(stale_data)."
        )
        info = GaugeMetricFamily(
            "riskd_rule_info",
            "Configured rule of an account (always 1), with its kind, action and severity.",
            labels=["account", "rule", "kind", "action", "severity"],
        )
        value = GaugeMetricFamily(
            "riskd_rule_value",
            "What the rule measured at its last evaluation: equity for money rules, margin "
            "level, exposure, data age." + unit,
            labels=keyed,
        )
        threshold = GaugeMetricFamily(
            "riskd_rule_threshold",
            "The rule's limit at its last evaluation: the equity floor of loss rules, the "
            "target equity, the margin level minimum, the exposure cap, the allowed age." + unit,
            labels=keyed,
        )
        headroom = GaugeMetricFamily(
            "riskd_rule_headroom",
            "Distance left to the limit (value minus floor for loss rules and margin level, "
            "cap minus value for exposure, target minus equity for profit targets, allowed "
            "minus actual age); 0 or below is a breach." + unit,
            labels=keyed,
        )
        used = GaugeMetricFamily(
            "riskd_rule_used_ratio",
            "Share of the allowed loss used (0 at the reference, 1 at the floor) for loss "
            "rules; limit over level for margin_level; value over cap for exposure; progress "
            "for profit_target; age over allowed age for stale_data. 1 or more is a breach.",
            labels=keyed,
        )
        state = GaugeMetricFamily(
            "riskd_rule_state",
            "Rule state at its last evaluation, one-hot (1 for the current state): ok, warn "
            "(a warn_at level reached), pending (condition holds, for: not elapsed), breach, "
            "latched (breached earlier, held until reset or unlock), no_baseline (daily rule "
            "without a day-start balance yet). Absent before the first evaluation.",
            labels=["account", "rule", "state"],
        )
        latched = GaugeMetricFamily(
            "riskd_rule_latched",
            "1 while a close_all/lockout rule is latched (until its reset or a person's unlock).",
            labels=["account", "rule"],
        )
        next_reset = GaugeMetricFamily(
            "riskd_rule_next_reset_timestamp_seconds",
            "Unix time the rule's latch and warnings clear next (daily rules and rules with "
            "reset:); absent for rules that never reset by themselves.",
            labels=["account", "rule"],
        )
        now = datetime.now(UTC)
        for book in books:
            account = book.info.id
            for rule in book.info.rules:
                info.add_metric([account, rule.name, rule.kind, rule.action, rule.severity], 1)
            # A quiet account is re-evaluated for the scrape (tens of microseconds), so the
            # numbers follow the tick estimate; statuses are always the kept evaluation's.
            evaluation = book.current(now)
            if evaluation is None:
                continue
            for v in evaluation.verdicts:
                labels = [account, v.rule, v.kind]
                scale = 0.01 if v.kind in _PERCENT_KINDS else 1.0
                for family, number in (
                    (value, v.value),
                    (threshold, v.threshold),
                    (headroom, v.headroom),
                ):
                    if number is not None:
                        family.add_metric(labels, number * scale)
                if v.used is not None:
                    used.add_metric(labels, v.used)
                for name in RULE_STATES:
                    state.add_metric([account, v.rule, name], 1 if v.status == name else 0)
                latched.add_metric([account, v.rule], 1 if v.latched else 0)
                reset_at = _ts(v.next_reset)
                if reset_at is not None:
                    next_reset.add_metric([account, v.rule], reset_at)
        return [info, value, threshold, headroom, used, state, latched, next_reset]


class StreamCollector(Collector):
    """Per account: the tick stream's connection and counters, and the tick filter's."""

    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def describe(self) -> Iterable[Metric]:
        return self._families((), enabled=False)

    def collect(self) -> Iterable[Metric]:
        service = self._service
        return self._families(service.books.values(), service.settings.streaming.enabled)

    @staticmethod
    def _families(books: Iterable[AccountBook], enabled: bool) -> list[Metric]:
        a = ["account"]
        connected = GaugeMetricFamily(
            "riskd_stream_connected",
            "1 while the account's tick stream is connected, 0 while it connects, waits to "
            "reconnect or has stopped (rules then run on polls only). Absent when streaming "
            "is disabled.",
            labels=a,
        )
        connects = CounterMetricFamily(
            "riskd_stream_connects",
            "Successful tick stream connections (the first included).",
            labels=a,
        )
        reconnects = CounterMetricFamily(
            "riskd_stream_reconnects",
            "Tick stream reconnections after a lost connection (each refreshes from REST).",
            labels=a,
        )
        server_errors = CounterMetricFamily(
            "riskd_stream_server_errors",
            "Error messages the bridge sent on the tick stream.",
            labels=a,
        )
        received = CounterMetricFamily(
            "riskd_ticks_received", "Ticks received on the account's stream.", labels=a
        )
        accepted = CounterMetricFamily(
            "riskd_ticks_accepted",
            "Ticks the bad-tick filter accepted (they may move the equity estimate).",
            labels=a,
        )
        dropped = CounterMetricFamily(
            "riskd_ticks_dropped",
            "Ticks dropped, by reason: malformed (unparseable on the wire), non_positive, "
            "crossed, out_of_order, stale, future, jump (the bad-tick filter).",
            labels=["account", "reason"],
        )
        gaps = CounterMetricFamily(
            "riskd_tick_filter_gaps",
            "Price jumps the tick filter first held back, then accepted as a real move because "
            "they persisted.",
            labels=a,
        )
        last_tick = GaugeMetricFamily(
            "riskd_stream_last_tick_timestamp_seconds",
            "Unix time the last tick of the account arrived.",
            labels=a,
        )
        for book in books:
            account = book.info.id
            stream = book.stream
            if enabled:
                connected.add_metric([account], 1 if stream is not None and stream.connected else 0)
            malformed = 0
            if stream is not None:
                stats = stream.stats
                connects.add_metric([account], stats.connects)
                reconnects.add_metric([account], stats.reconnects)
                server_errors.add_metric([account], stats.server_errors)
                received.add_metric([account], stats.ticks)
                malformed = stats.malformed
            tick_filter = book.estimator.tick_filter
            accepted.add_metric([account], tick_filter.accepted)
            dropped.add_metric([account, "malformed"], malformed)
            for reason in DROP_REASONS:
                dropped.add_metric([account, reason], tick_filter.dropped.get(reason, 0))
            gaps.add_metric([account], tick_filter.gaps)
            stamp = _ts(book.last_tick_at)
            if stamp is not None:
                last_tick.add_metric([account], stamp)
        return [
            connected, connects, reconnects, server_errors, received, accepted, dropped, gaps,
            last_tick,
        ]  # fmt: skip


class DaemonCollector(Collector):
    """Process-wide: readiness, polling, the request budget, confirmations, closes sent."""

    def __init__(self, service: ServiceView) -> None:
        self._service = service

    def describe(self) -> Iterable[Metric]:
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        return self._families(self._service)

    @staticmethod
    def _families(service: ServiceView | None) -> list[Metric]:
        ready = GaugeMetricFamily(
            "riskd_ready",
            "1 once start-up finished and every account was polled once (what /readyz says).",
        )
        accounts = GaugeMetricFamily("riskd_accounts", "Accounts this riskd process watches.")
        shard = GaugeMetricFamily(
            "riskd_shard_info",
            "This process's shard (always 1): shard index from 0 and the shard count. Each "
            "account is watched by exactly one shard; join on instance to tell them apart.",
            labels=["shard", "shards"],
        )
        polls = CounterMetricFamily(
            "riskd_polls",
            "Account polls (summary and positions) by outcome: ok or failed.",
            labels=["outcome"],
        )
        missed = CounterMetricFamily(
            "riskd_poll_runs_missed",
            "Scheduled poll or check runs skipped because the previous run was still busy.",
        )
        job_errors = CounterMetricFamily(
            "riskd_poll_job_errors", "Scheduled jobs that crashed (a bug; see the log)."
        )
        pauses = CounterMetricFamily(
            "riskd_request_budget_pauses",
            "Times the shared request budget paused every request after a 429 from the bridge.",
        )
        not_confirmed = CounterMetricFamily(
            "riskd_breaches_not_confirmed",
            "Breaches that would flatten but a fresh summary did not confirm (or could not be "
            "read); nothing was closed.",
        )
        closes = CounterMetricFamily(
            "riskd_close_requests", "Position close requests sent by flattens and lockouts."
        )
        if service is not None:
            ready.add_metric([], 1 if is_ready(service) else 0)
            accounts.add_metric([], len(service.books))
            shard.add_metric(
                [str(service.settings.shard.index), str(service.settings.shard.count)], 1
            )
            stats = service.poller.stats
            polls.add_metric(["ok"], stats.polls_ok)
            polls.add_metric(["failed"], stats.polls_failed)
            missed.add_metric([], stats.runs_missed)
            job_errors.add_metric([], stats.job_errors)
            pauses.add_metric([], service.budget.rate_limited)
            not_confirmed.add_metric([], service.watcher.not_confirmed)
            closes.add_metric([], service.enforcer.closes_sent)
        return [ready, accounts, shard, polls, missed, job_errors, pauses, not_confirmed, closes]


# -- event callbacks ----------------------------------------------------------------------------


class ApiHooks:
    """The API client's ``ClientHooks``: requests, latency, retries and 429s by endpoint.

    Pass it as ``AsyncApi2TradeClient(..., hooks=metrics.client_hooks)``. Thread-safe (the
    sync facade may call it from its own thread) and cheap: a few dictionary look-ups.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "riskd_api_requests",
            "Bridge HTTP request attempts by endpoint and outcome: ok, http_<status>, timeout, "
            "connection_error. Retries count as attempts.",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "riskd_api_request_duration_seconds",
            "Duration of bridge HTTP request attempts, whatever their outcome.",
            ["endpoint"],
            buckets=API_LATENCY_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "riskd_api_retries",
            "Bridge requests the client retried, by endpoint and reason (http_<status>, "
            "timeout, connection_error, rate_limited, retcode_<code>).",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "riskd_api_rate_limited",
            "HTTP 429 (rate limited) answers from the bridge, by endpoint.",
            ["endpoint"],
            registry=registry,
        )

    def on_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        ep = _endpoint(endpoint)
        outcome = outcome if _OUTCOME.match(outcome) else "other"
        self.requests.labels(ep, outcome).inc()
        self.duration.labels(ep).observe(max(seconds, 0.0))
        if outcome == "http_429":
            self.rate_limited.labels(ep).inc()

    def on_retry(self, endpoint: str, reason: str) -> None:
        self.retries.labels(_endpoint(endpoint), _token(reason)).inc()


class CountingAlerter:
    """An ``Alerter`` that counts what riskd raises, then hands every alert on unchanged.

    Counts breaches and warnings per rule, flattens by outcome (once per flatten: the
    reminders a flatten that cannot get flat repeats are not new failures), lockout closes,
    and every alert by event and severity. Never raises, never blocks (the inner alerter's
    contract holds).
    """

    def __init__(self, inner: Alerter, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics
        self._failing: set[tuple[str, str]] = set()

    def send(self, alert: Alert) -> None:
        try:
            self._count(alert)
        except Exception:  # counting must never cost an alert
            log.exception("counting alert %s failed", alert.event)
        self.inner.send(alert)

    def _count(self, alert: Alert) -> None:
        m = self._metrics
        event = _token(alert.event)
        m.alerts_raised.labels(event, _token(alert.severity)).inc()
        if getattr(alert, "reminder", 0):  # a repeat of a state change already counted
            return
        account, rule = alert.account_id, alert.rule or ""
        if event in ("breach", "stale"):
            m.breaches.labels(account, rule).inc()
            self._failing.discard((account, rule))  # a new episode
        elif event == "warn":
            m.warnings.labels(account, rule).inc()
        elif event == "flatten_done":
            m.flattens.labels(account, "done").inc()
            self._failing.discard((account, rule))
        elif event == "flatten_failed" and (account, rule) not in self._failing:
            m.flattens.labels(account, "failed").inc()
            self._failing.add((account, rule))
        elif event == "lockout_close":
            m.lockout_closes.labels(account).inc()


class _WithoutCreated(Collector):
    """The registry as exposed: without the ``_created`` samples prometheus_client adds to
    counters and histograms (OpenMetrics-only; in the text format they would be extra gauge
    series), and without switching them off process-wide."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            created = family.name + "_created"
            if any(s.name == created for s in family.samples):
                family.samples = [s for s in family.samples if s.name != created]
            yield family


def riskd_version() -> str:
    """The installed riskd version."""
    try:
        return metadata.version("riskd")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        from riskd import __version__

        return __version__


class Metrics:
    """Every riskd metric, in one dedicated ``CollectorRegistry`` (nothing global).

    Create one per process before the client and the alerter, pass :attr:`client_hooks` to
    the client, wrap the alerter with :meth:`count_alerts`, set :meth:`observe_tick` as the
    watcher's ``tick_observer``, then :meth:`bind` the service so the state collectors can
    read it at scrape time. ``process_metrics`` adds the standard ``process_*`` and
    ``python_*`` families.
    """

    def __init__(
        self, *, registry: CollectorRegistry | None = None, process_metrics: bool = True
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._exposed = _WithoutCreated(r)
        self._bound: ServiceView | None = None
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)
        Info("riskd_build", "riskd version and Python version (always 1).", registry=r).info(
            {"version": riskd_version(), "python": platform.python_version()}
        )
        self.client_hooks = ApiHooks(r)
        """The ``ClientHooks`` to give the API client."""
        self.tick_latency = Histogram(
            "riskd_tick_decision_latency_seconds",
            "From a parsed tick leaving the stream to the end of its rule evaluation, for "
            "ticks that moved an equity estimate.",
            buckets=TICK_LATENCY_BUCKETS,
            registry=r,
        )
        self.estimate_error = Histogram(
            "riskd_estimate_error_ratio",
            "Relative error of the tick equity estimate when a poll re-anchors it: "
            "|estimated - polled| / polled, only when ticks had moved the estimate.",
            buckets=ESTIMATE_ERROR_BUCKETS,
            registry=r,
        )
        self.last_estimate_error = Gauge(
            "riskd_account_estimate_error_ratio",
            "Relative error of the account's tick equity estimate at the last re-anchoring "
            "poll (see riskd_estimate_error_ratio).",
            ["account"],
            registry=r,
        )
        self.breaches = Counter(
            "riskd_rule_breaches",
            "Times a rule entered breach (profit_target: target reached; stale_data: data "
            "became stale). One per episode, not per evaluation.",
            ["account", "rule"],
            registry=r,
        )
        self.warnings = Counter(
            "riskd_rule_warnings",
            "warn_at levels crossed upward (each level once per episode).",
            ["account", "rule"],
            registry=r,
        )
        self.flattens = Counter(
            "riskd_flattens",
            "Flattens by outcome: done (flat; a dry run counts as done), failed (not flat "
            "within flat_timeout or positions unreadable; once per flatten, riskd keeps "
            "trying and a later done is counted too).",
            ["account", "outcome"],
            registry=r,
        )
        self.lockout_closes = Counter(
            "riskd_lockout_closes",
            "Close rounds for positions opened while a lockout was latched.",
            ["account"],
            registry=r,
        )
        self.alerts_raised = Counter(
            "riskd_alerts_raised",
            "Alerts riskd raised (before delivery and its deduplication), by event and severity.",
            ["event", "severity"],
            registry=r,
        )
        self.alerts_sent = Counter(
            "riskd_alerts_sent",
            "Alert notifications delivered to every routed target (reminders included), by "
            "event and severity.",
            ["event", "severity"],
            registry=r,
        )
        self.alerts_failed = Counter(
            "riskd_alerts_failed",
            "Alert notifications not delivered to every routed target (after retries, or "
            "dropped), by event and reason: timeout, unreachable, queue_full, shutdown, "
            "error, other.",
            ["event", "reason"],
            registry=r,
        )
        self.loop_lag = Histogram(
            "riskd_event_loop_lag_seconds",
            "How late the event loop ran a timer (heartbeat): time the loop spent on other "
            "work, or blocked, beyond what was asked.",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.loop_stalls = Counter(
            "riskd_event_loop_stalls",
            "Times the event loop answered no heartbeat for longer than the stall threshold "
            "(each is logged with the loop's stack).",
            registry=r,
        )
        self.config_reloads = Counter(
            "riskd_config_reloads",
            "Rule reloads (SIGHUP) by outcome: ok (the new rules are in force) or error (a bad "
            "file, or a change that needs a restart; the previous rules stay in force).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("ok", "error"):
            self.config_reloads.labels(outcome)  # both start at 0, for increase()

    # -- wiring -----------------------------------------------------------------------------

    def bind(self, service: ServiceView) -> None:
        """Read ``service`` at scrape time (once; the collectors keep the reference)."""
        if self._bound is not None:
            raise RuntimeError("metrics are already bound to a service")
        self._bound = service
        for collector in (
            AccountCollector(service),
            RuleCollector(service),
            StreamCollector(service),
            DaemonCollector(service),
        ):
            self.registry.register(collector)
        # Counters of known label sets start at 0, so rate() and increase() see the first
        # event (a series born at 1 has no increase).
        for book in service.books.values():
            account = book.info.id
            for rule in book.info.rules:
                self.breaches.labels(account, rule.name)
                self.warnings.labels(account, rule.name)
            for outcome in FLATTEN_OUTCOMES:
                self.flattens.labels(account, outcome)
            self.lockout_closes.labels(account)

    def count_alerts(self, alerter: Alerter) -> CountingAlerter:
        """``alerter`` wrapped so every alert riskd raises is counted first."""
        return CountingAlerter(alerter, self)

    # -- callbacks --------------------------------------------------------------------------

    def observe_tick(self, timing: TickTiming) -> None:
        """``Watcher.tick_observer``: tick-to-decision latency of ticks that moved equity."""
        if timing.moved:
            self.tick_latency.observe(max(timing.decided - timing.received, 0.0))

    def observe_summary(self, book: AccountBook, summary: AccountSummary) -> None:
        """A summary poll is about to re-anchor ``book``: record the estimate's error.

        Call it before the book takes the summary (``Watcher.on_summary`` and the confirming
        ``fetch_summary``). Only counts when ticks moved the estimate since its last anchor:
        otherwise there was no estimate, only the previous poll.
        """
        est = book.estimator
        moved, anchored = est.estimated_at, est.anchored_at
        if est.equity is None or moved is None or anchored is None or moved <= anchored:
            return
        self.observe_estimate_error(book.info.id, est.equity, summary.equity)

    def observe_estimate_error(self, account: str, estimated: float, polled: float) -> None:
        """Record ``|estimated - polled| / polled`` for ``account`` (skipped unless polled > 0)."""
        if not (polled > 0 and math.isfinite(estimated)):
            return
        error = abs(estimated - polled) / polled
        self.estimate_error.observe(error)
        self.last_estimate_error.labels(account).set(error)

    def alert_sent(self, event: str, severity: str) -> None:
        """The delivery layer delivered one notification of ``event``."""
        self.alerts_sent.labels(_token(event), _token(severity)).inc()

    def alert_failed(self, event: str, reason: str) -> None:
        """The delivery layer gave up on one notification of ``event``. ``reason`` may be
        the layer's own sentence: it is reduced to a bounded class by
        :func:`alert_failure_reason`."""
        self.alerts_failed.labels(_token(event), alert_failure_reason(reason)).inc()

    def on_alert_sent(self, alert: Alert) -> None:
        """``AppriseAlerter(on_sent=...)``: :meth:`alert_sent` for ``alert``."""
        self.alert_sent(alert.event, alert.severity)

    def on_alert_failed(self, alert: Alert, reason: str) -> None:
        """``AppriseAlerter(on_failed=...)``: :meth:`alert_failed` for ``alert``."""
        self.alert_failed(alert.event, reason)

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric, read now. Call it on the event loop
        (the collectors read the live account books)."""
        return generate_latest(self._exposed)
