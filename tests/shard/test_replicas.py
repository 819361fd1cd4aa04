"""Three real ``riskd run`` processes share 300 accounts on one simulator: each account is
watched by exactly one, each breach is flattened exactly once, and going to four replicas
moves about a quarter of the accounts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from riskd.sim import SimServer

ACCOUNTS = 300
BREACHED = 12
RULES = """
- name: floor
  kind: max_loss
  limit: 1000
  action: close_all
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Replica:
    """One ``riskd run`` with its own state directory and HTTP port."""

    def __init__(self, tmp: Path, sim: SimServer, accounts: list[str], index: int, count: int):
        self.index = index
        state = tmp / f"replica-{index}"
        state.mkdir(exist_ok=True)
        self.port = _free_port()
        listing = "".join(
            f"  - id: {a}\n    name: acct {n}\n    initial_balance: 100000\n"
            f"    rules: [{tmp / 'rules.yaml'}]\n"
            for n, a in enumerate(accounts)
        )
        config = state / f"riskd-{count}.yaml"
        config.write_text(
            f"bridge:\n  base_url: {sim.base_url}\n  timeout: 5s\n"
            f"state:\n  path: {state / 'state.sqlite'}\n"
            "polling:\n  summary_interval: 2s\n  positions_interval: 4s\n  start_jitter: 1s\n"
            "  job_timeout: 5s\n"
            "stream:\n  enabled: false\n"
            f"http:\n  listen: 127.0.0.1:{self.port}\n"
            f"accounts:\n{listing}"
        )
        env = {
            **os.environ,
            "API2TRADE_API_KEY": sim.api_key,
            "RISKD_SHARD_INDEX": str(index),
            "RISKD_SHARD_COUNT": str(count),
        }
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "riskd", "--log-level", "WARNING", "run", "--config",
             str(config)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def status(self) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.port}/status"
            with urllib.request.urlopen(url, timeout=2) as answer:
                document: dict[str, Any] = json.load(answer)
                return document
        except OSError:
            return None

    def watched(self) -> set[str]:
        document = self.status()
        assert document is not None and document["ready"]
        assert document["shard"] == {"index": self.index, "count": document["shard"]["count"]}
        return {a["id"] for a in document["accounts"]}

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"replica {self.index} exited {self.proc.returncode}"
        document = self.status()
        return document is not None and bool(document["ready"])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=30)
        return self.proc.returncode


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    made: list[Replica] = []
    yield made
    for r in made:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


@pytest.mark.timeout(180)
def test_replicas_split_the_accounts_and_flatten_each_breach_once(
    sim: SimServer, tmp_path: Path, replicas: list[Replica]
) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    accounts = [sim.create_account(balance=100_000.0) for _ in range(ACCOUNTS)]
    tickets = {a: sim.open_position(a, "EURUSD", "buy", 0.1) for a in accounts}

    def start(count: int) -> list[Replica]:
        started = [Replica(tmp_path, sim, accounts, i, count) for i in range(count)]
        replicas.extend(started)
        _wait(lambda: all(r.ready() for r in started), 90, f"{count} replicas to be ready")
        return started

    three = start(3)
    owners = {}
    for replica in three:
        for account in replica.watched():
            assert account not in owners, f"{account} watched by two replicas"
            owners[account] = replica.index
    assert set(owners) == set(accounts)
    assert all(60 <= n <= 140 for n in Counter(owners.values()).values())

    breached = accounts[:BREACHED]
    for account in breached:
        sim.set_balance(account, 98_000.0)  # equity ~98,000: under the 99,000 floor

    def closes() -> Counter[int]:
        return Counter(r.body["ticket"] for r in sim.requests.records(path="/OrderClose"))

    _wait(lambda: len(closes()) == BREACHED, 60, "every breached account to be flattened")
    assert set(closes()) == {int(tickets[a]) for a in breached}
    assert all(n == 1 for n in closes().values()), closes()

    assert [r.stop() for r in three] == [0, 0, 0]

    four = start(4)
    moved = 0
    seen: set[str] = set()
    for replica in four:
        watched = replica.watched()
        assert not watched & seen, "an account is watched by two replicas"
        seen |= watched
        moved += sum(1 for a in watched if owners[a] != replica.index)
    assert seen == set(accounts)
    assert 0.15 * ACCOUNTS <= moved <= 0.35 * ACCOUNTS, moved  # about a quarter
    # Moving breached accounts to a new replica did not flatten them again.
    assert all(n == 1 for n in closes().values()), closes()
    assert [r.stop() for r in four] == [0, 0, 0, 0]
