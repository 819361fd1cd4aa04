"""``riskd bench``: the benchmark of the real-time guard (issue 4, "The benchmark").

It starts the bridge simulator and riskd as separate processes on this machine (loopback only)
and prints one table of five figures, each measured side by side with its baseline in the same
run: tick throughput against a bare websockets loop, tick-to-decision latency, breach reaction
against a 10 s polling monitor, CPU and memory at 1,000 accounts, and estimate accuracy.
The top-level README's "Benchmark" section says how each figure is measured.

Layout: :mod:`~riskd.bench.run` orchestrates; :mod:`~riskd.bench.simproc` runs and drives the
simulator process; :mod:`~riskd.bench.worker` is the measured process (riskd or the bare loop),
driven by :mod:`~riskd.bench.proc`; :mod:`~riskd.bench.stats` and :mod:`~riskd.bench.report`
turn numbers into the table and the exit code.
"""
