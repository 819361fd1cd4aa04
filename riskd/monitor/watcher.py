"""Evaluate and act: new data in, rule states kept, alerts sent, flattens started.

For each account, under its lock: start new days (day-start baselines), evaluate the rules
(pure), confirm a breach that would flatten on a fresh account summary, persist what changed,
then alert on changes and hand flattens to the enforcer. The evaluation is the engine's; this
module only gathers its inputs and carries out its verdicts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from riskd.actions.alerts import Alert, Alerter, rule_condition, verdict_alerts
from riskd.actions.enforcer import AccountRef, Enforcer
from riskd.api2trade import AccountSummary, AsyncApi2TradeClient, Position, Quote
from riskd.api2trade.exceptions import Api2TradeError, RateLimitError
from riskd.engine import (
    Evaluation,
    Newly,
    RuleState,
    Status,
    derive_day_start_balance,
    due_roll,
    evaluate,
    roll_period,
)
from riskd.engine.band import quiet_band
from riskd.monitor.book import AccountBook
from riskd.monitor.budget import RequestBudget
from riskd.store import AsyncStore

log = logging.getLogger("riskd.monitor")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class TickTiming(NamedTuple):
    """One tick through the watcher: ``received`` when the parsed tick left the stream,
    ``decided`` when its evaluation finished (``time.perf_counter`` seconds). A named tuple:
    one is made per tick, and it is three times cheaper to make than a frozen dataclass."""

    account_id: str
    symbol: str
    received: float
    decided: float
    moved: bool


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How the watcher gathers inputs (seconds)."""

    confirm_breach: bool = True
    request_timeout: float = 8.0
    capture_window: float = 60.0  # a summary this soon after a reset gives the day-start equity


