"""The daemon: wires client, store, watcher, enforcer and poller, and runs until told to stop.

Start-up order matters: rule states come from the store before anything is evaluated (a
restart must not forget a baseline or a latch), interrupted flattens resume before polling
starts, and each account gets one positions and one summary poll before its schedule runs.
Shutdown lets an in-flight flatten finish and flushes deferred state.

Reload (SIGHUP, ``systemctl reload riskd``) re-reads the config and rule files and swaps each
account's rules in place; nothing else is reloaded. A reload is all or nothing:

- the new files must load without a problem (YAML, schema, rule files), else every problem is
  logged as ``file:line: ...``, a warning alert goes out and the running rules stay in force;
- only rules may differ. Accounts added or removed, an account's name, initial balance,
  dry-run or contract sizes, and any other section (bridge, credentials, polling,
  enforcement, stream, http, alerts, state) need a restart: such a reload is rejected the
  same way, naming what changed, rather than half-applied (a daemon running a mix of two
  files, say new rules with an ignored ``dry_run: true``, is worse than a clear "restart");
- rule states are kept by rule name: a rule that still exists keeps its baselines, its
  high-water mark, its warnings and its latch (a latched breach stays latched, whatever
  its new limit), a removed rule's state is dropped (and reset in the store, so a rule of
  that name added back later starts fresh, after a restart too), a new rule starts fresh.
  Removing a latched rule ends its lockout: that is a person's decision, announced by a
  critical alert. Every account is evaluated at once with its new rules.

``riskd_config_reloads_total{outcome="ok|error"}`` counts reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from riskd.actions.alerts import Alert, Alerter, rule_condition
from riskd.actions.enforcer import AccountRef, EnforcementSettings, Enforcer
from riskd.actions.notify import AppriseAlerter, AppriseSettings
from riskd.api2trade import AsyncApi2TradeClient, ClientSettings
from riskd.config import Config, ConfigError
from riskd.engine import INITIAL_STATE, Rule, Status
from riskd.metrics import Metrics
from riskd.monitor.book import AccountBook, AccountInfo
from riskd.monitor.budget import RequestBudget
from riskd.monitor.estimator import EquityEstimator
from riskd.monitor.poller import Poller, PollSettings
from riskd.monitor.streams import StreamConsumer, StreamingSettings
from riskd.monitor.watcher import Clock, Watcher, WatchSettings, utcnow
from riskd.sdnotify import Notifier
from riskd.shard import Shard, owner
from riskd.store import AsyncStore, StateStore
from riskd.web import WebServer, WebSettings

log = logging.getLogger("riskd")


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One account to watch."""

    id: str
    name: str
    initial_balance: float
    rules: tuple[Rule, ...]
    dry_run: bool = False
    contract_sizes: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Everything the daemon needs, already validated (see ``riskd.config``)."""

    client: ClientSettings
    state_path: str
    accounts: tuple[AccountSpec, ...]
    poll: PollSettings = field(default_factory=PollSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    enforcement: EnforcementSettings = field(default_factory=EnforcementSettings)
    max_concurrent_requests: int = 16
    streaming: StreamingSettings = field(default_factory=StreamingSettings)
    alerts: AppriseSettings = field(default_factory=AppriseSettings)
    web: WebSettings | None = None
    """The /metrics /livez /readyz /status server; None runs without one (tests, bench)."""
    shard: Shard = field(default_factory=Shard)
    """This replica's shard; ``accounts`` holds only the accounts it owns."""


# ServiceSettings field -> the config section a person edits for it (reload messages).
_SECTIONS = {
    "client": "bridge (or its API2TRADE_* variables and credentials)",
    "state_path": "state.path",
    "shard": "RISKD_SHARD_INDEX / RISKD_SHARD_COUNT (the pod name)",
    "poll": "polling",
    "watch": "polling.job_timeout or enforcement.confirm_breach",
    "enforcement": "enforcement",
    "max_concurrent_requests": "polling.max_concurrent_requests",
    "streaming": "stream",
    "alerts": "alerts (or RISKD_ALERTS__URLS)",
    "web": "http",
}
_ACCOUNT_FIELDS = ("name", "initial_balance", "dry_run", "contract_sizes")

