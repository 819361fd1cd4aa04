"""The benchmark run: start the simulator, create the fleets, measure, print, grade.

Figures run one after another (never two measured processes at once), so on a two-core machine
the measured process and the simulator each have a core; the benchmark process itself only
sleeps and reads answers while a window is measured.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from riskd.bench.context import FULL, QUICK, BenchContext, BenchSettings
from riskd.bench.fig_breach import run_breach_figure
from riskd.bench.fig_scale import run_scale_figure
from riskd.bench.fig_stream import run_stream_figures
from riskd.bench.fleet import create_fleet, plan_fleet, set_start_prices
from riskd.bench.machine import machine
from riskd.bench.report import Figure, exit_code, render_notes, render_table
from riskd.bench.simproc import SimControl, SimProcess

Progress = Callable[[str], None]


def _stderr_progress(message: str) -> None:
    print(f"riskd bench: {message}", file=sys.stderr, flush=True)


async def measure(
    settings: BenchSettings, log_dir: Path, progress: Progress = _stderr_progress
) -> tuple[list[Figure], dict[str, float]]:
    """Run every figure; returns them (in figure order) and how long each part took."""
    sim = SimProcess(settings.seed, log_dir / "sim.log")
    await sim.start()
    control = SimControl(sim.base_url, sim.api_key)
    ctx = BenchContext(settings, sim, control, log_dir)
    figures: list[Figure] = []
    try:
        began = time.monotonic()
        progress(
            f"creating {settings.accounts + settings.scale_accounts:,} accounts on the "
            f"simulator (pid {sim.pid})"
        )
        await set_start_prices(control)
        stream_ids = await create_fleet(
            control, plan_fleet(settings.accounts, settings.positions, settings.seed)
        )
        scale_ids = await create_fleet(
            control, plan_fleet(settings.scale_accounts, settings.scale_positions, settings.seed)
        )
        ctx.timings["setup"] = time.monotonic() - began

        began = time.monotonic()
        progress("figures 1, 2, 5: throughput, latency, accuracy (riskd, then the bare loop)")
        figures += await run_stream_figures(ctx, stream_ids)
        ctx.timings["figures 1, 2, 5"] = time.monotonic() - began

        began = time.monotonic()
        progress("figure 3: breach reaction (riskd and the polling monitor)")
        figures.append(await run_breach_figure(ctx))
        ctx.timings["figure 3"] = time.monotonic() - began

        await set_start_prices(control)
        began = time.monotonic()
        progress(f"figure 4: {settings.scale_accounts:,} accounts in one riskd process")
        figures.append(await run_scale_figure(ctx, scale_ids))
        ctx.timings["figure 4"] = time.monotonic() - began
    finally:
        await control.aclose()
        await sim.stop()
    return sorted(figures, key=lambda f: f.number), ctx.timings


def report(
    figures: list[Figure], timings: dict[str, float], settings: BenchSettings, out: TextIO
) -> int:
    """Print machine details, the table and the notes; returns the exit code."""
    title = "riskd bench" + (" --quick (smoke run: figures are not meaningful)" * settings.quick)
    print(title, file=out)
    for line in machine().lines():
        print(f"  {line}", file=out)
    print(
        "  setup:   simulator (riskd sim) and each measured process in separate processes, "
        "127.0.0.1 only",
        file=out,
    )
    print("", file=out)
    print(render_table(figures), file=out)
    print("", file=out)
    print("How each figure was measured:", file=out)
    print(render_notes(figures), file=out)
    total = sum(timings.values())
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
    print(f"\nTook {total:.0f} s ({parts}).", file=out)
    code = exit_code(figures)
    verdict = "no figure missed its target by more than 2x" if code == 0 else (
        "a figure missed its target by more than 2x or was not measured: exit 1"
    )  # fmt: skip
    print(verdict, file=out, flush=True)
    return code


def run_bench(*, quick: bool = False, log_dir: Path | None = None, out: TextIO = sys.stdout) -> int:
    """``riskd bench``: measure, print, and return the exit code.

    Logs of the simulator and of each measured process go to ``log_dir`` (default: a temporary
    directory, removed afterwards unless a figure failed).
    """
    settings = QUICK if quick else FULL
    keep = log_dir is not None
    directory = log_dir if log_dir is not None else Path(tempfile.mkdtemp(prefix="riskd-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    figures, timings = asyncio.run(measure(settings, directory))
    code = report(figures, timings, settings, out)
    if any(f.error is not None for f in figures):
        keep = True
    if keep:
        print(f"logs: {directory}", file=out)
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return code
