"""riskd under systemd: sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING), SIGTERM and
SIGHUP (rule reload), on a real ``riskd run`` process against the simulator, and the reload's
rule-state semantics on an in-process service."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from riskd.config import load_config
from riskd.engine import INITIAL_STATE, parse_rules
from riskd.sdnotify import Notifier, watchdog_interval
from riskd.service import (
    ReloadRejected,
    Service,
    ServiceSettings,
    restart_needed,
    run_until_signalled,
    settings_from_config,
)
from riskd.shard import Shard
from riskd.sim import SimServer
from riskd.store import StateStore
from tests.daemon.conftest import (
    AlertWebhook,
    NotifySocket,
    RecordingAlerter,
    RiskdProcess,
    daemon_config,
    daemon_env,
    service_settings,
    short_dir,
    unexpected_errors,
    wait_until,
)

MAX_LOSS = """\
- name: max-loss
  kind: max_loss
  limit: {limit}
  action: lockout
  severity: critical
"""

MakeRiskd = Callable[..., RiskdProcess]


def _losing_account(sim: SimServer) -> str:
    """An account 600 USD down: 1 lot EURUSD bought at 1.09100, bid 1.08500."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0, open_price=1.09100)
    return account


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _stopped(messages: list[dict[str, str]]) -> bool:
    return any(m.get("STOPPING") == "1" for m in messages)


def _get(riskd: RiskdProcess, path: str) -> str:
    url = riskd.base_url() + path  # loopback, from riskd's own log line
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310
        text: str = answer.read().decode()
    return text


def _status(riskd: RiskdProcess) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_get(riskd, "/status"))
    return doc


def _floor(riskd: RiskdProcess, rule: str) -> float | None:
    rules = _status(riskd)["accounts"][0]["rules"]
    value = next(r for r in rules if r["name"] == rule).get("threshold")
    return None if value is None else float(value)


def _metric(riskd: RiskdProcess, sample: str) -> float:
    text = _get(riskd, "/metrics")
    line = next(x for x in text.splitlines() if x.startswith(sample + " "))
    return float(line.rsplit(" ", 1)[1])


@pytest.fixture
def riskd_on_sim(
    tmp_path: Path, sim: SimServer, notify_socket: NotifySocket, riskd_process: MakeRiskd
) -> Callable[..., RiskdProcess]:
    """Starts ``riskd run`` for one account and its rules as systemd would: NOTIFY_SOCKET,
    a 200 ms watchdog, the API key as a credentials file."""

    def start(account: str, rules: str, **env: str) -> RiskdProcess:
        config = daemon_config(tmp_path, sim, account, rules)
        environment = daemon_env(
            tmp_path,
            sim.api_key,
            NOTIFY_SOCKET=notify_socket.address,
            WATCHDOG_USEC="200000",
            **env,
        )
        riskd = riskd_process(config, environment, tmp_path / "riskd.log")
        riskd.start()
        return riskd

    return start


# -- sd_notify on a real process ------------------------------------------------------------


def test_systemd_hears_ready_status_watchdog_and_stopping(
    sim: SimServer, notify_socket: NotifySocket, riskd_on_sim: Callable[..., RiskdProcess]
) -> None:
    account = _losing_account(sim)
    riskd = riskd_on_sim(account, MAX_LOSS.format(limit=1000))

    messages = notify_socket.wait_for(lambda ms: any("READY" in m for m in ms))
    ready = notify_socket.index("READY", "1")
    starting = notify_socket.index("STATUS")
    assert messages[starting]["STATUS"] == "starting: polling 1 account once"
    assert starting < ready
    assert messages[ready]["STATUS"] == "watching 1 account, none in breach"
    # READY=1 comes once start() is done: every account was polled once by then.
    assert _status(riskd)["ready"] is True

    # Pinged from the event loop every WATCHDOG_USEC / 2 (100 ms), after READY too.
    notify_socket.wait_for(lambda ms: sum("WATCHDOG" in m for m in ms[ready:]) >= 5, 10)
    assert all(m["WATCHDOG"] == "1" for m in messages if "WATCHDOG" in m)

    # A breach shows in systemctl status.
    sim.set_price("EURUSD", 1.07900, 1.07910)  # -1,200: below the 99,000 floor
    notify_socket.wait_for(lambda ms: "watching 1 account, 1 in breach" in notify_socket.statuses())
    _wait(lambda: sim.positions(account) == [])  # the lockout flattened it

    riskd.signal(signal.SIGTERM)
    assert riskd.wait() == 0
    messages = notify_socket.wait_for(_stopped, 5)
    stopping = notify_socket.index("STOPPING", "1")
    assert stopping > ready
    assert messages[stopping]["STATUS"].startswith("stopping")
    assert all("READY" not in m for m in messages[stopping:])
    log = riskd.text()
    assert "stopping: finishing in-flight flattens and flushing state" in log
    assert unexpected_errors(log) == []
    assert sim.api_key not in log


