"""A riskd service wired to the live simulator, in the test's event loop."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from riskd.actions.alerts import Alert
from riskd.actions.enforcer import EnforcementSettings
from riskd.api2trade import ClientSettings
from riskd.engine import parse_rules
from riskd.monitor.poller import PollSettings
from riskd.monitor.watcher import WatchSettings
from riskd.service import AccountSpec, Service, ServiceSettings
from riskd.sim import SimServer

MAX_LOSS_1000 = """
- name: max-loss
  kind: max_loss
  limit: 1000
  warn_at: [50%]
  action: lockout
  severity: critical
"""


class RecordingAlerter:
    """Keeps every alert (and is the same interface the daemon uses)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def events(self) -> list[str]:
        return [a.event for a in self.alerts]


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` until true, failing the test after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def service_settings(
    sim: SimServer, state: Path, account: str, rules: str = MAX_LOSS_1000, **kw: object
) -> ServiceSettings:
    dry_run = bool(kw.pop("dry_run", False))
    return ServiceSettings(
        client=ClientSettings(api_key=sim.api_key, base_url=sim.base_url, timeout=2.0),
        state_path=str(state),
        accounts=(
            AccountSpec(account, "Test 100k", 100_000.0, tuple(parse_rules(rules)), dry_run),
        ),
        poll=PollSettings(
            summary_interval=0.2,
            positions_interval=0.2,
            start_jitter=0.05,
            job_timeout=2.0,
            check_interval=0.2,
        ),
        watch=WatchSettings(confirm_breach=bool(kw.pop("confirm", True)), request_timeout=2.0),
        enforcement=EnforcementSettings(
            flat_timeout=5.0, market_closed_retry=0.2, reminder_interval=1.0, round_pause=0.1
        ),
    )


@pytest.fixture
def alerter() -> RecordingAlerter:
    return RecordingAlerter()


@pytest.fixture
def make_service(
    tmp_path: Path, alerter: RecordingAlerter
) -> AsyncIterator[Callable[[ServiceSettings], Service]]:
    started: list[Service] = []

    def make(settings: ServiceSettings) -> Service:
        service = Service(settings, alerter=alerter)
        started.append(service)
        return service

    return make  # type: ignore[return-value]


# -- ``riskd run`` as a real process, as systemd runs it ---------------------------------------


class NotifySocket:
    """A unix datagram socket standing in for systemd's ``$NOTIFY_SOCKET``: every message
    riskd sends, in order, each as its ``KEY=VALUE`` fields. A thread reads it all the time,
    as systemd does (an unread socket fills up after a few messages and drops the rest)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._received: list[dict[str, str]] = []
        self._arrived: list[float] = []  # time.monotonic() of each message
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.05)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify-socket", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self._lock:
                self._received.append(fields)
                self._arrived.append(time.monotonic())

    @property
    def address(self) -> str:
        """What goes in ``NOTIFY_SOCKET``."""
        return str(self.path)

    @property
    def messages(self) -> list[dict[str, str]]:
        """Every message so far (a copy)."""
        with self._lock:
            return list(self._received)

    def arrivals(self, key: str) -> list[float]:
        """When each message holding ``key`` arrived (``time.monotonic()``)."""
        with self._lock:
            return [t for m, t in zip(self._received, self._arrived, strict=True) if key in m]

    def wait_for(
        self, predicate: Callable[[list[dict[str, str]]], bool], timeout: float = 20.0
    ) -> list[dict[str, str]]:
        """Poll until ``predicate(messages)`` holds; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not predicate(messages := self.messages):
            if time.monotonic() > deadline:
                raise AssertionError(f"notifications not as expected in time: {messages}")
            time.sleep(0.02)
        return messages

    def index(self, key: str, value: str | None = None) -> int:
        """Position of the first message holding ``key`` (with ``value``), or -1."""
        for i, message in enumerate(self.messages):
            if key in message and (value is None or message[key] == value):
                return i
        return -1

    def statuses(self) -> list[str]:
        return [m["STATUS"] for m in self.messages if "STATUS" in m]

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._sock.close()


def short_dir(tmp_path: Path) -> Path:
    """``tmp_path``, or a shorter temporary directory when a socket path in it would not fit
    ``sockaddr_un`` (108 bytes)."""
    if len(str(tmp_path)) < 80:
        return tmp_path
    return Path(tempfile.mkdtemp(prefix="riskd-"))


def daemon_env(tmp_path: Path, api_key: str, **extra: str) -> dict[str, str]:
    """The environment of a ``riskd run`` started by systemd: this process's, less any riskd,
    bridge or systemd variable, with the API key as a credentials file in
    ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``), plus ``extra``."""
    creds = tmp_path / "credentials"
    creds.mkdir(exist_ok=True)
    key = creds / "API2TRADE_API_KEY"
    key.write_text(api_key + "\n")
    key.chmod(0o600)
    dropped = ("RISKD_", "API2TRADE_", "NOTIFY_SOCKET", "WATCHDOG_", "CREDENTIALS_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    env.update(extra)
    return env


def daemon_config(tmp_path: Path, sim: SimServer, account: str, rules: str) -> Path:
    """A config for one account on ``sim``, polling fast, /metrics on a free loopback port
    (the port is in riskd's log); the rules are in ``rules.yaml`` next to it."""
    (tmp_path / "rules.yaml").write_text(rules)
    path = tmp_path / "riskd.yaml"
    path.write_text(
        f"""
bridge:
  base_url: {sim.base_url}
  timeout: 2s
state:
  path: state.sqlite
polling:
  summary_interval: 200ms
  positions_interval: 200ms
  start_jitter: 0s
  job_timeout: 8s
http:
  listen: 127.0.0.1:0
enforcement:
  flat_timeout: 20s
accounts:
  - id: {account}
    name: Signals test
    initial_balance: 100000
    rules: [rules.yaml]
"""
    )
    return path


class RiskdProcess:
    """``python -m riskd run`` in a subprocess, its log (stderr) in a file."""

    def __init__(
        self, config: Path, env: dict[str, str], log: Path, launcher: Sequence[str] = ()
    ) -> None:
        self.config = config
        self.env = env
        self.log = log
        self.launcher = list(launcher)
        self.signal_child = False
        """True when the launcher stays the parent of riskd (strace) instead of exec'ing it."""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [*self.launcher, sys.executable, "-m", "riskd", "--log-level", "INFO", "run",
                 "--config", str(self.config)],
                env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 20.0) -> str:
        """Poll the log until it holds ``needle``; returns the log."""
        deadline = time.monotonic() + timeout
        while needle not in (text := self.text()):
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"riskd exited ({self.proc.returncode}):\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not logged in time:\n{text}")
            time.sleep(0.05)
        return text

    def base_url(self) -> str:
        """The /metrics /status server's URL, from the log line that announces it."""
        text = self.wait_log("serving /metrics /livez /readyz /status on ")
        return text.split("serving /metrics /livez /readyz /status on ", 1)[1].split()[0]

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to riskd: the process started, or, behind a launcher that stays
        (strace), its one child."""
        assert self.proc is not None
        if not self.signal_child:
            self.proc.send_signal(sig)
            return
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        os.kill(int(children.split()[0]), sig)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    where = short_dir(tmp_path)
    sock = NotifySocket(where / "notify.sock")
    yield sock
    sock.close()
    if where != tmp_path:
        shutil.rmtree(where, ignore_errors=True)


class AlertWebhook:
    """An HTTP server on 127.0.0.1 keeping every JSON POST: an apprise ``json://`` target."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self._server.server_address[1]}/riskd"

    def titles(self) -> list[str]:
        return [str(r.get("title", "")) for r in list(self.received)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def alert_webhook() -> Iterator[AlertWebhook]:
    hook = AlertWebhook()
    yield hook
    hook.close()


@pytest.fixture
def riskd_process() -> Iterator[Callable[..., RiskdProcess]]:
    """Makes ``RiskdProcess``es; any still running at the end is killed."""
    made: list[RiskdProcess] = []

    def make(
        config: Path, env: dict[str, str], log: Path, launcher: Sequence[str] = ()
    ) -> RiskdProcess:
        process = RiskdProcess(config, env, log, launcher)
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()


def unexpected_errors(log: str) -> list[str]:
    """ERROR/CRITICAL lines and tracebacks in riskd's log, but for alerts (a breach alert is
    CRITICAL by design)."""
    return [
        line
        for line in log.splitlines()
        if (" ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"))
        and " riskd.alerts ALERT " not in line
    ]
