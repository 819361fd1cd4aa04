"""Figures 1, 2 and 5: throughput, latency and accuracy on the stream fleet.

One riskd worker watches the fleet (100 accounts x 10 positions) with streaming on. Rates are
*delivered* ticks per second summed over the accounts' streams: each random-walk tick moves one
of the simulator's 14 symbols (chosen uniformly) and reaches every stream subscribed to it, so
the walk runs at ``rate / fanout`` with ``fanout = subscriptions / 14``, read from the
subscriptions riskd actually made. In order:

5. accuracy, with the walk at an ordinary market rate (``market_rate``, 2 ticks per symbol per
   second): rounds of "every account's estimate next to a fresh ``/AccountSummary``", with the
   walk running, then with it paused for a moment;
2. latency: the walk at ``latency_rate`` (10,000/s); riskd's tick observer records
   ``decided - received`` of every tick in the window;
1. throughput: the rate is raised in steps of x1.25 until riskd stops keeping up (see
   :func:`keeps_up`); the figure is riskd's ticks per CPU-second at the highest step it kept up
   with.

Then a bare websockets loop (its own process) opens the same connections and subscriptions and
is measured at the latency rate (figure 2's side by side) and at the most the simulator can
send, which the bare loop keeps up with; its ticks per CPU-second there is figure 1's baseline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from riskd.bench import fmt
from riskd.bench.context import BenchContext
from riskd.bench.fleet import RULES_YAML, SYMBOLS
from riskd.bench.proc import WorkerError, WorkerProcess
from riskd.bench.report import Check, Figure, Target
from riskd.bench.simproc import SimError
from riskd.bench.stats import Distribution

KEEP_UP_AGE = 0.1
"""A consumer keeps up while the p99 age of its ticks when handled (now minus the simulator's
time stamp) stays under this many seconds; falling behind makes the age grow without bound."""
KEEP_UP_SHARE = 0.9
"""...and while it handles at least this share of the rate it was sent."""
RAMP_FACTOR = 1.25
SATURATED = 0.9
"""CPU share from which a consumer counts as saturated: below it, whatever stopped it keeping
up was the simulator, and its ticks per CPU-second is only a lower bound of its capacity."""
NOT_KEPT_UP = "kept up at no rate tried"
"""Figure 1's error when a consumer fell behind at every rate of its ramp."""

_FREEZE_SETTLE = 0.3  # after pausing the walk: ticks in flight land before sampling
_DRAIN = 2.0  # after a step riskd could not keep up with: let its backlog drain


@dataclass(slots=True)
class Window:
    """One measurement window of a worker."""

    ticks: int
    wall: float
    cpu: float
    latency: Distribution | None = None
    age: Distribution | None = None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Window:
        latency, age = answer.get("latency"), answer.get("age")
        return cls(
            ticks=int(answer["ticks"]),
            wall=float(answer["wall"]),
            cpu=float(answer["cpu"]),
            latency=Distribution.from_json(latency) if latency else None,
            age=Distribution.from_json(age) if age else None,
        )

    @property
    def rate(self) -> float:
        """Ticks handled per wall second."""
        return self.ticks / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_share(self) -> float:
        """CPU seconds per wall second (1.0: one full core)."""
        return self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def per_cpu_second(self) -> float:
        """Ticks per CPU-second: what the process sustains on the one core asyncio uses."""
        return self.ticks / self.cpu if self.cpu > 0 else 0.0


def keeps_up(window: Window, sent: float | None) -> bool:
    """True when the consumer kept up: young ticks, and (when known) most of what was sent."""
    if window.age is None or window.age.p99 >= KEEP_UP_AGE:
        return False
    return sent is None or window.rate >= KEEP_UP_SHARE * sent


@dataclass(slots=True)
class _Accuracy:
    live: list[float] = field(default_factory=list)
    frozen: list[float] = field(default_factory=list)
    last_poll: list[float] = field(default_factory=list)
    missing: int = 0
    rounds: int = 0

    def add(self, answer: dict[str, Any], *, frozen: bool) -> None:
        self.missing += int(answer["missing"])
        for estimate, last, fresh in answer["triples"]:
            error = abs(estimate - fresh) / abs(fresh)
            if frozen:
                self.frozen.append(error)
            else:
                self.live.append(error)
                self.last_poll.append(abs(last - fresh) / abs(fresh))