def test_sigterm_during_start_up_stops_cleanly_without_ready(
    sim: SimServer, notify_socket: NotifySocket, riskd_on_sim: Callable[..., RiskdProcess]
) -> None:
    account = _losing_account(sim)
    # The first summary poll takes 1.5 s (within the client's 2 s timeout): start-up is still
    # running when SIGTERM comes.
    sim.faults.set_latency(1.5, path="/AccountSummary")
    riskd = riskd_on_sim(account, MAX_LOSS.format(limit=1000))
    notify_socket.wait_for(lambda ms: any(m.get("STATUS", "").startswith("starting") for m in ms))
    assert notify_socket.index("READY") == -1
    riskd.signal(signal.SIGTERM)

    assert riskd.wait() == 0
    notify_socket.wait_for(_stopped, 5)
    assert notify_socket.index("READY") == -1  # never said ready: it stopped instead
    assert unexpected_errors(riskd.text()) == []


async def test_watchdog_pings_come_from_the_event_loop(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter, notify_socket: NotifySocket
) -> None:
    """A blocked event loop stops the pings (so systemd kills and restarts riskd); they
    resume when it runs again."""
    account = _losing_account(sim)
    service = Service(service_settings(sim, tmp_path / "state.sqlite", account), alerter=alerter)
    env = {"NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "100000"}  # ping / 50 ms
    running = asyncio.create_task(run_until_signalled(service, notifier=Notifier(env)))
    try:
        await wait_until(lambda: notify_socket.index("READY", "1") >= 0)
        await wait_until(lambda: len(notify_socket.arrivals("WATCHDOG")) >= 3)
        blocked_at = time.monotonic()
        time.sleep(1.0)  # noqa: ASYNC251 - the point: a loop stuck in a blocking call
        unblocked_at = time.monotonic()
        # (A ping sent just before the block may still be read a little after it started.)
        pings = notify_socket.arrivals("WATCHDOG")
        during = [t for t in pings if blocked_at + 0.2 < t < unblocked_at]
        assert during == []
        await wait_until(lambda: notify_socket.arrivals("WATCHDOG")[-1] > unblocked_at)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert notify_socket.index("STOPPING", "1") > notify_socket.index("READY", "1")


# -- SIGHUP: rule reload on a real process --------------------------------------------------


def test_sighup_puts_a_changed_rule_in_force(
    tmp_path: Path,
    sim: SimServer,
    notify_socket: NotifySocket,
    riskd_on_sim: Callable[..., RiskdProcess],
) -> None:
    account = _losing_account(sim)  # -600: inside a 1,000 limit, beyond a 500 one
    riskd = riskd_on_sim(account, MAX_LOSS.format(limit=1000))
    notify_socket.wait_for(lambda ms: any("READY" in m for m in ms))
    assert _floor(riskd, "max-loss") == 99_000.0
    assert sim.positions(account) != []

    (tmp_path / "rules.yaml").write_text(MAX_LOSS.format(limit=500))
    riskd.signal(signal.SIGHUP)

    # systemd sees the reload start and end.
    notify_socket.wait_for(lambda ms: notify_socket.index("RELOADING", "1") >= 0)
    reloading = notify_socket.index("RELOADING", "1")
    assert "MONOTONIC_USEC" in notify_socket.messages[reloading]
    notify_socket.wait_for(lambda ms: any("READY" in m for m in ms[reloading:]), 10)
    # The new limit is in force: the -600 account is flattened, the floor moved.
    _wait(lambda: sim.positions(account) == [])
    assert _floor(riskd, "max-loss") == 99_500.0
    assert _metric(riskd, 'riskd_config_reloads_total{outcome="ok"}') == 1.0
    assert _metric(riskd, 'riskd_config_reloads_total{outcome="error"}') == 0.0
    assert f"config reloaded: account={account} rules changed max-loss" in riskd.text()

    riskd.signal(signal.SIGTERM)
    assert riskd.wait() == 0


def test_sighup_with_a_broken_rule_file_keeps_the_old_rules(
    tmp_path: Path,
    sim: SimServer,
    notify_socket: NotifySocket,
    alert_webhook: AlertWebhook,
    riskd_on_sim: Callable[..., RiskdProcess],
) -> None:
    account = _losing_account(sim)
    # The apprise target comes as a credentials file too (LoadCredential=RISKD_ALERTS__URLS).
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "RISKD_ALERTS__URLS").write_text(alert_webhook.url + "\n")
    riskd = riskd_on_sim(account, MAX_LOSS.format(limit=1000))
    notify_socket.wait_for(lambda ms: any("READY" in m for m in ms))

    rules = tmp_path / "rules.yaml"
    broken = MAX_LOSS.format(limit="lots")  # a schema error on line 3
    rules.write_text(broken)
    riskd.signal(signal.SIGHUP)

    log = riskd.wait_log(f"{rules}:3:")
    assert "config reload not applied, the running rules stay in force" in log
    line = next(x for x in log.splitlines() if f"{rules}:3:" in x)
    assert " ERROR " in line and "limit" in line
    # The alert reached the apprise target, and systemctl status says so.
    _wait(lambda: any("config reload not applied" in t for t in alert_webhook.titles()))
    notify_socket.wait_for(lambda ms: any("not applied" in s for s in notify_socket.statuses()))
    assert _metric(riskd, 'riskd_config_reloads_total{outcome="error"}') == 1.0
    assert _metric(riskd, 'riskd_config_reloads_total{outcome="ok"}') == 0.0

    # The old rule is still enforced: its floor, and a breach of it flattens.
    assert _floor(riskd, "max-loss") == 99_000.0
    assert sim.positions(account) != []
    sim.set_price("EURUSD", 1.07900, 1.07910)  # -1,200
    _wait(lambda: sim.positions(account) == [])

    riskd.signal(signal.SIGTERM)
    assert riskd.wait() == 0
    errors = unexpected_errors(riskd.text())
    assert [e for e in errors if "config reload" not in e] == []
    assert len(errors) == 2  # the summary and the problem line


