"""Real delivery targets on loopback: an HTTP webhook receiver (``json://``) and an SMTP server
(aiosmtpd, ``mailto://``), plus a port nothing listens on."""

from __future__ import annotations

import asyncio
import email
import json
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from riskd.actions.alerts import Alert, Severity
from riskd.actions.notify import AlertTarget, AppriseSettings
from riskd.store import AsyncStore, StateStore
from tests.config.conftest import RULES_DIR, WriteConfig

ACCOUNT = "3f9a6c1e-2b47-4d8a-9e15-7c0d2a4b8f61"


class Signal:
    """A counter the test awaits: bumped from any thread, awaited on the test's loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._changed = asyncio.Event()
        self.count = 0

    def bump(self) -> None:
        def bump() -> None:
            self.count += 1
            self._changed.set()

        try:
            here = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            here = False
        if here:
            bump()
        else:
            self._loop.call_soon_threadsafe(bump)

    async def reach(self, count: int, timeout: float = 10.0) -> None:
        """Until ``count`` bumps happened (fails the test after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


class Webhook:
    """An HTTP server on 127.0.0.1 recording every JSON POST (apprise ``json://``).

    ``hang()`` makes it hold every request open, unanswered, until ``release()``;
    ``fail(n)`` answers the next ``n`` requests with 500.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = Signal(loop)  # a request came in (answered or not)
        self.answered = Signal(loop)  # a request was recorded and answered 200
        self._release = threading.Event()
        self._release.set()
        self._fail = 0
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payload = json.loads(self.rfile.read(length) or b"{}")
                hook.arrived.bump()
                hook._release.wait(timeout=30)
                with hook._lock:
                    failing = hook._fail > 0
                    hook._fail -= 1 if failing else 0
                if failing:
                    self.send_response(500)
                    self.end_headers()
                    return
                with hook._lock:
                    hook.received.append(payload)
                self.send_response(200)
                self.end_headers()
                hook.answered.bump()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def hang(self) -> None:
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def fail(self, times: int) -> None:
        with self._lock:
            self._fail = times

    def titles(self) -> list[str]:
        with self._lock:
            return [str(m["title"]) for m in self.received]

    def close(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Mail:
    subject: str
    body: str
    rcpt: list[str]


class Mailbox:
    """An aiosmtpd SMTP server on 127.0.0.1 (no TLS, no auth) on the test's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.messages: list[Mail] = []
        self.received = Signal(loop)
        self.port = 0
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message: Message = email.message_from_bytes(raw)
        body = ""
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    body += payload.decode().replace("\r\n", "\n")
        self.messages.append(Mail(str(message["Subject"]), body, list(envelope.rcpt_tos)))
        self.received.bump()
        return "250 OK"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="localhost"), "127.0.0.1", 0
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    def url(self, to: str = "ops@example.com") -> str:
        # mailto:// (not mailtos://) is a plain SMTP session: no TLS, no login without a user.
        return f"mailto://127.0.0.1:{self.port}?from=riskd@example.com&to={to}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook(asyncio.get_running_loop())
    yield hook
    hook.close()


@pytest.fixture
async def make_webhook() -> AsyncIterator[Callable[[], Webhook]]:
    made: list[Webhook] = []

    def make() -> Webhook:
        made.append(Webhook(asyncio.get_running_loop()))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    box = Mailbox(asyncio.get_running_loop())
    await box.start()
    yield box
    await box.close()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A directory holding a copy of the shipped rule presets under ``rules/``."""
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    return tmp_path


@pytest.fixture
def write_config(config_dir: Path) -> WriteConfig:
    """Write ``riskd.yaml`` in ``config_dir`` and return its path."""

    def write(text: str) -> Path:
        path = config_dir / "riskd.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[AsyncStore]:
    async_store = AsyncStore(StateStore(store_path))
    yield async_store
    await async_store.close()


@pytest.fixture
def fast_settings() -> Callable[..., AppriseSettings]:
    """Settings with short timings: ``fast_settings(("json://...", ("tag",)), ...)``."""

    def make(*targets: tuple[str, tuple[str, ...]], **overrides: Any) -> AppriseSettings:
        values: dict[str, Any] = {
            "targets": tuple(AlertTarget(SecretStr(url), tags) for url, tags in targets),
            "timeout": 5.0,
            "retries": 0,
            "retry_backoff": 0.01,
            "repeat_interval": 0.0,
            "drain_timeout": 5.0,
        }
        values.update(overrides)
        return AppriseSettings(**values)

    return make


def make_alert(
    key: str = "k1",
    *,
    event: str = "breach",
    severity: Severity = "critical",
    title: str = "Test 100k: daily-loss BREACHED",
    body: str = "Equity 94,980.00 USD is 20.00 USD below the daily floor of 95,000.00 USD.",
    condition: str | None = None,
    ongoing: bool = False,
    reminder: int = 0,
) -> Alert:
    return Alert(
        key=key,
        event=event,
        severity=severity,
        account_id=ACCOUNT,
        account_name="Test 100k",
        rule="daily-loss",
        title=title,
        body=body,
        condition=condition,
        ongoing=ongoing,
        reminder=reminder,
    )
