"""The SQLite store: rule states round-trip, the journal claims an episode once, and a
committed write survives kill -9 of the writing process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from riskd.engine import RuleState
from riskd.store import StateInUseError, StateStore


def test_rule_states_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    state = RuleState(
        period_start=datetime(2026, 11, 24, 23, tzinfo=UTC),
        start_balance=100_000.0,
        start_equity=99_500.0,
        high_water=101_000.0,
        latched=True,
        latched_at=datetime(2026, 11, 25, 10, tzinfo=UTC),
    )
    store.save_rule_states("acc", {"daily": state, "max": RuleState()})
    store.close()
    again = StateStore(tmp_path / "s.sqlite")
    assert again.load_rule_states("acc") == {"daily": state, "max": RuleState()}
    assert again.load_rule_states("other") == {}


def test_flatten_episode_is_claimed_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    first = store.begin_flatten("acc", "daily@t1", "daily", "equity 94,000 vs 95,000")
    assert first is not None and first.status == "started"
    assert store.begin_flatten("acc", "daily@t1", "daily", "again") is None
    assert store.begin_flatten("acc", "daily@t2", "daily", "next day") is not None
    store.finish_flatten(first.id, "done", "flat")
    assert [r.status for r in store.flattens("acc")] == ["done", "started"]
    assert [r.episode for r in store.flattens(status="started")] == ["daily@t2"]


def test_alert_keys_are_claimed_once(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    assert store.claim_alert("acc:daily:breach:t1")
    assert not store.claim_alert("acc:daily:breach:t1")


WRITER = """
import sys, time
from riskd.engine import RuleState
from riskd.store import StateInUseError, StateStore
store = StateStore(sys.argv[1])
store.save_rule_states("acc", {"daily": RuleState(start_balance=12345.0, latched=True)})
store.begin_flatten("acc", "daily@t1", "daily", "breach")
print("committed", flush=True)
time.sleep(60)
"""


def test_committed_state_survives_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "committed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = StateStore(path)
    state = store.load_rule_states("acc")["daily"]
    assert state.start_balance == 12345.0 and state.latched
    assert [r.status for r in store.flattens("acc")] == ["started"]


_HOLD = """
import sys, time
from riskd.store import StateInUseError, StateStore
store = StateStore(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_process_cannot_open_the_state_while_one_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    holder = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(
            StateInUseError, match=rf"in use by another riskd process \(pid {holder.pid}\)"
        ):
            StateStore(path)
        # A reader beside the owner is fine.
        StateStore(path, readonly=True).close()
        # The lock goes with the process, even on kill -9.
        holder.kill()
        holder.wait()
        StateStore(path).close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