Loader = Callable[[], ServiceSettings]
"""Loads the settings again from the same config file and environment (``riskd run``'s
reload); raises ``ConfigError`` with every problem."""


@dataclass(frozen=True, slots=True)
class RuleChanges:
    """What a reload changed in one account's rules (rule names)."""

    account_id: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unlatched: tuple[str, ...] = ()
    """Removed rules that were latched: their lockout ended with them."""

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if names
        ]
        return "; ".join(parts) or "unchanged"


class ReloadRejected(Exception):
    """The new settings differ in more than rules; ``problems`` says what, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def restart_needed(old: ServiceSettings, new: ServiceSettings) -> list[str]:
    """What differs between ``old`` and ``new`` besides the accounts' rules (one line each);
    empty when only rules changed. Never shows a value (credentials are settings too)."""
    problems = [
        f"{_SECTIONS.get(f.name, f.name)}: changed"
        for f in fields(ServiceSettings)
        if f.name != "accounts" and getattr(old, f.name) != getattr(new, f.name)
    ]
    before = {a.id.lower(): a for a in old.accounts}
    after = {a.id.lower(): a for a in new.accounts}
    problems += [f"accounts: {a.id} added" for key, a in after.items() if key not in before]
    problems += [f"accounts: {a.id} removed" for key, a in before.items() if key not in after]
    for key, a in after.items():
        b = before.get(key)
        if b is not None:
            problems += [
                f"accounts: {a.id}: {name}: changed"
                for name in _ACCOUNT_FIELDS
                if getattr(a, name) != getattr(b, name)
            ]
    return problems


def _same_rule(a: Rule, b: Rule) -> bool:
    # ``source`` is file:line: a rule that only moved in its file is the same rule.
    return replace(a, source="") == replace(b, source="")


class Service:
    """One riskd process watching many accounts."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        alerter: Alerter | None = None,
        client: AsyncApi2TradeClient | None = None,
        clock: Clock = utcnow,
        metrics: Metrics | None = None,
        extra_secrets: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.store = AsyncStore(StateStore(settings.state_path))
        # Without a given alerter, alerts go through apprise (log lines when no target is
        # configured), deduplicated in the store so a restart does not replay them.
        self.notifier = (
            None
            if alerter is not None
            else AppriseAlerter(
                settings.alerts,
                store=self.store,
                on_sent=self.metrics.on_alert_sent,
                on_failed=self.metrics.on_alert_failed,
            )
        )
        inner: Alerter = alerter if alerter is not None else self.notifier  # type: ignore[assignment]
        self.alerter: Alerter = self.metrics.count_alerts(inner)
        self.client = client or AsyncApi2TradeClient(
            settings=settings.client, hooks=self.metrics.client_hooks
        )
        self.budget = RequestBudget(settings.max_concurrent_requests)
        self.books = {
            a.id: AccountBook(
                AccountInfo(a.id, a.name, a.initial_balance, a.rules, a.dry_run),
                estimator=EquityEstimator(contract_sizes=a.contract_sizes),
            )
            for a in settings.accounts
        }
        self.enforcer = Enforcer(
            self.client, self.store, self.alerter, settings.enforcement, self._account_ref
        )
        self.watcher = Watcher(
            self.client,
            self.store,
            self.enforcer,
            self.alerter,
            self.budget,
            settings.watch,
            clock,
        )
        self.poller = Poller(self.client, self.watcher, self.budget, self.alerter, settings.poll)
        self.streams = StreamConsumer(self.client, self.watcher, self.poller, settings.streaming)
        self.enforcer.after_flatten = self._refresh
        self._refreshes: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()
        self.reload_failure: str | None = None
        """Why the last reload was not applied (one line for ``systemctl status``), or None."""
        self._reload_lock = asyncio.Lock()
        self.watcher.tick_observer = self.metrics.observe_tick
        self.watcher.summary_observer = self.metrics.observe_summary
        self.metrics.bind(self)  # last: it reads books, poller, budget, watcher, enforcer
        self.web = (
            WebServer(self, self.metrics, settings.web, extra_secrets=extra_secrets)
            if settings.web is not None
            else None
        )

    def _account_ref(self, account_id: str) -> AccountRef | None:
        book = self.books.get(account_id)
        if book is None:
            return None
        return AccountRef(book.info.id, book.info.name, book.info.dry_run)

    def _refresh(self, account_id: str) -> None:
        """Re-read an account now (after a flatten the estimate must drop the closed
        positions instead of waiting for the next scheduled poll)."""
        book = self.books.get(account_id)
        if book is None:
            return

        async def refresh() -> None:
            await self.poller.poll_positions(book)
            await self.poller.poll_summary(book)

        task = asyncio.get_running_loop().create_task(refresh(), name=f"refresh {account_id}")
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def start(self) -> None:
        """Load state, resume interrupted flattens, poll every account once, schedule."""
        if self.web is not None:
            await self.web.start()  # first: probes must answer during a long start-up
        if self.notifier is not None:
            await self.notifier.start()  # before resume(), which may alert
        started = utcnow()
        for book in self.books.values():
            book.states.update(await self.store.load_rule_states(book.info.id))
            # A stale-tick rule measures from when riskd starts expecting ticks, not from
            # "never": the first evaluation comes before the stream is even connected.
            book.ticks_expected = self.settings.streaming.enabled
            book.last_tick_at = started
        resumed = await self.enforcer.resume()
        if resumed:
            log.warning("resumed %d flatten(s) left unfinished by the previous run", resumed)
        await self._report_left_behind()
        books = list(self.books.values())

        async def first_poll(book: AccountBook) -> None:
            await self.poller.poll_positions(book)
            await self.poller.poll_summary(book)

        await asyncio.gather(*(first_poll(b) for b in books))
        self.poller.start(books)
        if self.settings.streaming.enabled:
            self.streams.start(books)
        self.ready.set()
        dry = sum(1 for b in books if b.info.dry_run)
        shard = self.settings.shard
        log.info(
            "riskd watching %d account(s)%s%s",
            len(books),
            f", {dry} in dry-run" if dry else "",
            f" ({shard.describe()})" if shard.count > 1 else "",
        )

    async def stop(self) -> None:
        """Stop polling, let flattens finish, flush state, close connections."""
        self.poller.shutdown()
        await self.streams.stop()
        await asyncio.gather(*self._refreshes, return_exceptions=True)
        await self.watcher.drain()
        await self.enforcer.aclose()
        for book in self.books.values():
            await self.watcher.flush(book)
        if self.notifier is not None:
            await self.notifier.aclose()
        await self.store.close()
        await self.client.aclose()
        if self.web is not None:
            await self.web.stop()

    # -- status -----------------------------------------------------------------------------

    def status_line(self) -> str:
        """One line for ``systemctl status``: accounts watched, in breach, flattening, not
        polling, and a reload that was not applied."""
        books = self.books.values()
        breached = sum(1 for b in books if _in_breach(b))
        line = f"watching {_plural(len(books), 'account')}, {breached or 'none'} in breach"
        if self.settings.shard.count > 1:
            line = f"{self.settings.shard.describe()}: {line}"
        flattening = sum(1 for b in books if self.enforcer.busy(b.info.id))
        if flattening:
            line += f", {flattening} flattening"
        failing = sum(1 for b in books if b.failing_since is not None)
        if failing:
            line += f", {failing} not polling"
        if self.reload_failure is not None:
            line += f"; {self.reload_failure}"
        return line

    # -- reload -----------------------------------------------------------------------------

    async def reload(self, load: Loader) -> bool:
        """Load the config again (``load`` runs in a thread: it reads files) and put the new
        rules in force; True when applied. On any problem nothing changes: the problems are
        logged, a warning alert is sent and ``riskd_config_reloads_total{outcome="error"}``
        counts it (see the module docstring)."""
        async with self._reload_lock:  # two SIGHUPs in a row: one reload after the other
            attempt = utcnow()
            try:
                settings = await asyncio.to_thread(load)
            except ConfigError as exc:
                self._reload_failed(attempt, "the new files have problems", exc.problems)
                return False
            except Exception as exc:  # a bug in loading must not take the daemon down
                log.error("config reload: loading failed", exc_info=exc)
                self._reload_failed(attempt, "loading failed", [type(exc).__name__])
                return False
            try:
                changes = await self.replace_rules(settings)
            except ReloadRejected as exc:
                self._reload_failed(attempt, "settings other than rules changed", exc.problems)
                return False
            self.reload_failure = None
            self.metrics.config_reloads.labels("ok").inc()
            changed = [c for c in changes if c]
            if not changed:
                log.info("config reloaded: no rule changed")
            for c in changed:
                log.warning("config reloaded: account=%s rules %s", c.account_id, c.describe())
            return True

    async def replace_rules(self, settings: ServiceSettings) -> list[RuleChanges]:
        """Put ``settings``' rules in force on every account (see the module docstring).

        Raises ``ReloadRejected``, changing nothing, when anything but rules differs from the
        running settings. Each account is swapped under its lock, so no evaluation sees half
        of it, then evaluated with its new rules at once.
        """
        problems = restart_needed(self.settings, settings)
        if problems:
            raise ReloadRejected(problems)
        specs = {a.id.lower(): a for a in settings.accounts}
        changes: list[RuleChanges] = []
        for book in self.books.values():
            spec = specs[book.info.id.lower()]
            async with book.lock:
                change = await self._swap_rules(book, spec.rules)
            changes.append(change)
            if change:
                await self.watcher.check(book)
        self.settings = replace(
            self.settings,
            accounts=tuple(
                replace(a, rules=specs[a.id.lower()].rules) for a in self.settings.accounts
            ),
        )
        return changes

    async def _swap_rules(self, book: AccountBook, rules: tuple[Rule, ...]) -> RuleChanges:
        old = {r.name: r for r in book.info.rules}
        new = {r.name: r for r in rules}
        removed = tuple(n for n in old if n not in new)
        change = RuleChanges(
            book.info.id,
            added=tuple(n for n in new if n not in old),
            removed=removed,
            changed=tuple(n for n in new if n in old and not _same_rule(old[n], new[n])),
            unlatched=tuple(n for n in removed if book.states.get(n, INITIAL_STATE).latched),
        )
        book.info = replace(book.info, rules=rules)
        if not change:
            return change  # same rules (a file reformatted): keep the new sources, nothing else
        for name in removed:
            book.states.pop(name, None)
            book.dirty.discard(name)
        if removed:
            # Reset in the store too: a rule of that name added back later (or found there
            # after a restart) must start fresh, as it does in this run.
            await self.store.save_rule_states(book.info.id, dict.fromkeys(removed, INITIAL_STATE))
        for name in change.added:
            # As at start-up: counters of a known rule start at 0 (see Metrics.bind).
            self.metrics.breaches.labels(book.info.id, name)
            self.metrics.warnings.labels(book.info.id, name)
        for name in change.unlatched:
            self.alerter.send(
                Alert(
                    key=f"{book.info.id}:{name}:removed_while_latched:{utcnow().isoformat()}",
                    event="rule_removed",
                    severity="critical",
                    account_id=book.info.id,
                    account_name=book.info.name,
                    rule=name,
                    title=f"{book.info.name}: latched rule {name} removed by a reload",
                    body="The rule was latched (breached and flattened, or locking the account "
                    "out). A config reload removed it, so it no longer holds the account: "
                    "trading is allowed unless another rule is latched.",
                    condition=rule_condition(book.info.id, name),
                )
            )
        return change

    async def _report_left_behind(self) -> None:
        """Say so when this store holds a latch or an unfinished flatten of an account this
        process no longer watches: after a resize it moved to another shard, whose own store
        does not have them (each replica keeps its own), or it left the config. The account
        then needs a person's look: its new owner starts without that latch."""
        watched = {account.lower() for account in self.books}
        shard = self.settings.shard
        for account in sorted(await self.store.accounts()):
            if account.lower() in watched:
                continue
            states = await self.store.load_rule_states(account)
            latched = sorted(name for name, state in states.items() if state.latched)
            unfinished = [r for r in await self.store.flattens(account) if r.status == "started"]
            if not latched and not unfinished:
                continue
            where = (
                f"no longer watched by this replica (shard {shard.index} of {shard.count}): "
                f"a resize gave it to shard {owner(account, shard.count)}, or it left the config"
                if shard.count > 1
                else "no longer in the config"
            )
            held = ", ".join(
                [f"latched rule {name}" for name in latched]
                + ([f"{len(unfinished)} unfinished flatten(s)"] if unfinished else [])
            )
            log.error(
                "account=%s is %s, but this replica's state holds its %s: the account's new "
                "owner does not know them; check the account",
                account,
                where,
                held,
            )
            self.alerter.send(
                Alert(
                    key=f"riskd:left_behind:{account}:{shard.index}/{shard.count}:{held}",
                    event="state_left_behind",
                    severity="critical",
                    account_id=account,
                    account_name=account,
                    title=f"riskd: account {account} moved away with {held}",
                    body=f"The account is {where}. This replica's state still holds its "
                    f"{held}, which its new owner does not have (each replica keeps its own "
                    "state). Check the account's positions and lock it by hand if it must stay "
                    "locked.",
                )
            )

    def _reload_failed(self, attempt: datetime, why: str, problems: Sequence[str]) -> None:
        self.metrics.config_reloads.labels("error").inc()
        self.reload_failure = f"reload at {attempt:%H:%M:%S} UTC not applied ({why})"
        log.error(
            "config reload not applied, the running rules stay in force: %s (%s)",
            why,
            _plural(len(problems), "problem"),
        )
        for problem in problems:
            log.error("config reload: %s", problem)
        shown = list(problems[:_ALERT_PROBLEMS])
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more (see the log)")
        # One alert per attempt: keyed by the attempt and what was wrong, never replayed.
        digest = hashlib.sha256("\n".join(problems).encode()).hexdigest()[:12]
        self.alerter.send(
            Alert(
                key=f"riskd:config_reload_failed:{attempt.isoformat()}:{digest}",
                event="config_reload_failed",
                severity="warning",
                account_id="",
                account_name="riskd",
                title="riskd: config reload not applied, the previous rules stay in force",
                body=f"A reload (SIGHUP) was rejected: {why}. Nothing changed. "
                "Fix the files and reload again, or restart riskd for settings other than "
                "rules.\n\n" + "\n".join(shown),
            )
        )


