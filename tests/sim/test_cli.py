"""``riskd sim`` as a user runs it: a subprocess on a free loopback port."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

BANNER_END = "Press Ctrl-C to stop."


def read_banner(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """Lines of stdout up to the banner's last line (a reader thread keeps us unblocked)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if line is None:
            pytest.fail("riskd sim exited before printing its banner:\n" + "".join(seen))
        seen.append(line)
        if line.strip() == BANNER_END:
            return "".join(seen)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603  (our own interpreter, constant test arguments)
        [sys.executable, "-m", "riskd", "sim", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def running(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill the process if the test did not end it, and close its pipes."""
    with proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def sim_process() -> Iterator[subprocess.Popen[str]]:
    with running(start("--tick-rate", "0", "--seed", "5")) as proc:
        yield proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_riskd_sim_prints_its_banner_serves_and_exits_cleanly(
    sim_process: subprocess.Popen[str], sig: signal.Signals
) -> None:
    banner = read_banner(sim_process)
    base_url = re.search(r"base URL:\s+(http://127\.0\.0\.1:\d+)", banner)
    account = re.search(r"demo account:\s+([0-9a-f-]{36})", banner)
    assert base_url is not None and account is not None, banner
    assert f"stream URL:   ws://127.0.0.1:{base_url[1].rsplit(':', 1)[1]}/stream" in banner
    assert "API key:      sim-key" in banner
    assert "from riskd.api2trade import Api2TradeClient" in banner
    assert f'Api2TradeClient(api_key="sim-key", base_url="{base_url[1]}")' in banner
    assert f'client.accounts.summary("{account[1]}")' in banner

    headers = {"x-api-key": "sim-key"}
    positions = httpx.get(f"{base_url[1]}/Positions", params={"id": account[1]}, headers=headers)
    assert {(p["symbol"], p["type"]) for p in positions.json()} == {
        ("EURUSD", "buy"),
        ("XAUUSD", "sell"),
    }

    sim_process.send_signal(sig)
    assert sim_process.wait(10) == 0
    assert sim_process.stderr is not None
    assert "Traceback" not in sim_process.stderr.read()


def test_riskd_sim_without_demo_account() -> None:
    with running(start("--no-demo-account", "--api-key", "k-123")) as proc:
        banner = read_banner(proc)
        assert "demo account" not in banner
        assert "API key:      k-123" in banner
        assert "client.accounts.register(" in banner
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
