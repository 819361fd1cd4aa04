"""Alert delivery through apprise, never in the way of the risk path.

``AppriseAlerter`` is an ``Alerter``: ``send()`` writes the alert's log line (as
``LogAlerter``), notes whether it opens or closes a reminder, and appends it to a bounded
in-memory queue, then returns. Nothing in ``send()`` awaits, touches the network or the disk,
or raises; a full queue drops an alert (a critical one first evicts the oldest non-critical
one), counts it and logs it, and never blocks.

Behind the queue, on the event loop:

- **one dispatcher** takes alerts in order, drops the ones whose ``key`` was already claimed
  (``StateStore.claim_alert``, persisted, so a restart does not replay what the previous run
  sent), and hands each to the targets its severity routes to (``routes``: severity -> apprise
  tags; a severity not listed goes to every target);
- **one lane per target** (one apprise service: a Telegram chat, a mailbox, a webhook)
  delivers in order, each attempt inside ``timeout`` (plus apprise's own pacing of that
  service), retrying ``retries`` times with exponential back-off. A dead or hanging target
  only ever delays its own lane. Apprise sends from a worker thread that cannot be
  cancelled: an attempt abandoned at its timeout may still complete, so a retry can deliver
  twice (better than never); the service's socket timeouts are clamped to ``timeout`` so an
  abandoned thread does not linger;
- **a reminder timer** re-sends the newest alert of every unresolved critical condition
  (``Alert.ongoing``) every ``repeat_interval`` until an alert of the same condition says it
  is resolved.

Each alert ends in exactly one of: delivered to every routed target (``on_sent(alert)``), not
delivered to at least one (``on_failed(alert, reason)``), a duplicate, or routed nowhere.
``stats`` counts all of them; the metrics layer plugs into the two callbacks. A ``reason`` is
a sentence, ``"<target>: <why> (<n> attempts)"`` per failed target joined by ``"; "``, where
``<why>`` holds one of these phrases (a metrics label can be derived from them):
``no answer within <t>s``, ``refused or unreachable``, ``apprise raised <Exception>``,
``target queue full``; an alert dropped before routing is ``alert queue full``,
``riskd is shutting down`` or ``internal error (<Exception>)``.

Dedupe is claim-then-send: a key is claimed before the first attempt, so two sends of one
change never both deliver; a crash between the claim and the delivery loses that one alert
(its log line is already written).

Apprise URLs carry tokens and passwords: they are never logged, put in an exception or a
repr. Targets are named by apprise's service name and their tags (``Telegram[telegram]``),
and a filter on apprise's own logger masks every secret part of the configured URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr

from riskd.actions.alerts import Alert, LogAlerter, Severity, render
from riskd.yamlfile import is_secret_name

if TYPE_CHECKING:
    import apprise

    from riskd.config import AlertsSettings

log = logging.getLogger("riskd.alerts")

T = TypeVar("T")

_MAX_BACKOFF = 60.0
_RESOLUTIONS = frozenset({"recovered", "account_up", "lockout_cleared"})
_SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
_SHUTDOWN = "riskd is shutting down"


class AlertKeyStore(Protocol):
    """Where dedupe keys persist (``riskd.store.AsyncStore`` is one)."""

    async def claim_alert(self, key: str) -> bool: ...


class AlertConfigError(Exception):
    """The alert targets cannot be used; ``problems`` holds one line each, never a URL."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class AlertTarget:
    """One apprise URL (a secret) and the tags routes select it by."""

    url: SecretStr
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AppriseSettings:
    """How alerts are delivered (seconds). See ``riskd.config.AlertsSettings``.

    ``routes`` maps a severity to the tags it goes to; a severity that is not a key goes to
    every target, an empty tuple to none. ``repeat_interval`` 0 turns reminders off.
    """

    targets: tuple[AlertTarget, ...] = ()
    config_file: str | None = None
    routes: Mapping[Severity, tuple[str, ...]] = field(default_factory=dict)
    timeout: float = 10.0
    retries: int = 3
    retry_backoff: float = 2.0
    repeat_interval: float = 1800.0
    queue_size: int = 1000
    drain_timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        """True when apprise has somewhere to deliver to."""
        return bool(self.targets) or self.config_file is not None

    @classmethod
    def from_config(cls, alerts: AlertsSettings) -> AppriseSettings:
        """The settings of a loaded ``alerts:`` section (``Config.alerts``)."""
        return cls(
            targets=tuple(AlertTarget(u.url, tuple(u.tags)) for u in alerts.urls),
            config_file=alerts.config_file,
            routes={severity: tuple(tags) for severity, tags in alerts.routes.items()},
            timeout=alerts.timeout,
            retries=alerts.retries,
            retry_backoff=alerts.retry_backoff,
            repeat_interval=alerts.repeat_interval,
            queue_size=alerts.queue_size,
            drain_timeout=alerts.drain_timeout,
        )


