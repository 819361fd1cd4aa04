"""The instrument table: what riskd knows about a symbol without asking the bridge.

The bridge's quote and position payloads carry no contract size, pip size or currencies, so
riskd keeps one table here, shared by the client (``Quote.spread_pips``), the simulator
(fills, P&L, margin) and the equity estimator. Brokers differ on indices and crypto; the
daemon lets an account override contract sizes, this table is only the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["fx", "metal", "index", "crypto"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """Static facts about one tradable symbol.

    ``base`` is the currency (or asset) bought, ``quote`` the currency profit is made in.
    ``contract_size`` is units per 1.0 lot. ``pip_size`` is the price step traders call a pip.
    """

    symbol: str
    kind: Kind
    base: str
    quote: str
    contract_size: float
    pip_size: float
    digits: int


def _fx(symbol: str) -> Instrument:
    base, quote = symbol[:3], symbol[3:6]
    jpy = quote == "JPY"
    return Instrument(
        symbol=symbol,
        kind="fx",
        base=base,
        quote=quote,
        contract_size=100_000.0,
        pip_size=0.01 if jpy else 0.0001,
        digits=3 if jpy else 5,
    )


_FX_SYMBOLS = (
    "EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD",
    "EURGBP", "EURJPY", "GBPJPY", "EURCHF", "AUDJPY", "CHFJPY", "EURAUD",
)  # fmt: skip

INSTRUMENTS: dict[str, Instrument] = {s: _fx(s) for s in _FX_SYMBOLS}
INSTRUMENTS.update(
    {
        # Gold: 100 oz per lot; traders quote its pip as 0.10 USD.
        "XAUUSD": Instrument("XAUUSD", "metal", "XAU", "USD", 100.0, 0.1, 2),
        "XAGUSD": Instrument("XAGUSD", "metal", "XAG", "USD", 5_000.0, 0.01, 3),
        # Index CFDs: 1 contract per lot is the most common retail broker setting.
        "US30": Instrument("US30", "index", "US30", "USD", 1.0, 1.0, 2),
        "GER40": Instrument("GER40", "index", "GER40", "EUR", 1.0, 1.0, 2),
        "BTCUSD": Instrument("BTCUSD", "crypto", "BTC", "USD", 1.0, 1.0, 2),
    }
)

_CURRENCIES = frozenset(
    c for i in INSTRUMENTS.values() if i.kind == "fx" for c in (i.base, i.quote)
)


def normalize_symbol(symbol: str) -> str:
    """Strip a broker suffix (``EURUSD.a``, ``EURUSDm``, ``XAUUSD.pro``) to the table's name."""
    s = symbol.upper()
    if s in INSTRUMENTS:
        return s
    head = s.split(".", 1)[0]
    if head in INSTRUMENTS:
        return head
    for known in INSTRUMENTS:
        if s.startswith(known):
            return known
    return s


def lookup(symbol: str) -> Instrument | None:
    """The table entry for ``symbol`` (broker suffixes ignored), or None when unknown.

    An unknown six-letter symbol made of two known currencies is treated as an FX pair.
    """
    s = normalize_symbol(symbol)
    inst = INSTRUMENTS.get(s)
    if inst is not None:
        return inst
    if len(s) >= 6 and s[:3] in _CURRENCIES and s[3:6] in _CURRENCIES:
        return _fx(s[:6])
    return None


def pip_size(symbol: str) -> float:
    """Pip size of ``symbol``: 0.0001 for FX, 0.01 for JPY quotes, table value otherwise.

    Unknown non-FX symbols fall back to 0.01, the pip of most two-decimal CFDs.
    """
    inst = lookup(symbol)
    return inst.pip_size if inst is not None else 0.01