_ALERT_PROBLEMS = 10  # problem lines in a reload alert; the log has every one


def _in_breach(book: AccountBook) -> bool:
    """A loss or guard rule breached or latched (a profit target reached is no breach)."""
    evaluation = book.evaluation
    return evaluation is not None and any(
        v.status in (Status.BREACH, Status.LATCHED) and v.kind != "profit_target"
        for v in evaluation.verdicts
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


async def run_until_signalled(
    service: Service, *, reload: Loader | None = None, notifier: Notifier | None = None
) -> None:
    """Run ``service`` until SIGTERM or SIGINT, then stop it gracefully.

    With ``reload``, SIGHUP reloads the rules (``Service.reload``). With ``notifier`` (under
    systemd), systemd hears ``READY=1`` once start-up is done, a ``STATUS=`` line whenever it
    changes, ``WATCHDOG=1`` from a task on this event loop (a hung loop stops pinging, and
    systemd restarts riskd), ``RELOADING=1`` ... ``READY=1`` around a reload and
    ``STOPPING=1`` when the shutdown starts.
    """
    notifier = notifier or Notifier({})
    stop = asyncio.Event()
    hup = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        # Installed before start(): a SIGHUP during start-up is served once it is done,
        # instead of killing riskd (SIGHUP's default action).
        loop.add_signal_handler(signal.SIGHUP, hup.set)
    background: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> None:
        background.append(loop.create_task(coro, name=name))

    watchdog = None
    if notifier.watchdog_interval is not None:
        watchdog = loop.create_task(_watchdog(notifier, notifier.watchdog_interval),
                                    name="systemd watchdog")  # fmt: skip
    notifier.status(f"starting: polling {_plural(len(service.books), 'account')} once")
    try:
        await service.start()
        if not stop.is_set():
            notifier.ready(service.status_line())
            spawn(_status_updates(service, notifier), "systemd status")
            if reload is not None:
                spawn(_reloads(service, reload, hup, notifier), "reloads")
        await stop.wait()
        log.info("stopping: finishing in-flight flattens and flushing state")
    finally:
        notifier.stopping("stopping: finishing in-flight flattens, flushing state")
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        try:
            await service.stop()
        finally:
            # Pings go on during a long stop (a flatten finishing) and end with it.
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            notifier.close()


STATUS_PERIOD = 1.0
"""Seconds between two looks at the status line (sent to systemd only when it changed)."""


async def _watchdog(notifier: Notifier, interval: float) -> None:
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)


