"""riskd's HTTP endpoints: ``/metrics``, ``/livez``, ``/readyz``, ``/status``.

One small starlette app served by uvicorn as a task of the daemon's own event loop (no thread,
no second loop): every handler reads the live account books on the loop that owns them, so a
scrape sees one consistent state without locks.

Liveness. ``/livez`` is answered by the event loop itself, on purpose: the only proof that
the loop is alive is the loop doing something. If the loop hangs (a blocking call, a
CPU-bound section that never yields, a deadlock in a C extension), the socket still accepts
connections (the kernel completes the handshake) but no answer comes, so the probe fails by
its timeout (Kubernetes' ``timeoutSeconds``, ``curl --max-time``); a hung loop can never
answer "alive". A status kept by another thread could only report a heartbeat's age, and a
probe reading it would pass for as long as that thread lives. What a thread does add is a
diagnosis: :class:`LoopHeartbeat` runs a timer on the loop (its lateness is the
``riskd_event_loop_lag_seconds`` histogram) and a watchdog thread that, when no heartbeat came
for ``stall_after`` seconds, logs the loop thread's stack once (where it is stuck) and counts
``riskd_event_loop_stalls_total``, then logs once more when the loop runs again. ``/livez``
also fails (503) if the heartbeat task itself died.

Readiness. ``/readyz`` is 200 once the service finished starting (state loaded, interrupted
flattens resumed, ``Service.ready`` set) and every account has a polled summary; 503 with the
accounts still waiting before that.

Secrets. Nothing here reads a secret, and as a second line every response body is scrubbed of
the client's API key and Pro password (and any ``extra_secrets``, e.g. apprise tokens) before
it leaves, in raw, JSON-escaped and Prometheus-escaped form.

The default address is loopback (``127.0.0.1:9108``): the endpoints have no authentication.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from riskd.embedded_server import EmbeddedUvicorn, is_loopback
from riskd.engine import Rule, Verdict
from riskd.engine.rules import ExposureCheck
from riskd.metrics import CONTENT_TYPE, Metrics, ServiceView, is_ready, riskd_version
from riskd.monitor.book import AccountBook

log = logging.getLogger("riskd.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9108
_JSON = "application/json"
_MONEY_KINDS = frozenset({"daily_loss", "max_loss", "trailing_drawdown", "profit_target"})


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Where the endpoints listen, and the loop watchdog's timing (seconds).

    ``port=0`` picks a free port (tests). ``heartbeat_interval`` is how often the loop's
    heartbeat timer fires; ``stall_after`` how long without a heartbeat the watchdog reports
    a stall.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    heartbeat_interval: float = 0.5
    stall_after: float = 5.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if not (self.heartbeat_interval > 0 and self.stall_after > self.heartbeat_interval):
            raise ValueError("heartbeat_interval must be positive and below stall_after")

    @classmethod
    def parse(cls, listen: str, **kwargs: Any) -> WebSettings:
        """From ``HOST:PORT``: ``127.0.0.1:9108``, ``[::1]:9108``, ``0.0.0.0:9108``, or
        ``:9108`` for the default (loopback) host."""
        host, sep, port = listen.strip().rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"listen address must be HOST:PORT, got {listen!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"write an IPv6 listen address in brackets: [{host}]:{port}")
        return cls(host=host or DEFAULT_HOST, port=int(port), **kwargs)

    @property
    def listen(self) -> str:
        """``HOST:PORT`` (IPv6 in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


# -- the loop heartbeat and its watchdog -----------------------------------------------------


class LoopHeartbeat:
    """A timer on the event loop and a watchdog thread that notices when it stops firing.

    The timer measures how late the loop runs it (``riskd_event_loop_lag_seconds``). The
    watchdog never answers probes (see the module doc); it logs where the loop is stuck.
    """

    def __init__(
        self, interval: float = 0.5, stall_after: float = 5.0, metrics: Metrics | None = None
    ) -> None:
        self._interval = interval
        self._stall_after = stall_after
        self._check_every = min(stall_after / 4, 1.0)
        self._metrics = metrics
        self._beat = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop_thread = 0

    @property
    def running(self) -> bool:
        """True while the heartbeat task runs."""
        return self._task is not None and not self._task.done()

    def age(self) -> float:
        """Seconds since the last heartbeat."""
        return time.monotonic() - self._beat

    async def start(self) -> None:
        """Start the timer on the running loop and the watchdog thread."""
        if self._task is not None:
            raise RuntimeError("the heartbeat is already started")
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="riskd heartbeat")
        self._thread = threading.Thread(target=self._watch, name="riskd-loop-watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        thread, self._thread = self._thread, None
        if thread is not None:
            # Wakes at once (the watchdog waits on _stop); join off the loop all the same.
            await asyncio.to_thread(thread.join, 5.0)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._interval
        while True:
            asked = loop.time()
            await asyncio.sleep(interval)
            lag = loop.time() - asked - interval
            self._beat = time.monotonic()
            if self._metrics is not None:
                self._metrics.loop_lag.observe(max(lag, 0.0))

    def _watch(self) -> None:
        stalled_at: float | None = None  # the last beat before the stall being reported
        while not self._stop.wait(self._check_every):
            beat = self._beat
            age = time.monotonic() - beat
            if stalled_at is None and age > self._stall_after:
                stalled_at = beat
                if self._metrics is not None:
                    self._metrics.loop_stalls.inc()
                log.error(
                    "event loop blocked: no heartbeat for %.1fs; the loop thread is at:\n%s",
                    age,
                    self._loop_stack(),
                )
            elif stalled_at is not None and beat != stalled_at:
                log.warning(
                    "event loop running again after a stall of about %.1fs", beat - stalled_at
                )
                stalled_at = None

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "  (loop thread not found)"
        return "".join(traceback.format_stack(frame)).rstrip()


# -- /status ------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _num(value: float | None) -> float | None:
    """A JSON number, or null for none and non-finite values (JSON has no infinity)."""
    return value if value is not None and math.isfinite(value) else None


def _unit(rule: Rule, currency: str) -> str:
    if rule.kind in _MONEY_KINDS:
        return currency or "money"
    if rule.kind == "margin_level":
        return "percent"
    if rule.kind == "stale_data":
        return "seconds"
    if isinstance(rule.check, ExposureCheck) and rule.check.measure_by == "positions":
        return "positions"
    return "lots"


def _rule_status(rule: Rule, verdict: Verdict | None, currency: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": rule.name,
        "kind": rule.kind,
        "action": rule.action,
        "severity": rule.severity,
        "unit": _unit(rule, currency),
    }
    if verdict is None:
        doc["status"] = None  # not evaluated yet
        return doc
    doc.update(
        status=verdict.status.value,
        latched=verdict.latched,
        value=_num(verdict.value),
        threshold=_num(verdict.threshold),
        headroom=_num(verdict.headroom),
        used=_num(verdict.used),
        condition_since=_iso(verdict.condition_since),
        next_reset=_iso(verdict.next_reset),
    )
    return doc


def account_status(book: AccountBook, *, streaming: bool, flattening: bool) -> dict[str, Any]:
    """One account as ``/status`` shows it (see :func:`status_document`)."""
    s, est, evaluation = book.summary, book.estimator, book.current(datetime.now(UTC))
    currency = s.currency if s is not None else est.currency
    margin = None
    margin_level = None
    if s is not None:
        margin = s.margin_in_use
        if margin > 0:
            margin_level = (est.equity if est.equity is not None else s.equity) / margin * 100
    verdicts = {v.rule: v for v in evaluation.verdicts} if evaluation is not None else {}
    stream = book.stream
    if stream is not None:
        stats = stream.stats
        stream_doc: dict[str, Any] = {
            "state": stream.state,
            "connected": stream.connected,
            "symbols": sorted(stream.symbols),
            "connects": stats.connects,
            "reconnects": stats.reconnects,
            "ticks": stats.ticks,
            "malformed": stats.malformed,
        }
    else:
        stream_doc = {"state": "stopped" if streaming else "disabled", "connected": False}
    stream_doc["last_tick_at"] = _iso(book.last_tick_at)
    positions = book.positions
    return {
        "id": book.info.id,
        "name": book.info.name,
        "dry_run": book.info.dry_run,
        "currency": currency,
        "balance": s.balance if s is not None else None,
        "equity": {
            "polled": s.equity if s is not None else None,
            "estimated": est.equity,
            "rules_used": None
            if evaluation is None
            else ("estimated" if evaluation.estimated else "polled"),
        },
        "margin": margin,
        "margin_level_percent": _num(margin_level),
        "positions": None if positions is None else len(positions),
        "lots": None if positions is None else math.fsum(p.volume for p in positions),
        "locked_out": evaluation is not None and evaluation.locked_out,
        "flatten_in_progress": flattening,
        "polling": {
            "last_poll": _iso(book.last_poll_at),
            "summary_at": _iso(book.summary_at),
            "positions_at": _iso(book.positions_at),
            "failing_since": _iso(book.failing_since),
            "failure": book.failure or None,
        },
        "evaluated_at": _iso(evaluation.at if evaluation is not None else None),
        "rules": [_rule_status(r, verdicts.get(r.name), currency) for r in book.info.rules],
        "stream": stream_doc,
    }


def status_document(service: ServiceView, now: datetime | None = None) -> dict[str, Any]:
    """What ``/status`` answers: per account its money (balance, equity polled and
    estimated), every rule's threshold (the floor of loss rules), headroom (the distance to
    it), state and latch, the stream's state and the last poll. Rule numbers are in the
    rule's unit (``unit``: the account currency, percent, lots, positions or seconds);
    null where unknown or infinite."""
    streaming = service.settings.streaming.enabled
    enforcer = service.enforcer
    return {
        "riskd": riskd_version(),
        "now": (now or datetime.now(UTC)).isoformat(),
        "ready": is_ready(service),
        "shard": {"index": service.settings.shard.index, "count": service.settings.shard.count},
        "accounts": [
            account_status(b, streaming=streaming, flattening=enforcer.busy(b.info.id))
            for b in service.books.values()
        ],
    }


# -- the app ------------------------------------------------------------------------------------


def _secret_forms(secrets: Iterable[str]) -> list[bytes]:
    """Each secret as it could appear in a body: raw, JSON-escaped, Prometheus-escaped."""
    forms: set[bytes] = set()
    for secret in secrets:
        if len(secret) < 4:  # too short to scrub without mangling ordinary text
            continue
        prom = secret.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        for form in (secret, json.dumps(secret)[1:-1], prom):
            forms.add(form.encode())
    return sorted(forms, key=len, reverse=True)


def client_secrets(service: ServiceView) -> list[str]:
    """The bridge credentials in the service's settings (values, to scrub them)."""
    client = service.settings.client
    return [
        s.get_secret_value()
        for s in (client.api_key, client.pro_password)
        if s is not None and s.get_secret_value()
    ]


def build_app(
    service: ServiceView,
    metrics: Metrics,
    heartbeat: LoopHeartbeat,
    secrets: Iterable[str] = (),
) -> Starlette:
    """The starlette app of the four endpoints (and ``/``, a list of them)."""
    scrub = _secret_forms(secrets)

    def respond(body: bytes, media_type: str, status: int = 200) -> Response:
        for form in scrub:
            body = body.replace(form, b"[redacted]")
        headers = {"Cache-Control": "no-store"}
        return Response(body, status_code=status, media_type=media_type, headers=headers)

    def as_json(doc: dict[str, Any], status: int = 200) -> Response:
        body = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
        return respond(body, _JSON, status)

    async def index(request: Request) -> Response:
        body = b"riskd: /metrics /livez /readyz /status\n"
        return respond(body, "text/plain; charset=utf-8")

    async def metrics_endpoint(request: Request) -> Response:
        return respond(metrics.exposition(), CONTENT_TYPE)

    async def livez(request: Request) -> Response:
        # Reaching this line is the proof: the loop that runs the daemon ran this handler.
        if not heartbeat.running:
            return as_json({"status": "failing", "reason": "heartbeat task stopped"}, 503)
        return as_json({"status": "ok", "heartbeat_age_seconds": round(heartbeat.age(), 3)})

    async def readyz(request: Request) -> Response:
        waiting = [b.info.id for b in service.books.values() if b.summary_at is None]
        ready = is_ready(service)
        doc = {"ready": ready, "started": service.ready.is_set(), "waiting_for": waiting}
        return as_json(doc, 200 if ready else 503)

    async def status(request: Request) -> Response:
        return as_json(status_document(service))

    get = ["GET", "HEAD"]
    return Starlette(
        routes=[
            Route("/", index, methods=get),
            Route("/metrics", metrics_endpoint, methods=get),
            Route("/livez", livez, methods=get),
            Route("/readyz", readyz, methods=get),
            Route("/status", status, methods=get),
        ]
    )


class WebServer:
    """The endpoints on the running event loop. ``await start()`` returns once listening
    (a busy port raises ``OSError`` there); ``await stop()`` closes it. Also an async
    context manager."""

    def __init__(
        self,
        service: ServiceView,
        metrics: Metrics,
        settings: WebSettings | None = None,
        *,
        extra_secrets: Iterable[str] = (),
    ) -> None:
        self.settings = settings or WebSettings()
        self.heartbeat = LoopHeartbeat(
            self.settings.heartbeat_interval, self.settings.stall_after, metrics
        )
        self.app = build_app(
            service, metrics, self.heartbeat, [*client_secrets(service), *extra_secrets]
        )
        self._server: EmbeddedUvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The listening port (the real one when configured with port 0)."""
        if self._port is None:
            raise RuntimeError("the web server is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the web server is already started")
        sock = self._bind()
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        started = asyncio.Event()
        self._server = EmbeddedUvicorn(config, started.set)
        task = asyncio.get_running_loop().create_task(self._serve(sock), name="riskd web")
        self._task = task
        waiter = asyncio.ensure_future(started.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            self._task = None
            task.result()  # the startup failure
            raise RuntimeError("the web server stopped during startup")
        await self.heartbeat.start()
        where = self.url
        if not is_loopback(self.settings.host):
            log.warning("HTTP endpoints listen on %s (no authentication: keep it private)", where)
        log.info("serving /metrics /livez /readyz /status on %s", where)

    async def stop(self) -> None:
        await self.heartbeat.stop()
        task, server = self._task, self._server
        if task is None or server is None:
            return
        server.request_exit()
        await asyncio.gather(task, return_exceptions=True)
        self._task = None

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        finally:
            sock.close()

    def _bind(self) -> socket.socket:
        host, port = self.settings.host, self.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        return sock
