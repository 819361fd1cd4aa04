"""Scheduled polling with APScheduler 3 (AsyncIOScheduler).

Per account: a summary job and a positions job, each started at a random offset within
``start_jitter`` so accounts do not poll in lockstep, each fetch wrapped in a timeout so a hung
request cannot stall later runs (``max_instances=1`` + ``coalesce``: a run that is still busy
makes the next one count as missed, not pile up). Every request goes through the shared
``RequestBudget``. A process-wide job re-evaluates every account each second, so time-based
rules (``for:``, stale data, day resets) act even when no new data arrives.

A failing account is logged once when it starts failing and once when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from riskd.actions.alerts import Alert, Alerter, Severity
from riskd.api2trade import AsyncApi2TradeClient
from riskd.api2trade.exceptions import Api2TradeError, RateLimitError
from riskd.monitor.book import AccountBook
from riskd.monitor.budget import RequestBudget
from riskd.monitor.watcher import Watcher, utcnow

log = logging.getLogger("riskd.poller")


class _NoShutdownCancellations(logging.Filter):
    """APScheduler logs a job that its shutdown cancelled as "Error running job" with a
    traceback (it does not tell cancellation from failure). A poll cut short by a graceful stop
    is no error; a real crash is still logged, by ``Poller._on_error`` too."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


# A logger filter applies where the record is made: the executor named "default".
logging.getLogger("apscheduler.executors.default").addFilter(_NoShutdownCancellations())


@dataclass(frozen=True, slots=True)
class PollSettings:
    """Polling schedule (seconds)."""

    summary_interval: float = 5.0
    positions_interval: float = 10.0
    start_jitter: float = 2.0
    job_timeout: float = 8.0
    check_interval: float = 1.0
    refresh_every: int = 5
    """Every this many checks, quiet accounts are evaluated too (fresh numbers for display)."""
    flush_interval: float = 5.0


@dataclass(slots=True)
class PollStats:
    """Counters the daemon exports."""

    polls_ok: int = 0
    polls_failed: int = 0
    runs_missed: int = 0
    job_errors: int = 0


class Poller:
    """Owns the scheduler and the per-account poll jobs."""

    def __init__(
        self,
        client: AsyncApi2TradeClient,
        watcher: Watcher,
        budget: RequestBudget,
        alerter: Alerter,
        settings: PollSettings,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._watcher = watcher
        self._budget = budget
        self._alerter = alerter
        self._settings = settings
        self._rng = rng or random.Random()
        self._books: list[AccountBook] = []
        self._checks = 0
        self.stats = PollStats()
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self.scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)

    def start(self, books: list[AccountBook]) -> None:
        """Schedule every account's jobs and start the scheduler (on the running loop)."""
        self._books = books
        now = datetime.now(tz=utcnow().tzinfo)
        s = self._settings
        for book in books:
            for kind, interval, job in (
                ("summary", s.summary_interval, self.poll_summary),
                ("positions", s.positions_interval, self.poll_positions),
            ):
                offset = timedelta(seconds=self._rng.uniform(0, s.start_jitter))
                self.scheduler.add_job(
                    job,
                    "interval",
                    args=[book],
                    seconds=interval,
                    next_run_time=now + offset,
                    id=f"{kind}:{book.info.id}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=max(1, int(interval)),
                )
        self.scheduler.add_job(
            self.check_all,
            "interval",
            seconds=s.check_interval,
            id="check",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self.flush_all,
            "interval",
            seconds=s.flush_interval,
            id="flush",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.start()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    # -- jobs -------------------------------------------------------------------------------

    async def poll_summary(self, book: AccountBook) -> None:
        asked_at = utcnow()
        summary = await self._fetch(book, "summary", self._client.accounts.summary)
        if summary is not None:
            await self._watcher.on_summary(book, summary, asked_at)

    async def poll_positions(self, book: AccountBook) -> None:
        asked_at = utcnow()
        positions = await self._fetch(book, "positions", self._client.orders.positions)
        if positions is not None:
            await self._watcher.on_positions(book, positions, asked_at)

    async def check_all(self) -> None:
        self._checks += 1
        refresh = self._checks % self._settings.refresh_every == 0
        for book in self._books:
            await self._watcher.check_periodic(book, refresh)

    async def flush_all(self) -> None:
        for book in self._books:
            await self._watcher.flush(book)

    async def _fetch(
        self, book: AccountBook, what: str, call: Callable[[str], Awaitable[Any]]
    ) -> Any:
        try:
            async with self._budget.slot(), asyncio.timeout(self._settings.job_timeout):
                result = await call(book.info.id)
        except RateLimitError as exc:
            self._budget.pause(exc.retry_after)
            self._failed(book, what, exc)
            return None
        except (Api2TradeError, TimeoutError) as exc:
            self._failed(book, what, exc)
            return None
        self.stats.polls_ok += 1
        if book.failing_since is not None:
            down = utcnow() - book.failing_since
            log.warning(
                "account=%s polling recovered after %.0fs", book.info.id, down.total_seconds()
            )
            self._outage_alert(book, "account_up", "info", "polling recovered",
                               f"Data flows again after {down.total_seconds():.0f}s.")  # fmt: skip
            book.failing_since, book.failure = None, ""
        return result

    def _failed(self, book: AccountBook, what: str, exc: BaseException) -> None:
        self.stats.polls_failed += 1
        reason = str(exc) or type(exc).__name__
        if book.failing_since is None:
            book.failing_since, book.failure = utcnow(), reason
            log.warning(
                "account=%s %s poll failing: %s (logged once until it recovers)",
                book.info.id,
                what,
                reason,
            )
            self._outage_alert(book, "account_down", "warning", "polling failing",
                               f"{what} poll failed: {reason}")  # fmt: skip
        else:
            log.debug("account=%s %s poll still failing: %s", book.info.id, what, reason)

    def _outage_alert(
        self, book: AccountBook, event: str, severity: Severity, what: str, body: str
    ) -> None:
        """The start or end of one polling outage, keyed by when the outage began."""
        assert book.failing_since is not None
        self._alerter.send(
            Alert(
                key=f"{book.info.id}:{event}:{book.failing_since.isoformat()}",
                event=event,
                severity=severity,
                account_id=book.info.id,
                account_name=book.info.name,
                title=f"{book.info.name}: {what}",
                body=body,
            )
        )

    def _on_event(self, event: JobExecutionEvent) -> None:
        self.stats.runs_missed += 1
        log.debug("job %s missed a run", event.job_id)

    def _on_error(self, event: JobExecutionEvent) -> None:
        if isinstance(event.exception, asyncio.CancelledError):
            return  # a job cut short by shutdown, not a crash
        self.stats.job_errors += 1
        log.error("job %s crashed", event.job_id, exc_info=event.exception)
