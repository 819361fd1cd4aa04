"""Flattening accounts: close_all with a journal, lockout, and restart recovery.

Rules of the road:

- **Exactly one flatten per breach.** A flatten starts by claiming its episode (the rule and
  the instant it latched) in the store's journal, whose unique key makes a second claim fail,
  across concurrent triggers and across restarts. Flattens of one account are serialised, so
  two rules breaching on the same tick close each ticket once (the second finds it flat).
- **Until flat.** Positions are re-read after every round of closes. Requotes are retried by
  the client; ``MARKET_CLOSED`` waits ``market_closed_retry``; other refusals are alerted and
  retried next round. Past ``flat_timeout`` the journal says ``failed`` and a loud critical
  alert repeats every ``reminder_interval`` while riskd keeps trying.
- **Alert keys** are stable per state change: a flatten's alerts are keyed by its journal
  episode (so a restart that resumes it does not announce it twice), a refusal by ticket and
  return code, a lockout close by the tickets it closes. The "cannot get flat" repeats are
  marked as reminders of the episode's first alert.
- **Restarts.** ``resume`` finishes every flatten the journal shows as started (riskd was
  killed mid-way) or failed (still not flat); finished ones are never repeated.
- **Dry run.** Everything is read, logged and alerted; no trade request is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from riskd.actions.alerts import Alert, Alerter, Severity, flatten_condition
from riskd.api2trade import AsyncApi2TradeClient, Position, RetCode, RetryKind
from riskd.api2trade.exceptions import (
    AccountNotFoundError,
    Api2TradeError,
    AuthenticationError,
    BrokerRejectionError,
)
from riskd.store import AsyncStore, FlattenRecord

log = logging.getLogger("riskd.enforcer")


@dataclass(frozen=True, slots=True)
class EnforcementSettings:
    """Timings and limits of close_all (seconds)."""

    close_concurrency: int = 4
    flat_timeout: float = 60.0
    market_closed_retry: float = 30.0
    reminder_interval: float = 300.0
    round_pause: float = 0.5


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Who to flatten: the bridge id, a display name, and whether this account is dry-run."""

    id: str
    name: str
    dry_run: bool


