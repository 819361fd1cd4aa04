"""The daemon: wires client, store, watcher, enforcer and poller, and runs until told to stop.

Start-up order matters: rule states come from the store before anything is evaluated (a
restart must not forget a baseline or a latch), interrupted flattens resume before polling
starts, and each account gets one positions and one summary poll before its schedule runs.
Shutdown lets an in-flight flatten finish and flushes deferred state.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

from riskd.actions.alerts import Alerter
from riskd.actions.enforcer import AccountRef, EnforcementSettings, Enforcer
from riskd.actions.notify import AppriseAlerter, AppriseSettings
from riskd.api2trade import AsyncApi2TradeClient, ClientSettings
from riskd.config import Config
from riskd.engine import Rule
from riskd.metrics import Metrics
from riskd.monitor.book import AccountBook, AccountInfo
from riskd.monitor.budget import RequestBudget
from riskd.monitor.estimator import EquityEstimator
from riskd.monitor.poller import Poller, PollSettings
from riskd.monitor.streams import StreamConsumer, StreamingSettings
from riskd.monitor.watcher import Clock, Watcher, WatchSettings, utcnow
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
        log.info("riskd watching %d account(s)%s", len(books), f", {dry} in dry-run" if dry else "")

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


async def run_until_signalled(service: Service) -> None:
    """Run ``service`` until SIGTERM or SIGINT, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
        log.info("stopping: finishing in-flight flattens and flushing state")
    finally:
        await service.stop()


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
            for a in config.accounts
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
    )