@dataclass(slots=True)
class _RiskdRun:
    subscriptions: dict[str, list[str]]
    fanout: float
    latency: Window
    accuracy: _Accuracy
    accuracy_rate: float  # ticks/s delivered while accuracy was sampled
    steps: list[tuple[float, Window]]  # (rate sent, window), from the latency window on
    best: Window | None  # the highest step riskd kept up with

    def walk(self, rate: float) -> float:
        """The random-walk rate that delivers ``rate`` ticks/s over these subscriptions."""
        return rate / self.fanout


@dataclass(slots=True)
class _BareRun:
    latency: Window
    steps: list[tuple[float, Window]]
    best: Window | None


async def _window(
    ctx: BenchContext,
    worker: WorkerProcess,
    walk: float,
    *,
    settle: float,
    seconds: float,
    latency: bool = False,
) -> Window:
    await ctx.control.set_tick_rate(walk)
    await asyncio.sleep(settle)
    answer = await worker.request("window", seconds=seconds, latency=latency, timeout=seconds + 90)
    return Window.of(answer)


async def _accuracy(ctx: BenchContext, worker: WorkerProcess, walk: float) -> _Accuracy:
    result = _Accuracy()
    for _ in range(ctx.settings.accuracy_rounds):
        await ctx.control.set_tick_rate(walk)
        await asyncio.sleep(ctx.settings.accuracy_gap)
        result.add(await worker.request("accuracy"), frozen=False)
        await ctx.control.set_tick_rate(0)
        await asyncio.sleep(_FREEZE_SETTLE)
        result.add(await worker.request("accuracy"), frozen=True)
        result.rounds += 1
    return result


async def _ramp(
    ctx: BenchContext,
    worker: WorkerProcess,
    fanout: float,
    first: tuple[float, Window],
    *,
    max_walk: float,
) -> tuple[list[tuple[float, Window]], Window | None]:
    """Steps of x``RAMP_FACTOR`` from a first window: up while the consumer keeps up, or down
    until it does. Returns every (rate sent, window) and the highest window it kept up with."""
    s = ctx.settings
    steps = [first]
    rate, window = first
    up = keeps_up(window, rate)
    best = window if up else None
    while len(steps) <= s.ramp_steps:
        if up:
            rate *= RAMP_FACTOR
            if rate / fanout > max_walk:
                break
        else:
            # A consumer that fell behind has a backlog: let it drain before the next step.
            await ctx.control.set_tick_rate(0)
            await asyncio.sleep(_DRAIN)
            rate /= RAMP_FACTOR
        window = await _window(
            ctx, worker, rate / fanout, settle=s.ramp_settle, seconds=s.ramp_window
        )
        steps.append((rate, window))
        if keeps_up(window, rate) != up:
            if not up:
                best = window
            break
        if up:
            best = window
    await ctx.control.set_tick_rate(0)
    return steps, best


async def _run_riskd(ctx: BenchContext, accounts: Sequence[str]) -> _RiskdRun:
    s = ctx.settings
    worker = ctx.worker("stream-riskd", ctx.riskd_config("stream", accounts, rules=RULES_YAML))
    await worker.start()
    try:
        await worker.request("start", timeout=180)
        subscriptions = await ctx.wait_streams(accounts)
        fanout = sum(len(v) for v in subscriptions.values()) / len(SYMBOLS)
        walk = s.latency_rate / fanout
        accuracy = await _accuracy(ctx, worker, s.market_rate)
        latency = await _window(ctx, worker, walk, settle=s.settle, seconds=s.window, latency=True)
        steps, best = await _ramp(
            ctx, worker, fanout, (s.latency_rate, latency), max_walk=s.overdrive_rate
        )
    finally:
        await ctx.control.set_tick_rate(0)
        await worker.stop()
    return _RiskdRun(subscriptions, fanout, latency, accuracy, s.market_rate * fanout, steps, best)