# -- reload semantics, in process -----------------------------------------------------------


RULES_BEFORE = """\
- name: max-loss
  kind: max_loss
  limit: 1000
  action: lockout
  severity: critical
- name: lots-cap
  kind: exposure
  max_total_lots: 50
  action: alert
  severity: warning
"""

RULES_AFTER = """\
- name: max-loss
  kind: max_loss
  limit: 5000
  action: lockout
  severity: critical
- name: margin
  kind: margin_level
  below: 50%
  action: alert
  severity: warning
"""


async def _latched_service(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> tuple[Service, str]:
    account = _losing_account(sim)
    settings = service_settings(sim, tmp_path / "state.sqlite", account, RULES_BEFORE)
    service = Service(settings, alerter=alerter)
    await service.start()
    book = service.books[account]
    sim.set_price("EURUSD", 1.07900, 1.07910)  # -1,200: max-loss latches and flattens
    await wait_until(lambda: book.states.get("max-loss", INITIAL_STATE).latched)
    await wait_until(lambda: "flatten_done" in alerter.events())  # not busy closing any more
    await wait_until(lambda: "lots-cap" in book.states)
    return service, account


def _reloads(service: Service, outcome: str) -> float | None:
    registry = service.metrics.registry
    return registry.get_sample_value("riskd_config_reloads_total", {"outcome": outcome})


def _with_rules(settings: ServiceSettings, rules: str) -> ServiceSettings:
    return replace(
        settings,
        accounts=tuple(replace(a, rules=tuple(parse_rules(rules))) for a in settings.accounts),
    )


async def test_reload_keeps_states_by_rule_name(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    service, account = await _latched_service(sim, tmp_path, alerter)
    try:
        book = service.books[account]
        latched = book.states["max-loss"]

        changes = await service.replace_rules(_with_rules(service.settings, RULES_AFTER))

        assert [(c.added, c.removed, c.changed) for c in changes] == [
            (("margin",), ("lots-cap",), ("max-loss",))
        ]
        assert [r.name for r in book.info.rules] == ["max-loss", "margin"]
        # Still latched, with its episode, although -1,200 is inside the new 5,000 limit.
        assert book.states["max-loss"].latched
        assert book.states["max-loss"].latched_at == latched.latched_at
        assert "lots-cap" not in book.states
        assert "margin" in book.states  # evaluated at once, from a fresh state
        assert book.evaluation is not None
        assert [v.rule for v in book.evaluation.verdicts] == ["max-loss", "margin"]
        # The lockout holds: a position opened now is closed.
        late = sim.open_position(account, "EURUSD", "buy", 0.1)
        await wait_until(lambda: late not in {p["ticket"] for p in sim.positions(account)})
        # Removed rules are reset in the store as well, so a restart agrees.
        await service.watcher.flush(book)
        stored = await service.store.load_rule_states(account)
        assert stored["lots-cap"] == INITIAL_STATE
        assert stored["max-loss"].latched
        assert "rule_removed" not in alerter.events()  # lots-cap was not latched
    finally:
        await service.stop()


async def test_removing_a_latched_rule_ends_its_lockout_and_says_so(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    service, account = await _latched_service(sim, tmp_path, alerter)
    try:
        book = service.books[account]
        # max-loss goes, a looser loss rule under another name comes (fresh: not latched,
        # and -1,200 is inside its 5,000).
        other = MAX_LOSS.format(limit=5000).replace("max-loss", "other-loss")
        changes = await service.replace_rules(_with_rules(service.settings, other))
        assert changes[0].unlatched == ("max-loss",)
        removed = [a for a in alerter.alerts if a.event == "rule_removed"]
        assert [(a.rule, a.severity, a.ongoing) for a in removed] == [
            ("max-loss", "critical", False)
        ]
        # Nothing is latched any more: a new position stays open.
        assert not book.states["other-loss"].latched
        kept = sim.open_position(account, "EURUSD", "buy", 0.01)
        polled = sim.requests.count(path="/Positions")
        await wait_until(lambda: sim.requests.count(path="/Positions") >= polled + 3)
        assert kept in {p["ticket"] for p in sim.positions(account)}
    finally:
        await service.stop()


def test_restart_needed_names_every_setting_but_rules(sim: SimServer, tmp_path: Path) -> None:
    account = sim.create_account()
    old = service_settings(sim, tmp_path / "state.sqlite", account)
    spec = old.accounts[0]
    assert restart_needed(old, _with_rules(old, RULES_AFTER)) == []
    new = replace(
        old,
        max_concurrent_requests=3,
        accounts=(replace(spec, initial_balance=50_000.0, dry_run=True),
                  replace(spec, id=str(uuid.uuid4()))),
    )  # fmt: skip
    problems = restart_needed(old, new)
    assert problems == [
        "polling.max_concurrent_requests: changed",
        f"accounts: {new.accounts[1].id} added",
        f"accounts: {account}: initial_balance: changed",
        f"accounts: {account}: dry_run: changed",
    ]
    secret = "k-" + uuid.uuid4().hex
    client = old.client.model_copy(update={"api_key": SecretStr(secret)})
    assert restart_needed(old, replace(old, client=client)) == [
        "bridge (or its API2TRADE_* variables and credentials): changed"
    ]


async def test_reload_needing_a_restart_is_rejected_and_changes_nothing(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account = _losing_account(sim)
    config = daemon_config(tmp_path, sim, account, RULES_BEFORE)
    env = {"API2TRADE_API_KEY": sim.api_key}
    service = Service(settings_from_config(load_config(config, env)), alerter=alerter)
    await service.start()
    try:
        book = service.books[account]
        rules = book.info.rules
        # New rules *and* a new initial balance: all or nothing, so nothing.
        (tmp_path / "rules.yaml").write_text(RULES_AFTER)
        config.write_text(
            config.read_text().replace("initial_balance: 100000", "initial_balance: 1")
        )

        def load() -> ServiceSettings:
            return settings_from_config(load_config(config, env))

        assert await service.reload(load) is False
        assert book.info.rules is rules
        with pytest.raises(ReloadRejected):
            await service.replace_rules(load())
        failed = [a for a in alerter.alerts if a.event == "config_reload_failed"]
        assert len(failed) == 1
        assert f"accounts: {account}: initial_balance: changed" in failed[0].body
        assert failed[0].severity == "warning"
        assert service.reload_failure is not None
        assert "settings other than rules changed" in service.status_line()
        assert _reloads(service, "error") == 1.0

        # Put the balance back: the same rules now reload, and the status line clears.
        config.write_text(
            config.read_text().replace("initial_balance: 1\n", "initial_balance: 100000\n")
        )
        assert await service.reload(load) is True
        assert [r.name for r in book.info.rules] == ["max-loss", "margin"]
        assert service.reload_failure is None
        assert _reloads(service, "ok") == 1.0
    finally:
        await service.stop()


async def test_reload_of_a_yaml_syntax_error_logs_file_and_line(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter, caplog: pytest.LogCaptureFixture
) -> None:
    account = sim.create_account()
    config = daemon_config(tmp_path, sim, account, RULES_BEFORE)
    env = {"API2TRADE_API_KEY": sim.api_key}
    service = Service(settings_from_config(load_config(config, env)), alerter=alerter)
    await service.start()
    try:
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES_BEFORE + "- name: [unclosed\n")
        with caplog.at_level(logging.ERROR, logger="riskd"):
            ok = await service.reload(lambda: settings_from_config(load_config(config, env)))
        assert ok is False
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(f"{rules}:11:" in e or f"{rules}:12:" in e for e in errors), errors
        assert [r.name for r in service.books[account].info.rules] == ["max-loss", "lots-cap"]
        assert alerter.events().count("config_reload_failed") == 1
        assert sim.api_key not in "\n".join(errors) + alerter.alerts[-1].body
    finally:
        await service.stop()


async def test_status_line_names_the_shard_and_a_refused_reload(
    sim: SimServer, tmp_path: Path, alerter: RecordingAlerter
) -> None:
    account = sim.create_account()
    settings = service_settings(sim, tmp_path / "state.sqlite", account)
    service = Service(replace(settings, shard=Shard(index=1, count=3)), alerter=alerter)
    try:
        assert service.status_line() == "shard 1 of 3: watching 1 account, none in breach"
        assert await service.reload(lambda: replace(settings, max_concurrent_requests=1)) is False
        assert service.status_line().startswith("shard 1 of 3: watching 1 account, none in ")
        assert service.status_line().endswith(" not applied (settings other than rules changed)")
    finally:
        await service.stop()


# -- the notifier ---------------------------------------------------------------------------


def test_notifier_is_silent_without_notify_socket() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None  # no socket: no watchdog to feed
    assert notifier.ready("x") is False


def test_notifier_speaks_to_an_abstract_socket() -> None:
    name = f"riskd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready("watching 2 accounts\nin breach") is True
        assert server.recv(4096) == b"READY=1\nSTATUS=watching 2 accounts in breach"
        assert notifier.stopping("bye") is True
        assert server.recv(4096) == b"STOPPING=1\nSTATUS=bye"
        notifier.close()


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert (
        watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    )
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_notifier_never_blocks_or_raises(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="riskd.sdnotify")
    with NotifySocketFull(short_dir(tmp_path)) as path:
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        started = time.monotonic()
        results = [notifier.status("x" * 1000) for _ in range(5000)]
        assert time.monotonic() - started < 5  # never waited for the reader
        assert results[0] is True and results[-1] is False  # the queue filled up: dropped
    # The socket is gone now: still no exception, and one log line for the whole outage.
    assert notifier.watchdog() is False
    assert notifier.watchdog() is False
    notifier.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len([x for x in lines if "not delivered" in x]) == 1, lines


class NotifySocketFull:
    """A notification socket nobody reads: its queue fills up."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "full.sock"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def __enter__(self) -> Path:
        self._sock.bind(str(self.path))
        return self.path

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        self.path.unlink()


def test_store_keeps_reset_states_readable(tmp_path: Path) -> None:
    # A rule reset by a reload is stored as the initial state; reading it back at a restart
    # must give exactly that (fresh), not a missing or half-filled state.
    store = StateStore(tmp_path / "s.sqlite")
    try:
        store.save_rule_states("acc", {"gone": INITIAL_STATE})
        assert store.load_rule_states("acc") == {"gone": INITIAL_STATE}
    finally:
        store.close()
