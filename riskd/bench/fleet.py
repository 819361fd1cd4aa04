"""The accounts the benchmark watches: deterministic plans, created through ``/_sim`` controls.

Every account is a 100k prop-style account (80% USD, 20% EUR, so conversions are exercised)
holding a seeded mix of buys and sells across the simulator's 14 symbols: FX majors, JPY
crosses, gold, silver and two indices (GER40 is quoted in EUR). Open prices sit a few pips away
from the market so profits are not all near zero; volumes are modest so the random walk never
pushes an account anywhere near the FTMO-style floors it is watched with (a flatten would change
the workload in the middle of a measurement).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from riskd.bench.simproc import SimControl
from riskd.instruments import lookup
from riskd.sim.market import DEFAULT_SPECS

BALANCE = 100_000.0

START_BIDS: dict[str, float] = {spec.symbol: spec.bid for spec in DEFAULT_SPECS}
"""The simulator's default starting bids; the benchmark sets them before opening positions."""

SYMBOLS: tuple[str, ...] = tuple(START_BIDS)

# Lots per kind of instrument: about 10 USD per pip for the largest FX/gold lot, less for
# silver (50 USD per pip per lot) and indices (1 USD/EUR per point per lot).
_VOLUMES = {
    "fx": (0.1, 0.2, 0.5, 1.0),
    "metal": (0.1, 0.2, 0.5, 1.0),
    "index": (1.0, 2.0, 5.0, 10.0),
}
_SILVER_VOLUMES = (0.05, 0.1)
_MAX_OFFSET_PIPS = 15.0

RULES_YAML = """
- name: daily-loss
  kind: daily_loss
  baseline: balance
  limit: 5%
  limit_of: initial_balance
  reset: {at: "00:00", zone: Europe/Prague}
  warn_at: [50%, 80%, 90%]
  action: lockout
- name: max-loss
  kind: max_loss
  limit: 10%
  warn_at: [50%, 80%, 90%]
  action: lockout
- name: profit-target
  kind: profit_target
  target: 10%
  warn_at: [50%, 90%]
  action: alert
"""
"""FTMO 2-Step's three rules (as ``rules/ftmo-2step.yaml``): what every fleet account runs."""


@dataclass(frozen=True, slots=True)
class PositionPlan:
    """One position to open: ``open_price`` is absolute (None: at the market)."""

    symbol: str
    side: str
    volume: float
    open_price: float | None


@dataclass(frozen=True, slots=True)
class AccountPlan:
    """One account to create and its positions."""

    currency: str
    balance: float
    positions: tuple[PositionPlan, ...]


def _position(rng: random.Random) -> PositionPlan:
    symbol = rng.choice(SYMBOLS)
    inst = lookup(symbol)
    assert inst is not None  # every default symbol is in the instrument table
    volumes = _SILVER_VOLUMES if symbol == "XAGUSD" else _VOLUMES[inst.kind]
    side = rng.choice(("buy", "sell"))
    offset = rng.uniform(-_MAX_OFFSET_PIPS, _MAX_OFFSET_PIPS) * inst.pip_size
    price = round(START_BIDS[symbol] + offset, inst.digits)
    return PositionPlan(symbol, side, rng.choice(volumes), price)


def plan_fleet(count: int, positions: int, seed: int, eur_share: float = 0.2) -> list[AccountPlan]:
    """``count`` accounts with ``positions`` positions each; the same seed, the same fleet."""
    rng = random.Random(f"fleet:{seed}:{count}:{positions}")
    return [
        AccountPlan(
            currency="EUR" if rng.random() < eur_share else "USD",
            balance=BALANCE,
            positions=tuple(_position(rng) for _ in range(positions)),
        )
        for _ in range(count)
    ]


async def set_start_prices(control: SimControl) -> None:
    """Put every symbol back at its default starting price (the plans' reference)."""
    await control.call("set_prices", ticks=[[s, bid] for s, bid in START_BIDS.items()])


async def create_fleet(
    control: SimControl, plans: Sequence[AccountPlan], concurrency: int = 16
) -> list[str]:
    """Create the accounts and open their positions; returns the account ids in plan order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(plan: AccountPlan) -> str:
        async with gate:
            account: str = await control.call(
                "create_account", balance=plan.balance, currency=plan.currency
            )
            for p in plan.positions:
                await control.call(
                    "open_position",
                    account_id=account,
                    symbol=p.symbol,
                    side=p.side,
                    volume=p.volume,
                    open_price=p.open_price,
                )
        return account

    return list(await asyncio.gather(*(one(p) for p in plans)))