async def _run_bare(ctx: BenchContext, run: _RiskdRun) -> _BareRun:
    s = ctx.settings
    config = {
        "mode": "bare",
        "bare": {
            "ws_url": ctx.sim.ws_url,
            "api_key": ctx.sim.api_key,
            "subscriptions": run.subscriptions,
        },
    }
    worker = ctx.worker("stream-bare", config)
    await worker.start()
    try:
        await worker.request("start", timeout=60)
        await ctx.wait_streams(run.subscriptions)
        latency = await _window(
            ctx, worker, run.walk(s.latency_rate), settle=s.settle, seconds=s.bare_latency_window
        )
        steps, best = await _ramp(
            ctx, worker, run.fanout, (s.latency_rate, latency), max_walk=s.overdrive_rate
        )
    finally:
        await ctx.control.set_tick_rate(0)
        await worker.stop()
    return _BareRun(latency, steps, best)


def _age(window: Window) -> str:
    return "no ticks" if window.age is None else f"age p99 {fmt.ms(window.age.p99)}"


def _ladder(steps: Sequence[tuple[float, Window]]) -> str:
    return ", ".join(
        f"{fmt.rate(w.rate)} at {w.cpu_share:.2f} core, {_age(w)}"
        f"{'' if keeps_up(w, sent) else ' (behind)'}"
        for sent, w in steps
    )


def _throughput(fig: Figure, run: _RiskdRun, bare: _BareRun, accounts: int) -> None:
    fig.notes = [
        f"Sustained = ticks handled per CPU-second of the consumer process (an asyncio process "
        f"uses one core) at the highest rate it keeps up with: the p99 age of its ticks when "
        f"handled (now - the simulator's stamp, every 64th tick) under {fmt.ms(KEEP_UP_AGE)} "
        f"and at least {KEEP_UP_SHARE:.0%} of the rate sent handled. The rate starts at the "
        f"latency window's and moves x{RAMP_FACTOR:g} per step (up while it keeps up, down "
        f"until it does).",
        f"riskd: {accounts} accounts, {run.fanout * len(SYMBOLS):.0f} subscriptions "
        f"(positions' symbols plus conversion symbols), each tick received, parsed into a "
        f"Quote, filtered, applied to the estimate and the rules evaluated (counted by the "
        f"watcher's tick observer). Steps: {_ladder(run.steps)}.",
        f"Bare loop: the same {len(run.subscriptions)} connections and subscriptions (taken "
        f"from the simulator's view of riskd's), websockets.asyncio.client + json.loads per "
        f"frame, its own process, same rates. Steps: {_ladder(bare.steps)}. Where the bare "
        f"loop stops keeping up below one core, the simulator's sending is the limit and the "
        f"bare figure is a lower bound (per-tick overhead is higher at part load).",
    ]
    b, r = bare.best, run.best
    if b is None or r is None:
        who = "riskd" if r is None else "the bare loop"
        fig.error = f"{who} {NOT_KEPT_UP}"
        return
    ratio = r.per_cpu_second / b.per_cpu_second
    fig.measured = [
        f"{r.per_cpu_second:,.0f} ticks/s",
        f"(kept up with {fmt.rate(r.rate)} at {r.cpu_share:.2f} core)",
    ]
    bound = ", a lower bound" if b.cpu_share < SATURATED else ""
    fig.baseline = [
        f"bare loop {b.per_cpu_second:,.0f} ticks/s",
        f"(kept up with {fmt.rate(b.rate)} at {b.cpu_share:.2f} core{bound})",
        f"riskd/bare = {ratio:.2f}",
    ]
    fig.checks = [Check(">= 0.6 x bare loop", ratio, Target(0.6, "at_least"))]


