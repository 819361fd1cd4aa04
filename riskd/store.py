"""What must survive a restart: rule states (baselines, high-water marks, latches), the
flatten journal and alert dedupe keys, in SQLite.

SQLite in WAL mode with ``synchronous=FULL``: a committed write survives ``kill -9`` and a
power cut. The journal's unique key (account, episode) makes "exactly one flatten per breach"
a database fact rather than an in-memory one, so it holds across restarts and concurrent
triggers alike.

``StateStore`` is the blocking core (used by tests and offline commands); ``AsyncStore`` runs
it on one dedicated thread so the event loop never waits on a disk flush.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from riskd.engine.state import RuleState

T = TypeVar("T")

FlattenStatus = Literal["started", "done", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (
    account TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (account, rule)
);
CREATE TABLE IF NOT EXISTS flatten_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    episode TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('started', 'done', 'failed')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    detail TEXT NOT NULL DEFAULT '',
    UNIQUE (account, episode)
);
CREATE TABLE IF NOT EXISTS alert_keys (
    key TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class FlattenRecord:
    """One journal entry: a flatten that was started for one breach episode."""

    id: int
    account: str
    episode: str
    rule: str
    reason: str
    status: FlattenStatus
    started_at: datetime
    finished_at: datetime | None
    detail: str


# Locks this process holds, by lock file: a second store on the same file in one process
# (tests, a tool inside the daemon) shares the lock; only another process is refused.
_held: dict[str, list[int]] = {}  # real path -> [fd, stores using it]
_held_lock = threading.Lock()


def _lock_exclusively(path: str) -> str:
    """Take the process's exclusive ``flock`` on ``path`` (our pid written in it); returns the
    key for ``_unlock``. Raises ``StateInUseError`` when another process holds it."""
    key = os.path.realpath(path)
    with _held_lock:
        held = _held.get(key)
        if held is not None:
            held[1] += 1
            return key
        fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateInUseError(
                f"the state file {path.removesuffix('.lock')} is in use by another riskd "
                f"process (pid {holder}): stop it first (two daemons on one state would both "
                "act on its accounts)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        _held[key] = [fd, 1]
        return key


def _unlock(key: str) -> None:
    with _held_lock:
        held = _held.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            del _held[key]
            os.close(held[0])  # releases the flock


def _now() -> str:
    return datetime.now(UTC).isoformat()


class StateInUseError(RuntimeError):
    """Another process holds the state file (see ``StateStore``)."""


class StateStore:
    """Blocking SQLite store. One connection, guarded by a lock (callers may be threads).

    The store is one process's: it holds an exclusive lock on ``<path>.lock`` while open.
    Two daemons on one state file would both guard its accounts and overwrite each other's
    latches, and ``riskd unlock`` must not edit a state a running daemon will write back, so a
    second opener in another process gets ``StateInUseError`` naming the holder's pid. The
    lock is the kernel's (``flock``): it goes with the process, a ``kill -9`` included.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        """Open (and create) the store at ``path``. ``readonly`` opens an existing store to
        look at beside the process that owns it: no lock, and no write is possible."""
        self.path = str(path)
        self._lockfile: str | None = None
        self._lock = threading.Lock()
        if readonly:
            uri = Path(self.path).resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=5000")
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._lockfile = _lock_exclusively(self.path + ".lock")
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._lockfile is not None:
                _unlock(self._lockfile)
                self._lockfile = None

    # -- rule states ------------------------------------------------------------------------

    def load_rule_states(self, account: str) -> dict[str, RuleState]:
        with self._lock:
            rows = self._db.execute(
                "SELECT rule, state FROM rule_state WHERE account = ?", (account,)
            ).fetchall()
        return {rule: RuleState.from_dict(json.loads(state)) for rule, state in rows}

    def save_rule_states(self, account: str, states: Mapping[str, RuleState]) -> None:
        """Upsert several rules' states of one account in one transaction."""
        now = _now()
        rows = [(account, rule, json.dumps(s.to_dict()), now) for rule, s in states.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO rule_state (account, rule, state, updated_at) VALUES (?,?,?,?) "
                    "ON CONFLICT (account, rule) DO UPDATE SET state = excluded.state, "
                    "updated_at = excluded.updated_at",
                    rows,
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- flatten journal --------------------------------------------------------------------

    def begin_flatten(
        self, account: str, episode: str, rule: str, reason: str
    ) -> FlattenRecord | None:
        """Claim the flatten of one breach episode; None if it was already claimed."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO flatten_journal "
                "(account, episode, rule, reason, status, started_at) "
                "VALUES (?, ?, ?, ?, 'started', ?)",
                (account, episode, rule, reason, _now()),
            )
            if cursor.rowcount == 0:
                return None
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM flatten_journal WHERE id = ?",  # noqa: S608 - constant
                (cursor.lastrowid,),
            ).fetchone()
        return _record(row)

    def finish_flatten(self, record_id: int, status: FlattenStatus, detail: str = "") -> None:
        with self._lock:
            self._db.execute(
                "UPDATE flatten_journal SET status = ?, finished_at = ?, detail = ? WHERE id = ?",
                (status, _now(), detail[:2000], record_id),
            )

    def reopen_flatten(self, record_id: int) -> None:
        """Mark a failed flatten as running again (a retry of the same episode)."""
        with self._lock:
            self._db.execute(
                "UPDATE flatten_journal SET status = 'started', finished_at = NULL WHERE id = ?",
                (record_id,),
            )

    def accounts(self) -> set[str]:
        """Every account this store holds rule states or flatten records of."""
        with self._lock:
            rows = self._db.execute(
                "SELECT account FROM rule_state UNION SELECT account FROM flatten_journal"
            ).fetchall()
        return {str(r[0]) for r in rows}

    def flattens(
        self, account: str | None = None, status: FlattenStatus | None = None
    ) -> list[FlattenRecord]:
        """Journal entries, oldest first, optionally filtered."""
        query = f"SELECT {_COLUMNS} FROM flatten_journal"  # noqa: S608 - constants only
        clauses, args = [], []
        if account is not None:
            clauses.append("account = ?")
            args.append(account)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [_record(r) for r in rows]

    # -- alert dedupe -----------------------------------------------------------------------

    def claim_alert(self, key: str) -> bool:
        """True the first time ``key`` is claimed, False ever after (across restarts)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO alert_keys (key, sent_at) VALUES (?, ?)", (key, _now())
            )
        return cursor.rowcount == 1