@dataclass(slots=True)
class AlertStats:
    """Counters of the alerter's life (the metrics layer may read them)."""

    queued: int = 0
    """Alerts accepted by ``send()`` and reminders generated."""
    sent: int = 0
    """Alerts delivered to every target they were routed to."""
    failed: int = 0
    """Alerts at least one routed target did not get (after every retry, or dropped)."""
    dropped: int = 0
    """Alerts or deliveries dropped because a queue was full (or at shutdown)."""
    duplicates: int = 0
    """Alerts not delivered because their key was claimed before (this run or an earlier)."""
    reminders: int = 0
    """Reminders generated for unresolved critical conditions."""
    retries: int = 0
    """Delivery attempts after a first failed one."""
    unrouted: int = 0
    """Alerts whose severity routes to no target (log line only)."""


@dataclass(slots=True)
class _Item:
    alert: Alert
    dedupe: bool
    at: datetime


@dataclass(slots=True)
class _Delivery:
    item: _Item
    remaining: int
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Open:
    alert: Alert
    opened: float
    due: float
    count: int = 0


class _Lane:
    """One apprise service and its own queue of deliveries."""

    def __init__(
        self, name: str, tags: frozenset[str], manager: apprise.Apprise, timeout: float
    ) -> None:
        self.name = name
        self.tags = tags
        self.manager = manager
        self.timeout = timeout
        self.queue: deque[_Delivery] = deque()
        self.ready = asyncio.Event()
        self.current: _Delivery | None = None
        self.full_drops = 0
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<target {self.name}>"


Callback = Callable[[Alert], None]
FailedCallback = Callable[[Alert, str], None]


