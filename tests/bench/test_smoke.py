"""``riskd bench --quick`` end to end: simulator and workers in their own processes.

Checks the machinery (processes start and answer, every figure is measured, one table with
machine details is printed, the exit code follows the grades), never the figures themselves:
timings are the benchmark's job, not a pass/fail test's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from riskd.bench.fig_stream import NOT_KEPT_UP
from riskd.cli import _build_parser


def test_the_command_is_registered() -> None:
    args = _build_parser().parse_args(["bench", "--quick", "--log-dir", "bench-logs"])
    assert args.quick is True
    assert args.log_dir == Path("bench-logs")
    assert callable(args.handler)


def test_quick_run_prints_one_graded_table(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
        [sys.executable, "-m", "riskd", "bench", "--quick", "--log-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    out = done.stdout
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert out.startswith("riskd bench --quick")
    for detail in ("machine:", "os:", "python:", "riskd:"):
        assert re.search(rf"^  {detail}", out, re.MULTILINE), detail
    rows = re.findall(r"^([1-5])  \| ", out, re.MULTILINE)
    assert rows == ["1", "2", "3", "4", "5"]
    # Every figure was measured; only figure 1 may say a consumer never kept up (a slow
    # machine in a smoke run), which is a result, not a broken bench.
    for line in re.findall(r"not measured: (.*?)\s*\|", out):
        assert NOT_KEPT_UP in line, out
    grades = re.findall(r"\| (pass|fail|MISS >2x|ERROR)\s*$", out, re.MULTILINE)
    missed = any(g in ("MISS >2x", "ERROR") for g in grades)
    assert done.returncode == (1 if missed else 0)
    assert "How each figure was measured:" in out
    assert (tmp_path / "sim.log").exists()
    assert (tmp_path / "stream-riskd.log").exists()