def _latency(fig: Figure, run: _RiskdRun, bare: _BareRun) -> None:
    w = run.latency
    if w.latency is None:
        fig.error = "no ticks reached riskd during the latency window"
        return
    d = w.latency
    fig.measured = [
        f"p50 {fmt.ms(d.p50)}, p99 {fmt.ms(d.p99)}, max {fmt.ms(d.max)}",
        f"at {fmt.rate(w.rate)}, {w.cpu_share:.2f} core; tick {_age(w)}",
    ]
    b = bare.latency
    fig.baseline = [f"bare loop at {fmt.rate(b.rate)}: {b.cpu_share:.2f} core, tick {_age(b)}"]
    fig.checks = [Check("p99 < 1 ms", d.p99, Target(0.001, "below"))]
    fig.notes = [
        f"Random walk at {run.walk(w.rate):,.0f} ticks/s x {run.fanout:.1f} streams per "
        f"tick = {fmt.rate(w.rate)} ticks delivered (measured) across "
        f"{len(run.subscriptions)} streams; {d.count:,} ticks over {w.wall:.1f} s.",
        "Latency = decided - received per tick (watcher.tick_observer, perf_counter): from "
        "the parsed tick leaving the stream iterator to the end of its estimate and rule "
        "evaluation.",
    ]
    if w.age is not None:
        fig.notes.append(
            f"Tick age = wall clock when decided - the simulator's millisecond stamp on the "
            f"tick (every 64th tick): publish to decision, including the simulator's 5 ms "
            f"tick batches, sending, loopback, socket buffers and websockets. riskd: p50 "
            f"{fmt.ms(w.age.p50)}, p99 {fmt.ms(w.age.p99)}, max {fmt.ms(w.age.max)}; the bare "
            f"loop's age at the same rate is the floor set by the simulator and the network."
        )


def _accuracy_figure(fig: Figure, run: _RiskdRun, gap: float) -> None:
    a = run.accuracy
    if not a.live:
        fig.error = "no account had an estimate to compare"
        return
    live, last = Distribution.of(a.live), Distribution.of(a.last_poll)
    fig.measured = [
        f"median {fmt.pct(live.p50)}, p99 {fmt.pct(live.p99)}",
        f"({live.count:,} samples, walk running)",
    ]
    fig.baseline = [f"last poll: median {fmt.pct(last.p50)}, p99 {fmt.pct(last.p99)}"]
    fig.checks = [Check("median < 0.01%", live.p50, Target(0.0001, "below"))]
    fig.notes = [
        f"|estimate - fresh /AccountSummary equity| / equity for every account, {a.rounds} "
        f"rounds {gap:g} s apart with the random walk running at "
        f"{fmt.rate(run.walk(run.accuracy_rate))} (2 per symbol per second; "
        f"{fmt.rate(run.accuracy_rate)} ticks into riskd) and riskd polling as configured "
        f"(summary 5 s, positions 10 s); the estimate is read when the summary's answer "
        f"arrives, so a tick "
        f"still in flight counts as error.",
        "Side by side: the same error for the last polled equity (what a polling-only "
        "monitor believes at that moment).",
    ]
    if a.frozen:
        frozen = Distribution.of(a.frozen)
        fig.notes.append(
            f"With the walk paused {_FREEZE_SETTLE:g} s before sampling (the estimator's "
            f"arithmetic alone, nothing in flight): median {fmt.pct(frozen.p50)}, "
            f"p99 {fmt.pct(frozen.p99)}, max {fmt.pct(frozen.max)}."
        )
    if a.missing:
        fig.notes.append(f"{a.missing} samples had no estimate yet and were left out.")


async def run_stream_figures(ctx: BenchContext, accounts: Sequence[str]) -> list[Figure]:
    """Figures 1, 2 and 5 (one riskd run, then one bare-loop run on the same subscriptions)."""
    s = ctx.settings
    throughput = Figure(1, f"tick throughput, {len(accounts)} accounts x {s.positions} positions")
    latency = Figure(2, f"tick-to-decision latency at {s.latency_rate:,.0f} ticks/s")
    accuracy = Figure(5, "estimate accuracy vs polled equity")
    figures = [throughput, latency, accuracy]
    try:
        run = await _run_riskd(ctx, accounts)
    except (WorkerError, SimError, TimeoutError, OSError) as exc:
        for fig in figures:
            fig.error = f"riskd run failed: {exc}"
        return figures
    _accuracy_figure(accuracy, run, s.accuracy_gap)
    try:
        bare = await _run_bare(ctx, run)
    except (WorkerError, SimError, TimeoutError, OSError) as exc:
        throughput.error = latency.error = f"bare loop failed: {exc}"
        return figures
    _throughput(throughput, run, bare, len(accounts))
    _latency(latency, run, bare)
    return figures
