"""The account book: what riskd knows about each account right now (one owner of live state)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from riskd.api2trade import AccountSummary, Position, TickStream
from riskd.engine import AccountSnapshot, Evaluation, OpenPosition, RuleState, evaluate
from riskd.engine.band import QuietBand
from riskd.monitor.estimator import EquityEstimator

if TYPE_CHECKING:
    from riskd.engine import Rule


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """The configured facts of one account the monitor needs."""

    id: str
    name: str
    initial_balance: float
    rules: tuple[Rule, ...]
    dry_run: bool


@dataclass(slots=True)
class AccountBook:
    """Live state of one account: last summary and positions, rule states, last evaluation.

    ``lock`` serialises evaluate-and-act for the account, so two triggers (a poll and the
    periodic check) never both act on the same breach.
    """

    info: AccountInfo
    states: dict[str, RuleState] = field(default_factory=dict)
    summary: AccountSummary | None = None
    summary_at: datetime | None = None
    positions: list[Position] | None = None
    positions_at: datetime | None = None
    evaluation: Evaluation | None = None
    failing_since: datetime | None = None
    failure: str = ""
    dirty: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    estimator: EquityEstimator = field(default_factory=EquityEstimator)
    stream: TickStream | None = None
    last_tick_at: datetime | None = None
    confirming: bool = False
    rearmed: bool = False
    ticks_expected: bool = True
    """False when the account is not streamed: then no tick can be late."""
    band: QuietBand | None = None
    """The tick path's quiet band (``riskd.engine.band``), valid only while ``band_inputs``
    are still the book's summary, positions and account info."""
    band_inputs: tuple[object, object, object] | None = None
    _positions_cache: tuple[list[Position] | None, tuple[OpenPosition, ...]] | None = None
    _summary_tickets: set[int] = field(default_factory=set)

    @property
    def last_poll_at(self) -> datetime | None:
        """The last successful poll of any kind."""
        times = [t for t in (self.summary_at, self.positions_at) if t is not None]
        return max(times) if times else None

    def anchor(self) -> None:
        """Re-anchor the equity estimate on the latest polls (needs summary and positions).

        The summary and the positions come from different polls, taken at different prices.
        The anchor must pair an equity with the prices it was taken at, or the next tick counts
        the move between the two polls a second time:

        - positions newer than the summary: equity is rebuilt from the positions poll
          (balance + credit + each position's profit, swap and commission), at the prices
          the broker valued them at;
        - summary newer than the positions (or a position closed since the summary, whose
          realised profit the summary's balance does not hold yet): the positions' polled
          prices are older than the summary's equity, so they are dropped and each position
          is referenced at the latest tick price instead (the price the equity reflects).
        """
        s, positions = self.summary, self.positions
        if s is None or positions is None or self.summary_at is None:
            return
        tickets = {p.ticket for p in positions}
        closed_since_summary = bool(self._summary_tickets - tickets)
        if (
            self.positions_at is not None
            and self.positions_at >= self.summary_at
            and not closed_since_summary
        ):
            equity = s.balance + (s.credit or 0.0) + sum(p.total_pnl for p in positions)
            self.estimator.anchor(s.model_copy(update={"equity": equity}), positions,
                                  self.positions_at)  # fmt: skip
        else:
            unpriced = [p.model_copy(update={"current_price": None}) for p in positions]
            self.estimator.anchor(s, unpriced, self.summary_at)
            self._summary_tickets = tickets

    def keep_band(self, band: QuietBand | None) -> None:
        """Keep ``band``, computed from the book as it is now."""
        self.band = band
        self.band_inputs = None if band is None else (self.summary, self.positions, self.info)

    def quiet(self, equity: float, now: datetime) -> bool:
        """True when a tick that moved equity to ``equity`` needs no evaluation: it is inside
        the band, and the band's inputs (summary, positions, rules, every rule state) are
        the very objects the book holds now."""
        band = self.band
        if band is None or not band.holds(equity, now):
            return False
        inputs = self.band_inputs
        if inputs is None or (
            inputs[0] is not self.summary
            or inputs[1] is not self.positions
            or inputs[2] is not self.info
        ):
            return False
        states = self.states
        for rule, kept in zip(self.info.rules, band.states, strict=True):
            if states.get(rule.name) is not kept:
                return False
        return True

    def requiet(self, now: datetime) -> bool:
        """After a poll: True when the band still holds with the new poll in place of the one
        it was computed from, so the poll needs no evaluation. That is when nothing the rules
        read changed but equity and the poll's time (same balance, credit, currency, open
        positions, and margin if a rule reads it), and the re-anchored equity is inside the
        band. A newer poll
        only lowers the data's age, and the band's ``until`` came from the older one."""
        band, inputs, equity = self.band, self.band_inputs, self.estimator.equity
        if band is None or inputs is None or equity is None or inputs[2] is not self.info:
            return False
        if not band.holds(equity, now):
            return False
        old_summary, old_positions, _ = inputs
        summary, positions = self.summary, self.positions
        if summary is not old_summary:
            if not isinstance(old_summary, AccountSummary) or summary is None:
                return False
            # Margin moves with prices; only a margin_level rule reads it.
            margin = any(rule.kind == "margin_level" for rule in self.info.rules)
            if _figures(summary, margin) != _figures(old_summary, margin):
                return False
        if positions is not old_positions and (
            not isinstance(old_positions, list)
            or positions is None
            or _view(positions) != _view(old_positions)
        ):
            return False
        self.band_inputs = (summary, positions, self.info)
        return self.quiet(equity, now)

    def reevaluate(self, now: datetime) -> Evaluation | None:
        """A fresh evaluation of a quiet account on the current numbers, or None when the
        account is not quiet. Only the numbers (headroom, used) differ from the last one:
        inside the quiet band the statuses and states are the same, and an evaluation that
        would change anything else is refused (None), never shown or kept. Pure."""
        equity = self.estimator.equity
        if self.evaluation is None or equity is None or not self.quiet(equity, now):
            return None
        snapshot = self.snapshot(now)
        if snapshot is None:
            return None
        fresh = evaluate(self.info.rules, snapshot, self.states)
        if fresh.changed or any(v.newly for v in fresh.verdicts):
            return None  # cannot happen inside the band
        return fresh

    def current(self, now: datetime) -> Evaluation | None:
        """The evaluation to show at ``now``: re-done on the current numbers for a quiet
        account (the tick path skips evaluating it, so the last one's numbers lag the
        estimate), else the last one."""
        return self.reevaluate(now) or self.evaluation

    def _open_positions(self) -> tuple[OpenPosition, ...]:
        """The engine's view of the positions, rebuilt only when a new list arrives (the
        snapshot is taken on every tick)."""
        source = self.positions
        if self._positions_cache is None or self._positions_cache[0] is not source:
            view = _view(source or [])
            self._positions_cache = (source, view)
        return self._positions_cache[1]

    def snapshot(self, now: datetime) -> AccountSnapshot | None:
        """The engine's input at ``now``, or None before the first summary arrived.

        Equity is the tick estimate when ticks moved it since the last poll (``estimated``),
        else the polled equity.
        """
        s = self.summary
        if s is None or self.summary_at is None:
            return None
        # The estimator is anchored on the freshest poll data (a positions poll newer than the
        # summary rebuilds equity from it), so its equity is the best one whenever it has one;
        # it is an *estimate* once ticks moved it since that anchor.
        equity, estimated = s.equity, False
        if self.estimator.equity is not None and self.estimator.anchored_at is not None:
            equity = self.estimator.equity
            moved_at = self.estimator.estimated_at
            estimated = moved_at is not None and moved_at > self.estimator.anchored_at
        positions = self._open_positions()
        margin = s.margin_in_use
        last_poll = self.last_poll_at or self.summary_at
        return AccountSnapshot(
            account_id=self.info.id,
            now=max(now, last_poll),
            balance=s.balance,
            equity=equity,
            credit=s.credit or 0.0,
            margin=margin,
            free_margin=equity - margin if estimated else s.free_margin,
            positions=positions,
            initial_balance=self.info.initial_balance,
            currency=s.currency,
            last_poll_at=last_poll,
            # Without a stream there is no tick to wait for: the tick age stays 0.
            last_tick_at=self.last_tick_at if self.ticks_expected else now,
            estimated=estimated,
        )


def _figures(s: AccountSummary, with_margin: bool) -> tuple[float, float, float, str]:
    """What the rules read of a summary besides equity: balance, credit, currency, and the
    margin when a rule reads it."""
    margin = s.margin_in_use if with_margin else 0.0
    return (s.balance, s.credit or 0.0, margin, s.currency)


def _view(positions: list[Position]) -> tuple[OpenPosition, ...]:
    return tuple(OpenPosition(p.symbol, p.order_type, p.volume) for p in positions)
