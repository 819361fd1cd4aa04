"""The engine's input: one account at one instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, NamedTuple


class OpenPosition(NamedTuple):
    """``(symbol, side, volume)`` of one open position; volume in lots."""

    symbol: str
    side: Literal["buy", "sell"]
    volume: float


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """What the account book knows about one account at ``now``.

    Money is in the account currency. ``equity`` is the broker's equity (balance plus floating
    profit, swaps and commissions of open positions), or the tick estimate of it when
    ``estimated`` is true. ``credit`` is carried for display; no rule subtracts it (MetaTrader
    includes it in equity, and prop-firm accounts have none). ``margin`` is the margin in use
    (0 with no positions). ``positions`` may be ``OpenPosition`` values or plain
    ``(symbol, side, volume)`` tuples.

    All datetimes are aware UTC. ``now`` is the instant the snapshot describes: the engine
    never reads a clock, so ``for:`` timers and day boundaries follow ``now``.
    """

    account_id: str
    now: datetime
    balance: float
    equity: float
    credit: float
    margin: float
    free_margin: float
    positions: tuple[OpenPosition, ...]
    initial_balance: float
    currency: str
    last_poll_at: datetime
    last_tick_at: datetime | None = None
    estimated: bool = False

    def __post_init__(self) -> None:
        # One cheap check per snapshot: a naive datetime would otherwise surface as a
        # TypeError deep inside a comparison.
        if self.now.tzinfo is None or self.last_poll_at.tzinfo is None:
            raise ValueError("AccountSnapshot datetimes must be timezone-aware (UTC)")
        if self.last_tick_at is not None and self.last_tick_at.tzinfo is None:
            raise ValueError("AccountSnapshot datetimes must be timezone-aware (UTC)")