class Watcher:
    """The evaluate-act loop shared by every account of the process."""

    def __init__(
        self,
        client: AsyncApi2TradeClient,
        store: AsyncStore,
        enforcer: Enforcer,
        alerter: Alerter,
        budget: RequestBudget,
        settings: WatchSettings,
        clock: Clock = utcnow,
    ) -> None:
        self._client = client
        self._store = store
        self._enforcer = enforcer
        self._alerter = alerter
        self._budget = budget
        self._settings = settings
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()
        self.not_confirmed = 0
        self.tick_observer: Callable[[TickTiming], None] | None = None
        self.summary_observer: Callable[[AccountBook, AccountSummary], None] | None = None
        """Called with each fresh summary before it re-anchors the book (estimate error)."""
        """Called after every tick's evaluation (the benchmark measures latency with it)."""

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for spawned confirmations and writes (shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- inputs -----------------------------------------------------------------------------

    async def on_summary(
        self, book: AccountBook, summary: AccountSummary, asked_at: datetime | None = None
    ) -> None:
        """A polled summary; ``asked_at`` is when the request left (the data is no older)."""
        if self.summary_observer is not None:
            self.summary_observer(book, summary)
        book.summary, book.summary_at = summary, asked_at or self._clock()
        book.anchor()
        await self._check_after_poll(book)

    async def on_positions(
        self, book: AccountBook, positions: list[Position], asked_at: datetime | None = None
    ) -> None:
        """Polled positions. Stamped with the request's start, not its answer: a list asked
        for before a flatten ended must not look newer than the flatten."""
        book.positions, book.positions_at = positions, asked_at or self._clock()
        book.anchor()
        await self._follow_positions(book)
        await self._check_after_poll(book)

    async def _check_after_poll(self, book: AccountBook) -> None:
        """The full check, unless the poll left the account inside its quiet band: then only
        the displayed numbers are refreshed (no lock, no day roll, nothing to keep or act on)."""
        if not (book.requiet(self._clock()) and self._refresh_numbers(book)):
            await self.check(book)

    def _refresh_numbers(self, book: AccountBook) -> bool:
        """Keep a quiet account's evaluation re-done on the current numbers (for ``/metrics``
        and ``/status``). False (the caller then runs the full check) if the account is not
        quiet after all, or if a check holds it."""
        if book.lock.locked():
            return False
        fresh = book.reevaluate(self._clock())
        if fresh is None:
            return False
        book.evaluation = fresh
        return True

    def on_tick(self, book: AccountBook, tick: Quote, received: float) -> None:
        """One tick from the account's stream: estimate, evaluate, hand over. Never awaits.

        Runs inside the stream's receive loop, so anything that needs I/O (a confirmation
        summary, a store write, a flatten) is started as a task, not waited for. While an
        evaluation with I/O holds the account's lock the estimate still moves but the rules
        wait for it (it acts on fresher data than this tick anyway).
        """
        now = self._clock()
        book.last_tick_at = now
        moved = book.estimator.on_tick(tick.symbol, tick.bid, tick.ask, tick.time, now)
        if moved is not None and not book.lock.locked() and not book.quiet(moved, now):
            snapshot = book.snapshot(now)
            if snapshot is not None:
                rules = book.info.rules
                evaluation = evaluate(rules, snapshot, book.states)
                if evaluation.to_flatten:
                    book.keep_band(None)
                    if not book.confirming:
                        book.confirming = True
                        self._spawn(self._confirm_tick_breach(book), f"confirm {book.info.id}")
                else:
                    urgent = self._keep(book, evaluation)
                    if urgent:
                        self._spawn(self._save(book, urgent), f"save {book.info.id}")
                    # Kept before acting: the band belongs to the inputs it was computed from.
                    book.keep_band(quiet_band(rules, snapshot, evaluation))
                    self._act(book, evaluation)
        if self.tick_observer is not None:
            self.tick_observer(
                TickTiming(book.info.id, tick.symbol, received, time.perf_counter(),
                           moved is not None)
            )  # fmt: skip

    async def _confirm_tick_breach(self, book: AccountBook) -> None:
        """A breach seen on the estimate: the full check, which confirms on a fresh summary
        at once (not at the next poll) before anything irreversible."""
        try:
            await self.check(book)
        finally:
            book.confirming = False

    async def _follow_positions(self, book: AccountBook) -> None:
        """Keep the stream subscribed to what the estimate needs as positions come and go."""
        stream = book.stream
        if stream is None:
            return
        needed = book.estimator.symbols_needed()
        current = set(stream.symbols)
        if needed - current:
            await stream.subscribe(sorted(needed - current))
        if current - needed:
            stream.unsubscribe(sorted(current - needed))

    async def fetch_summary(self, book: AccountBook) -> AccountSummary | None:
        """A fresh summary now (through the shared budget), or None if it failed."""
        try:
            async with self._budget.slot(), asyncio.timeout(self._settings.request_timeout):
                summary = await self._client.accounts.summary(book.info.id)
        except RateLimitError as exc:
            self._budget.pause(exc.retry_after)
            return None
        except (Api2TradeError, TimeoutError) as exc:
            log.warning("account=%s fresh summary failed: %s", book.info.id, exc or "timeout")
            return None
        if self.summary_observer is not None:
            self.summary_observer(book, summary)
        book.summary, book.summary_at = summary, self._clock()
        return summary

    # -- evaluate and act -------------------------------------------------------------------

    async def check_periodic(self, book: AccountBook, refresh: bool) -> None:
        """The once-a-second check that lets time-based rules act without new data.

        An account inside its quiet band (``riskd.engine.band``) cannot change with time alone
        before the band's ``until`` (the next day boundary, the next stale-data level), so it
        is skipped; with ``refresh`` its numbers are re-evaluated for ``/metrics`` and
        ``/status`` (headroom, used)."""
        equity = book.estimator.equity
        quiet = equity is not None and book.quiet(equity, self._clock())
        if quiet and (not refresh or self._refresh_numbers(book)):
            return
        await self.check(book)

    async def check(self, book: AccountBook) -> Evaluation | None:
        """Roll days, evaluate, confirm, persist and act for one account."""
        async with book.lock:
            await self._roll_days(book)
            snapshot = book.snapshot(self._clock())
            if snapshot is None:
                return None
            rules = book.info.rules
            evaluation = evaluate(rules, snapshot, book.states)
            flatten = {v.rule for v in evaluation.to_flatten}
            if (
                flatten
                and self._settings.confirm_breach
                and any(r.confirm for r in rules if r.name in flatten)
            ):
                evaluation_or_none = await self._confirm(book, evaluation)
                if evaluation_or_none is None:
                    return None
                evaluation = evaluation_or_none
            await self._commit(book, evaluation)
            self._act(book, evaluation)
            if not book.rearmed:
                book.rearmed = True
                self._rearm(book, evaluation)
            return evaluation

    async def _confirm(self, book: AccountBook, first: Evaluation) -> Evaluation | None:
        """Re-evaluate on a fresh summary before anything irreversible.

        The states of the unconfirmed evaluation are dropped: if the fresh numbers do not
        breach, nothing latched; if they do, the fresh evaluation latches (and is the one kept).
        """
        rules = ", ".join(v.rule for v in first.to_flatten)
        fresh = await self.fetch_summary(book)
        if fresh is not None:
            book.anchor()  # the fresh poll replaces the estimate: confirm on broker numbers
        snapshot = book.snapshot(self._clock()) if fresh is not None else None
        if snapshot is None:
            self.not_confirmed += 1
            log.warning(
                "account=%s breach of %s not confirmed: fresh summary unavailable; "
                "next poll decides",
                book.info.id,
                rules,
            )
            return None
        second = evaluate(book.info.rules, snapshot, book.states)
        if not second.to_flatten:
            self.not_confirmed += 1
            log.warning(
                "account=%s breach of %s not confirmed by a fresh summary (equity %.2f)",
                book.info.id,
                rules,
                fresh.equity if fresh else 0.0,
            )
        return second

    async def _commit(self, book: AccountBook, evaluation: Evaluation) -> None:
        """Keep the new states and write at once what matters after a crash."""
        urgent = self._keep(book, evaluation)
        if urgent:
            await self._save(book, urgent)

    def _keep(self, book: AccountBook, evaluation: Evaluation) -> dict[str, RuleState]:
        """Adopt an evaluation's states; return those to write now (latches, days, warnings).
        A moving high-water mark alone rides with the next periodic flush."""
        urgent: dict[str, RuleState] = {}
        for name in evaluation.changed:
            new = evaluation.states[name]
            old = book.states.get(name)
            if old is None or _differs_beyond_mark(old, new):
                urgent[name] = new
            else:
                book.dirty.add(name)
        book.states.update(evaluation.states)
        book.evaluation = evaluation
        return urgent

    async def _save(self, book: AccountBook, states: dict[str, RuleState]) -> None:
        await self._store.save_rule_states(book.info.id, states)
        book.dirty.difference_update(states)

    async def flush(self, book: AccountBook) -> None:
        """Write deferred state changes (called periodically and at shutdown)."""
        if book.dirty:
            names, book.dirty = book.dirty, set()
            await self._store.save_rule_states(
                book.info.id, {n: book.states[n] for n in names if n in book.states}
            )

    def _rearm(self, book: AccountBook, evaluation: Evaluation) -> None:
        """After a restart, re-announce the critical breaches that are still on (latched or
        breached) with the keys they were first sent with: the store drops them as already
        delivered, and the alerter takes up their reminders again."""
        info = book.info
        currency = book.summary.currency if book.summary else ""
        for verdict in evaluation.verdicts:
            if (
                verdict.status in (Status.BREACH, Status.LATCHED)
                and Newly.BREACH not in verdict.newly
                and verdict.severity == "critical"
            ):
                again = replace(verdict, newly=Newly.BREACH, previous_status=None)
                for alert in verdict_alerts(
                    again, info.id, info.name, currency, info.dry_run, evaluation.at
                ):
                    self._alerter.send(alert)

    def _act(self, book: AccountBook, evaluation: Evaluation) -> None:
        info = book.info
        currency = book.summary.currency if book.summary else ""
        for verdict in evaluation.verdicts:
            for alert in verdict_alerts(
                verdict, info.id, info.name, currency, info.dry_run, evaluation.at
            ):
                self._alerter.send(alert)
        account = AccountRef(info.id, info.name, info.dry_run)
        for verdict in evaluation.to_flatten:
            state = evaluation.states[verdict.rule]
            stamp = state.latched_at or evaluation.at
            episode = f"{verdict.rule}@{stamp.isoformat()}"
            reason = f"{verdict.kind} {verdict.value} vs {verdict.threshold}"
            log.warning(
                "account=%s rule=%s latched: flatten (episode %s)", info.id, verdict.rule, episode
            )
            self._enforcer.request_flatten(account, verdict.rule, episode, reason)
        flat_at = self._enforcer.flat_at.get(info.id)
        fresh_positions = book.positions_at is not None and (
            flat_at is None or book.positions_at > flat_at
        )
        if (
            evaluation.locked_out
            and book.positions
            and fresh_positions
            and not self._enforcer.busy(info.id)
        ):
            rule = next(v.rule for v in evaluation.verdicts if v.latched and v.action == "lockout")
            positions = list(book.positions)
            book.positions = []  # closing them; the next positions poll tells the truth
            self._spawn(self._enforcer.enforce_lockout(account, positions, rule), "lockout")

    # -- day baselines ----------------------------------------------------------------------

    async def _roll_days(self, book: AccountBook) -> None:
        now = self._clock()
        baselines: dict[datetime, tuple[float, float | None] | None] = {}
        for rule in book.info.rules:
            state = book.states.get(rule.name, RuleState())
            period_start = due_roll(rule, state, now)
            if period_start is None:
                continue
            if period_start not in baselines:
                baselines[period_start] = await self._baseline(book, period_start, now)
            found = baselines[period_start]
            if found is None:
                continue
            was_latched = state.latched
            rolled = roll_period(rule, state, period_start, found[0], found[1])
            book.states[rule.name] = rolled
            await self._store.save_rule_states(book.info.id, {rule.name: rolled})
            log.info(
                "account=%s rule=%s new day from %s: start balance %.2f, start equity %s",
                book.info.id,
                rule.name,
                period_start.isoformat(),
                found[0],
                "unknown" if found[1] is None else f"{found[1]:.2f}",
            )
            if was_latched and not rolled.latched:
                self._alerter.send(
                    Alert(
                        key=f"{book.info.id}:{rule.name}:lockout_cleared:{period_start.isoformat()}",
                        event="lockout_cleared",
                        severity="warning",
                        account_id=book.info.id,
                        account_name=book.info.name,
                        rule=rule.name,
                        title=f"{book.info.name}: {rule.name} reset, trading allowed again",
                        body=f"A new period started at {period_start:%Y-%m-%d %H:%M UTC}: "
                        "the rule's latch is cleared and trading is allowed again.",
                        condition=rule_condition(book.info.id, rule.name),
                    )
                )

    async def _baseline(
        self, book: AccountBook, period_start: datetime, now: datetime
    ) -> tuple[float, float | None] | None:
        """(day-start balance, day-start equity or None), or None when not knowable yet.

        The balance is always derived from the order history since the reset (the balance
        now minus what orders closed since added), so a restart in the middle of the day
        never re-bases it. The equity is only known from a summary taken within
        ``capture_window`` of the reset, i.e. when riskd was running at the reset.
        """
        if book.summary is None:
            return None
        summary = book.summary
        summary_at = book.summary_at or now
        if summary_at < period_start:
            fresh = await self.fetch_summary(book)
            if fresh is None:
                return None
            summary, summary_at = fresh, book.summary_at or now
        captured = summary_at - period_start <= timedelta(seconds=self._settings.capture_window)
        start_equity = summary.equity if captured else None
        try:
            async with self._budget.slot(), asyncio.timeout(self._settings.request_timeout):
                closed = await self._client.history.get(book.info.id, period_start, now)
        except (Api2TradeError, TimeoutError) as exc:
            if captured:
                return summary.balance, start_equity
            log.warning(
                "account=%s day-start balance unknown (history failed: %s); retrying",
                book.info.id,
                exc or "timeout",
            )
            return None
        nets = [o.net_profit for o in closed if o.close_time >= period_start]
        return derive_day_start_balance(summary.balance, nets), start_equity


def _differs_beyond_mark(old: RuleState, new: RuleState) -> bool:
    """True when anything but the high-water mark changed."""
    return (
        old.period_start != new.period_start
        or old.start_balance != new.start_balance
        or old.start_equity != new.start_equity
        or old.condition_since != new.condition_since
        or old.warned != new.warned
        or old.last_status != new.last_status
        or old.latched != new.latched
        or old.latched_at != new.latched_at
    )