_COLUMNS = "id, account, episode, rule, reason, status, started_at, finished_at, detail"


def _record(row: tuple[object, ...]) -> FlattenRecord:
    rid, account, episode, rule, reason, status, started, finished, detail = row
    return FlattenRecord(
        id=int(str(rid)),
        account=str(account),
        episode=str(episode),
        rule=str(rule),
        reason=str(reason),
        status=str(status),  # type: ignore[arg-type]
        started_at=datetime.fromisoformat(str(started)),
        finished_at=None if finished is None else datetime.fromisoformat(str(finished)),
        detail=str(detail),
    )


class AsyncStore:
    """``StateStore`` for the event loop: every call runs on one dedicated thread."""

    def __init__(self, store: StateStore) -> None:
        self.sync = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskd-store")

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def accounts(self) -> set[str]:
        return await self._run(self.sync.accounts)

    async def load_rule_states(self, account: str) -> dict[str, RuleState]:
        return await self._run(self.sync.load_rule_states, account)

    async def save_rule_states(self, account: str, states: Mapping[str, RuleState]) -> None:
        await self._run(self.sync.save_rule_states, account, dict(states))

    async def begin_flatten(
        self, account: str, episode: str, rule: str, reason: str
    ) -> FlattenRecord | None:
        return await self._run(self.sync.begin_flatten, account, episode, rule, reason)

    async def finish_flatten(self, record_id: int, status: FlattenStatus, detail: str = "") -> None:
        await self._run(self.sync.finish_flatten, record_id, status, detail)

    async def reopen_flatten(self, record_id: int) -> None:
        await self._run(self.sync.reopen_flatten, record_id)

    async def flattens(
        self, account: str | None = None, status: FlattenStatus | None = None
    ) -> list[FlattenRecord]:
        return await self._run(self.sync.flattens, account, status)

    async def claim_alert(self, key: str) -> bool:
        return await self._run(self.sync.claim_alert, key)

    async def close(self) -> None:
        await self._run(self.sync.close)
        self._pool.shutdown(wait=True)
