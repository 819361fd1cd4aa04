"""``riskd run`` as a real process: kill -9 and restart keep the baseline and the latch, never
flatten twice, and finish a flatten that was interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from riskd.api2trade import Api2TradeClient
from riskd.sim import SimServer
from riskd.store import StateStore

RULES = """
- name: daily
  kind: daily_loss
  baseline: balance
  limit: 1000
  reset: {at: "00:00", zone: Europe/Prague}
  action: lockout
"""


def _config(tmp: Path, sim: SimServer, account: str) -> Path:
    (tmp / "rules.yaml").write_text(RULES)
    path = tmp / "riskd.yaml"
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
  job_timeout: 2s
enforcement:
  flat_timeout: 20s
accounts:
  - id: {account}
    name: Restart test
    initial_balance: 100000
    rules: [rules.yaml]
"""
    )
    return path


class Daemon:
    """``python -m riskd run`` in a subprocess."""

    def __init__(self, config: Path, api_key: str) -> None:
        self.config = config
        self.env = {**os.environ, "API2TRADE_API_KEY": api_key}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "riskd", "--log-level", "WARNING", "run", "--config",
             str(self.config)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=15)
        return self.proc.returncode


@pytest.fixture
def daemon(tmp_path: Path, sim: SimServer) -> Iterator[Callable[[str], Daemon]]:
    made: list[Daemon] = []

    def make(account: str) -> Daemon:
        d = Daemon(_config(tmp_path, sim, account), sim.api_key)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            d.kill9()


def _wait(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _closes(sim: SimServer) -> Counter[int]:
    return Counter(r.body["ticket"] for r in sim.requests.records(path="/OrderClose"))


def _polled(sim: SimServer, n: int) -> Callable[[], bool]:
    start = sim.requests.count(path="/AccountSummary")
    return lambda: sim.requests.count(path="/AccountSummary") >= start + n


def test_kill_9_keeps_baseline_and_latch_and_never_flattens_twice(
    sim: SimServer, tmp_path: Path, daemon: Callable[[str], Daemon]
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    loser = sim.open_position(account, "EURUSD", "buy", 1.0)
    other = sim.open_position(account, "EURUSD", "buy", 0.5)
    riskd = daemon(account)
    riskd.start()
    # Looked at beside the daemon, which holds the state (a second writer is refused).
    _wait(_polled(sim, 1))  # the daemon made its store before its first poll
    store = StateStore(tmp_path / "state.sqlite", readonly=True)
    _wait(lambda: "daily" in store.load_rule_states(account))
    baseline = store.load_rule_states(account)["daily"]
    assert baseline.start_balance == 100_000.0

    # A losing trade closes mid-day: the day-start balance must not follow it down.
    sim.set_price("EURUSD", 1.08100, 1.08110)  # -40 pips: -400 on 1 lot, -200 on 0.5
    with Api2TradeClient(api_key=sim.api_key, base_url=sim.base_url) as trader:
        trader.orders.close(account, loser)
    riskd.kill9()
    riskd.start()
    _wait(_polled(sim, 5))
    after = store.load_rule_states(account)["daily"]
    assert after.start_balance == 100_000.0
    assert after.period_start == baseline.period_start

    # Breach: 100,000 - 400 - (0.5 lot: 160 pips) = 98,800 < floor 99,000.
    sim.set_price("EURUSD", 1.06500, 1.06510)
    _wait(lambda: sim.positions(account) == [])
    _wait(lambda: [r.status for r in store.flattens(account)] == ["done"])
    assert _closes(sim)[other] == 1

    riskd.kill9()
    riskd.start()
    _wait(_polled(sim, 5))
    assert _closes(sim)[other] == 1  # not flattened again
    assert store.load_rule_states(account)["daily"].latched

    # The latch survived the restart: a new position is closed by the lockout.
    late = sim.open_position(account, "EURUSD", "buy", 0.1)
    _wait(lambda: sim.positions(account) == [])
    assert _closes(sim)[late] == 1
    assert riskd.stop() == 0


def test_restart_finishes_an_interrupted_flatten(
    sim: SimServer, tmp_path: Path, daemon: Callable[[str], Daemon]
) -> None:
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    ticket = sim.open_position(account, "EURUSD", "buy", 1.0)
    riskd = daemon(account)
    riskd.start()
    # Looked at beside the daemon, which holds the state (a second writer is refused).
    _wait(_polled(sim, 1))  # the daemon made its store before its first poll
    store = StateStore(tmp_path / "state.sqlite", readonly=True)
    _wait(lambda: "daily" in store.load_rule_states(account))

    sim.faults.hang_next(5, seconds=60.0, path="/OrderClose")  # the close never answers
    sim.set_price("EURUSD", 1.07000, 1.07010)
    _wait(lambda: sim.requests.count(path="/OrderClose") >= 1)
    assert [r.status for r in store.flattens(account)] == ["started"]
    riskd.kill9()
    sim.faults.reset()

    riskd.start()
    _wait(lambda: sim.positions(account) == [])
    _wait(lambda: [r.status for r in store.flattens(account)] == ["done"])
    assert ticket not in {p["ticket"] for p in sim.positions(account)}
    assert riskd.stop() == 0


def test_bad_rule_file_stops_start_up_with_file_line(sim: SimServer, tmp_path: Path) -> None:
    account = sim.create_account()
    config = _config(tmp_path, sim, account)
    (tmp_path / "rules.yaml").write_text(RULES.replace("limit: 1000", "limit: lots"))
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "riskd", "run", "--config", str(config)],
        env={**os.environ, "API2TRADE_API_KEY": "k"}, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{tmp_path / 'rules.yaml'}:5:" in result.stderr
    assert "Traceback" not in result.stderr
