"""``riskd bench`` on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_bench_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``riskd bench`` on the ``riskd`` command line."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark riskd against the simulator on this machine (about 2-3 minutes)",
        description=(
            "Start the bridge simulator and riskd as separate processes on 127.0.0.1 and "
            "print one table: tick throughput vs a bare websockets loop, tick-to-decision "
            "latency, breach reaction vs a 10 s polling monitor, CPU and memory with 1,000 "
            "accounts, and estimate accuracy, each with its target. Exits 1 when a figure "
            "misses its target by more than 2x or could not be measured."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short smoke run of the same machinery (seconds; figures are not meaningful)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="keep the simulator's and riskd's logs here (default: a temporary directory, "
        "kept only when a figure fails)",
    )
    parser.set_defaults(handler=run_bench_command)


def run_bench_command(args: argparse.Namespace) -> int:
    """The ``riskd bench`` command; returns its exit code."""
    from riskd.bench.run import run_bench

    code: int = run_bench(quick=args.quick, log_dir=args.log_dir)
    return code
