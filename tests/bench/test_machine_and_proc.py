"""Machine details and the /proc readers the figures use (values only checked for shape)."""

from __future__ import annotations

import os

from riskd.bench.machine import machine
from riskd.bench.proc import ProcessClock, cpu_seconds, memory_kib


def test_machine_details_name_what_the_table_promises() -> None:
    text = "\n".join(machine().lines())
    for part in ("machine:", "cores", "os:", "python:", "riskd:", "websockets"):
        assert part in text


def test_proc_readers_read_this_process() -> None:
    memory = memory_kib()
    assert memory["VmHWM"] >= memory["VmRSS"] > 0
    assert cpu_seconds(os.getpid()) > 0
    clock = ProcessClock(os.getpid())
    clock.mark()
    assert clock.share() >= 0.0