class AppriseAlerter:
    """Delivers alerts through apprise; see the module docstring.

    ``store`` persists dedupe keys (``AsyncStore``); without one, keys are remembered for
    the life of the process only. ``on_sent(alert)`` / ``on_failed(alert, reason)`` are
    called once per alert (and per reminder) from the event loop; they may be set after
    construction and must not block. ``clock`` is monotonic seconds (reminder timing).

    Raises ``AlertConfigError`` when a URL or the apprise config file cannot be used.
    ``send`` must be called from the event loop's thread.
    """

    def __init__(
        self,
        settings: AppriseSettings,
        *,
        store: AlertKeyStore | None = None,
        on_sent: Callback | None = None,
        on_failed: FailedCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.stats = AlertStats()
        self._store = store
        self._clock = clock
        self._log = LogAlerter()
        self._lanes = _load_lanes(settings)
        self._inbox: deque[_Item] = deque()
        self._inbox_ready = asyncio.Event()
        self._inbox_drops = 0
        self._claimed: set[str] = set()
        self._open: dict[str, _Open] = {}
        self._remind_wake = asyncio.Event()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<AppriseAlerter targets={[lane.name for lane in self._lanes]}>"

    # -- what others may look at ------------------------------------------------------------

    @property
    def targets(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(name, tags) of every target, e.g. ``("Telegram[telegram]", ("telegram",))``."""
        return tuple((lane.name, tuple(sorted(lane.tags))) for lane in self._lanes)

    @property
    def pending(self) -> int:
        """Alerts accepted and not yet settled (queued, being claimed or delivered)."""
        return self._pending

    @property
    def open_conditions(self) -> tuple[str, ...]:
        """The unresolved critical conditions being reminded of."""
        return tuple(self._open)

    async def wait_idle(self) -> None:
        """Until every accepted alert is settled (delivered, failed, duplicate, dropped)."""
        await self._idle.wait()

    # -- the Alerter interface --------------------------------------------------------------

    def send(self, alert: Alert) -> None:
        """Log, queue and return; never blocks, never raises."""
        try:
            self._log.send(alert)
            self._track(alert)
            if self._closed:
                reason = _SHUTDOWN
                log.warning(
                    "alert event=%s account=%s not delivered: %s",
                    alert.event,
                    alert.account_id,
                    reason,
                )
                self.stats.dropped += 1
                self.stats.failed += 1
                self._callback_failed(alert, reason)
                return
            self._enqueue(_Item(alert, dedupe=alert.reminder == 0, at=datetime.now(UTC)))
        except Exception:
            log.exception("alert event=%s could not be queued", getattr(alert, "event", "?"))

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start delivering (on the running loop). Alerts sent before are delivered now."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._dispatch_loop(), name="alerts dispatch"))
        self._tasks.append(loop.create_task(self._remind_loop(), name="alerts reminders"))
        for lane in self._lanes:
            lane.task = loop.create_task(self._lane_loop(lane), name=f"alerts {lane.name}")
            self._tasks.append(lane.task)
        routes = {severity: self._route(severity) for severity in _SEVERITIES}
        log.info(
            "alerts: %d apprise target(s)%s; routes: %s",
            len(self._lanes),
            "" if not self._lanes else " (" + ", ".join(lane.name for lane in self._lanes) + ")",
            ", ".join(
                f"{severity} -> {', '.join(lane.name for lane in lanes) or 'log only'}"
                for severity, lanes in routes.items()
            ),
        )
        tags = {tag for lane in self._lanes for tag in lane.tags}
        for severity, wanted in self.settings.routes.items() if self._lanes else ():
            for tag in wanted:
                if tag not in tags:
                    log.warning(
                        "alerts: route %s names tag '%s', which no target has", severity, tag
                    )

    async def aclose(self, timeout: float | None = None) -> None:
        """Stop taking alerts, deliver what is queued within ``timeout`` (default
        ``drain_timeout``), then give up on the rest (counted and reported as failed)."""
        if self._closed:
            return
        self._closed = True
        self._open.clear()
        deadline = self.settings.drain_timeout if timeout is None else timeout
        if self._started and self._pending:
            try:
                async with asyncio.timeout(deadline):
                    await self._idle.wait()
            except TimeoutError:
                log.warning(
                    "alerts: %d alert(s) still undelivered after %gs at shutdown; giving up",
                    self._pending,
                    deadline,
                )
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for lane in self._lanes:
            leftovers = ([lane.current] if lane.current else []) + list(lane.queue)
            lane.current = None
            lane.queue.clear()
            for delivery in leftovers:
                self.stats.dropped += 1
                self._settle(delivery, lane, _SHUTDOWN)
        while self._inbox:
            self._drop(self._inbox.popleft(), _SHUTDOWN)

    # -- reminders --------------------------------------------------------------------------

    def _track(self, alert: Alert) -> None:
        """Open, refresh or close the reminder of the alert's condition."""
        if alert.condition is None:
            return
        interval = self.settings.repeat_interval
        if alert.ongoing and alert.severity == "critical" and interval > 0 and not self._closed:
            now = self._clock()
            known = self._open.get(alert.condition)
            self._open[alert.condition] = _Open(
                alert=replace(alert, reminder=0),
                opened=known.opened if known else now,
                due=now + interval,
                count=known.count if known else 0,
            )
            self._remind_wake.set()
        else:
            self._open.pop(alert.condition, None)

    def due_reminders(self, now: float) -> list[Alert]:
        """The reminders due at ``now`` (monotonic seconds), each condition rescheduled.

        The reminder task queues what this returns; tests call it with their own times.
        """
        out: list[Alert] = []
        for state in self._open.values():
            if state.due > now:
                continue
            state.count += 1
            state.due = now + self.settings.repeat_interval
            first = state.alert
            out.append(
                replace(
                    first,
                    key=f"{first.key}:reminder:{state.count}",
                    reminder=state.count,
                    body=f"Still unresolved after {_duration(now - state.opened)}. "
                    f"First alert: {first.body}",
                )
            )
        return out

    async def _remind_loop(self) -> None:
        while True:
            now = self._clock()
            for alert in self.due_reminders(now):
                self.stats.reminders += 1
                self._log.send(alert)
                self._enqueue(_Item(alert, dedupe=False, at=datetime.now(UTC)))
            due = [state.due for state in self._open.values()]
            self._remind_wake.clear()
            wait = None if not due else max(0.0, min(due) - self._clock())
            try:
                async with asyncio.timeout(wait):
                    await self._remind_wake.wait()
            except TimeoutError:
                pass

    # -- queueing ---------------------------------------------------------------------------

    def _enqueue(self, item: _Item) -> None:
        self.stats.queued += 1
        self._pending += 1
        self._idle.clear()
        victim = _bounded_append(self._inbox, item, self.settings.queue_size, _severity_of_item)
        if victim is None:
            if self._inbox_drops:
                log.warning(
                    "alerts: queue accepting again; %d alert(s) were dropped while it was full",
                    self._inbox_drops,
                )
                self._inbox_drops = 0
        else:
            if not self._inbox_drops:
                log.error(
                    "alerts: queue full (%d); dropping %s alerts until it drains",
                    self.settings.queue_size,
                    "non-critical" if victim is not item else "new",
                )
            self._inbox_drops += 1
            self.stats.dropped += 1
            self._drop(victim, "alert queue full")
        self._inbox_ready.set()

    def _drop(self, item: _Item, reason: str) -> None:
        """An alert that will not be delivered at all."""
        self.stats.failed += 1
        log.warning(
            "alert event=%s account=%s key=%s not delivered: %s",
            item.alert.event,
            item.alert.account_id,
            item.alert.key,
            reason,
        )
        self._callback_failed(item.alert, reason)
        self._settled()

    def _settled(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    # -- dispatch ---------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            while not self._inbox:
                self._inbox_ready.clear()
                await self._inbox_ready.wait()
            item = self._inbox.popleft()
            try:
                await self._dispatch(item)
            except asyncio.CancelledError:
                self._inbox.appendleft(item)  # aclose() reports it
                raise
            except Exception as exc:
                log.exception("alerts: dispatch of event=%s failed", item.alert.event)
                self._drop(item, f"internal error ({type(exc).__name__})")

    async def _dispatch(self, item: _Item) -> None:
        alert = item.alert
        if item.dedupe and not await self._claim(alert.key):
            self.stats.duplicates += 1
            log.info(
                "alert event=%s account=%s key=%s was sent before; not repeated",
                alert.event,
                alert.account_id,
                alert.key,
            )
            self._settled()
            return
        lanes = self._route(alert.severity)
        if not lanes:
            self.stats.unrouted += 1
            log.debug("alert event=%s severity=%s routes to no target", alert.event, alert.severity)
            self._settled()
            return
        delivery = _Delivery(item, remaining=len(lanes))
        for lane in lanes:
            victim = _bounded_append(
                lane.queue, delivery, self.settings.queue_size, _severity_of_delivery
            )
            if victim is not None:
                if not lane.full_drops:
                    log.error(
                        "alerts: %s queue full (%d): its target is not keeping up",
                        lane.name,
                        self.settings.queue_size,
                    )
                lane.full_drops += 1
                self.stats.dropped += 1
                self._settle(victim, lane, "target queue full")
            elif lane.full_drops:
                log.warning(
                    "alerts: %s queue accepting again; %d delivery(ies) dropped while full",
                    lane.name,
                    lane.full_drops,
                )
                lane.full_drops = 0
            lane.ready.set()

    async def _claim(self, key: str) -> bool:
        """True if ``key`` was never claimed before (so this alert is to be delivered)."""
        if self._store is None:
            if key in self._claimed:
                return False
            self._claimed.add(key)
            return True
        try:
            async with asyncio.timeout(self.settings.timeout):
                return await self._store.claim_alert(key)
        except Exception as exc:
            # A repeat is better than a lost alert.
            log.warning(
                "alerts: dedupe store unavailable (%s); delivering key=%s anyway",
                type(exc).__name__,
                key,
            )
            return True

    def _route(self, severity: Severity) -> list[_Lane]:
        wanted = self.settings.routes.get(severity)
        if wanted is None:
            return list(self._lanes)
        return [lane for lane in self._lanes if lane.tags & set(wanted)]

    # -- delivery ---------------------------------------------------------------------------

    async def _lane_loop(self, lane: _Lane) -> None:
        while True:
            while not lane.queue:
                lane.ready.clear()
                await lane.ready.wait()
            delivery = lane.queue.popleft()
            lane.current = delivery
            error = await self._deliver(lane, delivery.item)
            lane.current = None
            self._settle(delivery, lane, error)

    async def _deliver(self, lane: _Lane, item: _Item) -> str | None:
        """Deliver one alert to one target; None when delivered, else why not."""
        import apprise

        alert = item.alert
        title, text = render(alert)
        text += f"\n\nriskd {alert.event} at {item.at:%Y-%m-%d %H:%M:%S} UTC"
        attempts = 1 + self.settings.retries
        error = "not attempted"
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self.stats.retries += 1
                backoff = self.settings.retry_backoff * 2 ** (attempt - 2)
                await asyncio.sleep(min(backoff, _MAX_BACKOFF))
            try:
                async with asyncio.timeout(lane.timeout):
                    result = await lane.manager.async_notify(
                        body=text,
                        title=title,
                        notify_type=_notify_type(alert),
                        body_format=apprise.NotifyFormat.TEXT,
                    )
            except TimeoutError:
                error = f"no answer within {lane.timeout:g}s"
            except Exception as exc:  # apprise reports failures, but a plugin may raise
                error = f"apprise raised {type(exc).__name__}"
            else:
                if result:
                    return None
                status = getattr(result, "status", None)
                error = "refused or unreachable"
                if status is not None:
                    error += f" ({getattr(status, 'name', status)!s})".lower()
            log.warning(
                "alert event=%s to %s: attempt %d/%d failed: %s",
                alert.event,
                lane.name,
                attempt,
                attempts,
                error,
            )
        return f"{error} ({attempts} attempt{'s' if attempts > 1 else ''})"

    def _settle(self, delivery: _Delivery, lane: _Lane, error: str | None) -> None:
        if error is not None:
            delivery.failures.append(f"{lane.name}: {error}")
        delivery.remaining -= 1
        if delivery.remaining > 0:
            return
        alert = delivery.item.alert
        if delivery.failures:
            self.stats.failed += 1
            reason = "; ".join(delivery.failures)
            log.error(
                "alert event=%s account=%s NOT delivered: %s", alert.event, alert.account_id, reason
            )
            self._callback_failed(alert, reason)
        else:
            self.stats.sent += 1
            log.info("alert event=%s account=%s delivered", alert.event, alert.account_id)
            if self.on_sent is not None:
                try:
                    self.on_sent(alert)
                except Exception:
                    log.exception("alerts: on_sent callback failed")
        self._settled()

    def _callback_failed(self, alert: Alert, reason: str) -> None:
        if self.on_failed is not None:
            try:
                self.on_failed(alert, reason)
            except Exception:
                log.exception("alerts: on_failed callback failed")


# -- helpers ----------------------------------------------------------------------------------


def _severity_of_item(item: _Item) -> Severity:
    return item.alert.severity


def _severity_of_delivery(delivery: _Delivery) -> Severity:
    return delivery.item.alert.severity


def _bounded_append(queue: deque[T], item: T, limit: int, severity: Callable[[T], str]) -> T | None:
    """Append ``item``; when full, a critical item evicts the oldest non-critical one, else
    the new item is refused. Returns what did not make it in (or None)."""
    if len(queue) < limit:
        queue.append(item)
        return None
    if severity(item) == "critical":
        for queued in queue:
            if severity(queued) != "critical":
                queue.remove(queued)
                queue.append(item)
                return queued
    return item


def _notify_type(alert: Alert) -> str:
    """Apprise's message type (icons and colours): resolutions read as success."""
    import apprise

    if alert.event in _RESOLUTIONS:
        return apprise.NotifyType.SUCCESS
    return {
        "info": apprise.NotifyType.INFO,
        "warning": apprise.NotifyType.WARNING,
        "critical": apprise.NotifyType.FAILURE,
    }[alert.severity]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60}h {minutes % 60:02d}min"


def _load_lanes(settings: AppriseSettings) -> list[_Lane]:
    """One lane per apprise service of the settings; URLs are checked, never shown."""
    if not settings.enabled:
        return []
    import apprise

    problems: list[str] = []
    manager = apprise.Apprise()
    secrets: set[str] = set()
    with _apprise_quiet():
        for index, target in enumerate(settings.targets):
            url = target.url.get_secret_value()
            secrets |= _url_secrets(url)
            if not manager.add(url, tag=list(target.tags) or None):
                scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
                problems.append(f"alerts.urls[{index}]: apprise cannot use this {scheme}:// URL")
        if settings.config_file is not None:
            config = apprise.AppriseConfig()
            if not config.add(settings.config_file):
                problems.append(f"alerts.config_file: cannot read {settings.config_file}")
            else:
                before = len(list(manager.find()))
                manager.add(config)
                if len(list(manager.find())) == before:
                    problems.append(
                        f"alerts.config_file: apprise found no usable notification URL in "
                        f"{settings.config_file}"
                    )
        services = list(manager.find())
    if problems:
        raise AlertConfigError(problems)
    lanes: list[_Lane] = []
    names: set[str] = set()
    for service in services:
        secrets |= _service_secrets(service)
        _clamp_timeouts(service, settings.timeout)
        tags = frozenset(str(tag) for tag in service.tags)
        name = str(service.service_name)
        if tags:
            name += f"[{','.join(sorted(tags))}]"
        if name in names:
            name = f"{name}#{len(lanes) + 1}"
        names.add(name)
        single = apprise.Apprise()
        single.add(service)
        # Apprise spaces the sends to one service (5.5 s for e-mail, say) by sleeping before
        # the request: that pacing is not the target being slow, so it is added to the
        # timeout of an attempt.
        pacing = getattr(service, "request_rate_per_sec", 0.0)
        pacing = float(pacing) if isinstance(pacing, int | float) and pacing > 0 else 0.0
        lanes.append(_Lane(name, tags, single, settings.timeout + pacing))
    _REDACTOR.add(secrets)
    return lanes


def _clamp_timeouts(service: Any, timeout: float) -> None:
    """A send running in apprise's worker thread cannot be cancelled: keep its own socket
    timeouts within ours, so an abandoned attempt does not hold a thread for long."""
    for attr in ("socket_connect_timeout", "socket_read_timeout"):
        current = getattr(service, attr, None)
        if isinstance(current, int | float) and (current <= 0 or current > timeout):
            setattr(service, attr, timeout)


@contextlib.contextmanager
def _apprise_quiet() -> Iterator[None]:
    """Apprise logs what it cannot parse; the problem lines say it instead (no URL)."""
    logger = logging.getLogger("apprise")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


_SPLIT = re.compile(r"[/:@?&=#,;\s]+")


def _tokens(url: str) -> set[str]:
    return {t for t in _SPLIT.split(unquote(url)) if t}


def _service_secrets(service: Any) -> set[str]:
    """The parts of a service's URL that apprise masks in its private form."""
    try:
        full, private = service.url(privacy=False), service.url(privacy=True)
    except Exception:
        return set()
    return {t for t in _tokens(str(full)) - _tokens(str(private)) if len(t) >= 4}


def _url_secrets(url: str) -> set[str]:
    """The password and secret-named query values of a configured URL."""
    out: set[str] = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            out.add(parts.password)
        if parts.username and parts.password is None and "@" in parts.netloc:
            out.add(parts.username)  # ntfy://token@host, and other tokens in the user part
        for name, value in parse_qsl(parts.query):
            if value and is_secret_name(name):
                out.add(value)
    except ValueError:
        pass
    return {s for s in out | {unquote(s) for s in out} if len(s) >= 4}


class _Redactor(logging.Filter):
    """Masks known secrets in apprise's own log records (defence in depth: apprise already
    hides most of them, not all, e.g. some debug lines)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self._installed = False

    def add(self, secrets: Iterable[str]) -> None:
        merged = set(self._secrets) | set(secrets)
        self._secrets = sorted(merged, key=len, reverse=True)
        if self._secrets and not self._installed:
            logging.getLogger("apprise").addFilter(self)
            self._installed = True

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        masked = message
        for secret in self._secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        return True


_REDACTOR = _Redactor()
