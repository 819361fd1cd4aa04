"""A log of the requests that reached the simulator, for tests to count calls and retries.

Every bridge request (and every stream handshake, as method ``"WS"``) is recorded when it
arrives, before any fault is applied, so "how many ``/OrderClose`` calls reached the
simulator" counts retries of failed calls too. ``status`` is filled in when the answer goes
out (None while a request is still in flight, e.g. hanging on an injected timeout).

Written by the server's event loop, read by the test thread: guarded by a lock and a
condition so a test can wait for a request without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

_SECRET_FIELDS = frozenset({"password", "api_key", "apiKey"})


@dataclass(slots=True)
class RequestRecord:
    """One request: ``at`` is ``time.monotonic()`` at arrival; ``body`` the parsed JSON body
    (None when absent or not JSON), with password fields replaced by ``"***"``."""

    method: str
    path: str
    account_id: str | None
    body: Any
    at: float
    status: int | None = None


def _redact(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: ("***" if k in _SECRET_FIELDS else v) for k, v in body.items()}
    return body


class RequestLog:
    """Bounded (``maxlen`` newest records) and thread-safe."""

    def __init__(self, maxlen: int | None = 100_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._cond = threading.Condition()

    def add(self, method: str, path: str, account_id: str | None, body: Any) -> RequestRecord:
        """Record an arriving request and return its record (to :meth:`finish` later)."""
        record = RequestRecord(method, path, account_id, _redact(body), time.monotonic())
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()
        return record

    def finish(self, record: RequestRecord, status: int) -> None:
        """Note the HTTP status the request was answered with (101 for an accepted stream)."""
        with self._cond:
            record.status = status
            self._cond.notify_all()

    def records(self, path: str | None = None, method: str | None = None) -> list[RequestRecord]:
        """A snapshot of the records, oldest first, optionally filtered."""
        with self._cond:
            return [r for r in self._records if _matches(r, path, method)]

    def count(self, path: str | None = None, method: str | None = None) -> int:
        """How many matching requests arrived (answered or not)."""
        with self._cond:
            return sum(1 for r in self._records if _matches(r, path, method))

    def clear(self) -> None:
        with self._cond:
            self._records.clear()

    def wait_for(
        self,
        count: int,
        *,
        path: str | None = None,
        method: str | None = None,
        answered: bool = False,
        timeout: float = 5.0,
    ) -> bool:
        """Block until ``count`` matching requests arrived (``answered``: and were answered).

        Returns False on timeout. For threads other than the server's event loop.
        """

        def done() -> bool:
            return (
                sum(
                    1
                    for r in self._records
                    if _matches(r, path, method) and (not answered or r.status is not None)
                )
                >= count
            )

        with self._cond:
            return self._cond.wait_for(done, timeout)


def _matches(record: RequestRecord, path: str | None, method: str | None) -> bool:
    return (path is None or record.path == path) and (method is None or record.method == method)