class Enforcer:
    """Sends the closes. One instance per process, shared by all accounts."""

    def __init__(
        self,
        client: AsyncApi2TradeClient,
        store: AsyncStore,
        alerter: Alerter,
        settings: EnforcementSettings,
        accounts: Callable[[str], AccountRef | None],
    ) -> None:
        self._client = client
        self._store = store
        self._alerter = alerter
        self._settings = settings
        self._accounts = accounts
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self.flat_at: dict[str, datetime] = {}
        """When each account's last flatten or lockout close round ended: positions read
        before that instant are history, not a reason to close again."""
        self.closes_sent = 0
        self.after_flatten: Callable[[str], None] | None = None
        """Called when a flatten ends, so the owner can re-read the account at once."""

    def _lock(self, account_id: str) -> asyncio.Lock:
        return self._locks.setdefault(account_id, asyncio.Lock())

    def busy(self, account_id: str) -> bool:
        """True from the moment a flatten is requested until it ends."""
        return self._pending[account_id] > 0 or self._lock(account_id).locked()

    # -- entry points -----------------------------------------------------------------------

    def request_flatten(self, account: AccountRef, rule: str, episode: str, reason: str) -> None:
        """Start the flatten of one breach episode in the background (returns at once)."""
        self._spawn(account.id, self.flatten(account, rule, episode, reason), "flatten")

    async def flatten(self, account: AccountRef, rule: str, episode: str, reason: str) -> None:
        """Claim the episode in the journal and flatten; a claimed episode is not redone."""
        record = await self._store.begin_flatten(account.id, episode, rule, reason)
        if record is None:
            log.info(
                "flatten account=%s episode=%s already claimed; not repeated", account.id, episode
            )
            return
        await self._run(account, record)

    async def resume(self) -> int:
        """Finish flattens a previous run left started or failed; returns how many."""
        pending = await self._store.flattens(status="started")
        pending += await self._store.flattens(status="failed")
        for record in pending:
            account = self._accounts(record.account)
            if account is None:
                log.warning("journal has a flatten for unknown account %s; skipped", record.account)
                continue
            log.warning(
                "resuming %s flatten account=%s rule=%s (riskd restarted)",
                record.status,
                record.account,
                record.rule,
            )
            if record.status == "failed":
                await self._store.reopen_flatten(record.id)
            self._spawn(account.id, self._run(account, record), "resume flatten")
        return len(pending)

    async def enforce_lockout(
        self, account: AccountRef, positions: Iterable[Position], rule: str
    ) -> None:
        """Close positions that appeared while a lockout is latched (unless a flatten runs)."""
        positions = list(positions)
        if not positions or self.busy(account.id):
            return
        async with self._lock(account.id):
            tickets = ", ".join(str(p.ticket) for p in positions)
            ordered = "-".join(str(t) for t in sorted(p.ticket for p in positions))
            self._alert(
                account,
                "lockout_close",
                "critical",
                rule,
                f"{account.name}: closing positions opened during lockout",
                f"Rule {rule} is latched, so the account must stay flat: "
                + (
                    f"DRY RUN, riskd would close ticket(s) {tickets}."
                    if account.dry_run
                    else f"riskd is closing ticket(s) {tickets}."
                ),
                key=f"{account.id}:{rule}:lockout_close:{ordered}",
            )
            if not account.dry_run:
                await self._close_round(account, positions)
            else:
                log.warning("DRY RUN lockout account=%s would close %s", account.id, tickets)
            self.flat_at[account.id] = datetime.now(UTC)

    async def aclose(self, timeout: float = 30.0) -> None:
        """Let in-flight flattens finish (graceful shutdown), then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    # -- the flatten loop -------------------------------------------------------------------

    async def _run(self, account: AccountRef, record: FlattenRecord) -> None:
        async with self._lock(account.id):
            started = time.monotonic()
            reminded_at = started
            failed_reported = False
            reminders = 0
            rounds = 0
            while True:
                try:
                    positions = await self._client.orders.positions(account.id)
                except (AuthenticationError, AccountNotFoundError) as exc:
                    await self._finish(account, record, "failed", f"cannot read positions: {exc}")
                    return
                except Api2TradeError as exc:
                    log.warning("flatten account=%s: positions read failed: %s", account.id, exc)
                    positions = None
                if positions is not None and not positions:
                    await self._finish(account, record, "done", f"flat after {rounds} round(s)")
                    return
                if positions is not None and account.dry_run:
                    tickets = ", ".join(str(p.ticket) for p in positions)
                    log.warning(
                        "DRY RUN flatten account=%s rule=%s would close %s",
                        account.id,
                        record.rule,
                        tickets,
                    )
                    await self._finish(account, record, "done", f"dry run: would close {tickets}")
                    return
                wait = self._settings.round_pause
                if positions is not None:
                    rounds += 1
                    if await self._close_round(account, positions):
                        wait = self._settings.market_closed_retry
                elapsed = time.monotonic() - started
                if elapsed > self._settings.flat_timeout:
                    now = time.monotonic()
                    if not failed_reported or now - reminded_at >= self._settings.reminder_interval:
                        left = "unknown" if positions is None else str(len(positions))
                        await self._store.finish_flatten(
                            record.id, "failed", f"not flat after {elapsed:.0f}s ({left} left)"
                        )
                        self._alert(
                            account,
                            "flatten_failed",
                            "critical",
                            record.rule,
                            f"{account.name}: CANNOT GET FLAT",
                            f"Rule {record.rule} breached and riskd has tried to close "
                            f"everything for {elapsed:.0f}s, but {left} position(s) are still "
                            "open. Close them by hand now; riskd keeps trying.",
                            key=f"{account.id}:flatten_failed:{record.episode}",
                            condition=flatten_condition(account.id, record.episode),
                            ongoing=True,
                            reminder=reminders,
                        )
                        if failed_reported:
                            log.error(
                                "flatten account=%s rule=%s still not flat after %.0fs",
                                account.id,
                                record.rule,
                                elapsed,
                            )
                        failed_reported, reminded_at = True, now
                        reminders += 1
                    wait = max(wait, min(self._settings.market_closed_retry, 5.0))
                await asyncio.sleep(wait)

    async def _close_round(self, account: AccountRef, positions: list[Position]) -> bool:
        """Close every position once, a few at a time. True if the market was closed."""
        gate = asyncio.Semaphore(self._settings.close_concurrency)
        market_closed = False

        async def close(position: Position) -> None:
            nonlocal market_closed
            async with gate:
                self.closes_sent += 1
                try:
                    await self._client.orders.close(account.id, position.ticket)
                except BrokerRejectionError as exc:
                    if exc.retcode == RetCode.POSITION_CLOSED:
                        return  # closed by someone else (or SL/TP) meanwhile: fine
                    if exc.retcode == RetCode.MARKET_CLOSED:
                        market_closed = True
                    log.warning(
                        "close account=%s ticket=%d refused: %s", account.id, position.ticket, exc
                    )
                    if RetCode.retry_kind(exc.retcode) is RetryKind.FATAL and (
                        exc.retcode != RetCode.MARKET_CLOSED
                    ):
                        # A refusal riskd cannot fix by retrying (trade disabled, frozen...):
                        # a person may have to act; riskd keeps trying meanwhile.
                        self._alert(
                            account,
                            "close_refused",
                            "critical",
                            "close_all",
                            f"{account.name}: broker refused to close {position.ticket}",
                            f"{exc}. riskd retries; check the account.",
                            key=f"{account.id}:close_refused:{position.ticket}:{exc.retcode}",
                        )
                except Api2TradeError as exc:
                    log.warning(
                        "close account=%s ticket=%d failed: %s", account.id, position.ticket, exc
                    )

        async with asyncio.TaskGroup() as group:
            for position in positions:
                group.create_task(close(position))
        return market_closed

    async def _finish(
        self, account: AccountRef, record: FlattenRecord, status: str, detail: str
    ) -> None:
        self.flat_at[account.id] = datetime.now(UTC)
        if self.after_flatten is not None:
            self.after_flatten(account.id)
        await self._store.finish_flatten(
            record.id, "done" if status == "done" else "failed", detail
        )
        condition = flatten_condition(account.id, record.episode)
        if status == "done":
            log.warning("flatten account=%s rule=%s done: %s", account.id, record.rule, detail)
            if account.dry_run:
                title = f"{account.name}: DRY RUN, flatten not sent"
                body = (
                    f"Rule {record.rule} breached; {detail} (no order was sent). "
                    "The positions are still open."
                )
            else:
                title = f"{account.name}: account flattened"
                body = (
                    f"Rule {record.rule} breached; every position is closed ({detail}). "
                    "riskd keeps watching the account."
                )
            self._alert(
                account,
                "flatten_done",
                "critical",
                record.rule,
                title,
                body,
                key=f"{account.id}:flatten_done:{record.episode}",
                condition=condition,
            )
        else:
            self._alert(
                account,
                "flatten_failed",
                "critical",
                record.rule,
                f"{account.name}: flatten FAILED",
                f"Rule {record.rule} breached but riskd stopped trying to close positions: "
                f"{detail}. Close them by hand now.",
                key=f"{account.id}:flatten_failed:{record.episode}:stopped",
                condition=condition,
                ongoing=True,
            )

    def _alert(
        self,
        account: AccountRef,
        event: str,
        severity: Severity,
        rule: str,
        title: str,
        body: str,
        *,
        key: str,
        condition: str | None = None,
        ongoing: bool = False,
        reminder: int = 0,
    ) -> None:
        self._alerter.send(
            Alert(
                key=key,
                event=event,
                severity=severity,
                account_id=account.id,
                account_name=account.name,
                rule=rule,
                title=title,
                body=body,
                condition=condition,
                ongoing=ongoing,
                reminder=reminder,
            )
        )

    def _spawn(self, account_id: str, coro: Coroutine[Any, Any, None], what: str) -> None:
        self._pending[account_id] += 1
        task = asyncio.get_running_loop().create_task(coro, name=f"{what} {account_id}")
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(account_id, t))

    def _done(self, account_id: str, task: asyncio.Task[None]) -> None:
        self._pending[account_id] -= 1
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s crashed", task.get_name(), exc_info=task.exception())