async def _status_updates(service: Service, notifier: Notifier) -> None:
    sent = service.status_line()
    while True:
        await asyncio.sleep(STATUS_PERIOD)
        try:
            line = service.status_line()
        except Exception:  # a status line is never worth the watchdog's task set
            log.exception("status line failed")
            continue
        if line != sent:
            notifier.status(line)
            sent = line


async def _reloads(service: Service, load: Loader, hup: asyncio.Event, notifier: Notifier) -> None:
    while True:
        await hup.wait()
        hup.clear()
        log.info("SIGHUP: reloading the rules")
        notifier.reloading("reloading the rules")
        # Shielded: a shutdown arriving mid-reload waits for the swap to end (stop() takes
        # the same locks) rather than cutting an account's rules in half.
        task = asyncio.ensure_future(service.reload(load))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            raise  # no READY=1: STOPPING=1 was sent, systemd is stopping the unit
        except Exception:  # a bug; the next SIGHUP must still be served
            log.exception("config reload crashed")
        # Ends the reload in systemd's eyes, whatever its outcome (the old rules are in force
        # after a failed one).
        notifier.ready(service.status_line())


def settings_from_config(config: Config) -> ServiceSettings:
    """The daemon's settings from a loaded config file (see ``riskd.config``)."""
    polling, enforcement = config.polling, config.enforcement
    return ServiceSettings(
        client=config.client_settings(),
        state_path=str(config.state_path),
        accounts=tuple(
            AccountSpec(
                a.id,
                a.name,
                a.initial_balance,
                tuple(a.rules),
                a.effective_dry_run,
                dict(a.contract_sizes),
            )
            for a in config.owned_accounts
        ),
        poll=PollSettings(
            summary_interval=polling.summary_interval,
            positions_interval=polling.positions_interval,
            start_jitter=polling.start_jitter,
            job_timeout=polling.job_timeout,
        ),
        watch=WatchSettings(
            confirm_breach=enforcement.confirm_breach, request_timeout=polling.job_timeout
        ),
        enforcement=EnforcementSettings(
            close_concurrency=enforcement.close_concurrency,
            flat_timeout=enforcement.flat_timeout,
            market_closed_retry=enforcement.market_closed_retry,
            reminder_interval=enforcement.reminder_interval,
        ),
        max_concurrent_requests=polling.max_concurrent_requests,
        streaming=StreamingSettings(enabled=config.stream.enabled),
        alerts=AppriseSettings.from_config(config.alerts),
        web=WebSettings.parse(config.http.listen) if config.http.enabled else None,
        shard=config.shard,
    )
