"""Money arithmetic shared by the simulator and the equity estimator.

These are the formulas of the wire spec ("Money arithmetic"). Keeping them in one module means
the simulator's numbers and riskd's estimates are computed the same way, so a test that compares
them checks riskd's inputs (prices, sizes, rates), not two copies of a formula.

Currency conversion uses mid prices. Real MetaTrader servers pick bid or ask for the conversion
depending on the sign of the profit; the difference is a fraction of the spread on the
conversion rate and well inside the estimator's tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

from riskd.instruments import Instrument

MidLookup = Callable[[str], float | None]
"""Returns the current mid price of a symbol, or None when it is not known."""


def conversion_rate(from_ccy: str, to_ccy: str, mid: MidLookup) -> float | None:
    """How many ``to_ccy`` one unit of ``from_ccy`` is worth, from current mids.

    Tries the direct pair, the inverse pair, then a cross through USD. None when no route
    has prices (the caller decides whether that is an error).
    """
    if from_ccy == to_ccy:
        return 1.0
    direct = mid(from_ccy + to_ccy)
    if direct is not None and direct > 0:
        return direct
    inverse = mid(to_ccy + from_ccy)
    if inverse is not None and inverse > 0:
        return 1.0 / inverse
    if "USD" not in (from_ccy, to_ccy):
        to_usd = conversion_rate(from_ccy, "USD", mid)
        from_usd = conversion_rate("USD", to_ccy, mid)
        if to_usd is not None and from_usd is not None:
            return to_usd * from_usd
    return None


def profit_in_quote(
    side: str, open_price: float, bid: float, ask: float, volume: float, contract_size: float
) -> float:
    """Floating profit in the quote currency: buys close at the bid, sells at the ask.

    ``side`` is ``"buy"`` or ``"sell"`` exactly (models normalise the wire's spellings); any
    other value is a bug that would silently flip the sign, so it raises.
    """
    if side == "buy":
        return (bid - open_price) * contract_size * volume
    if side == "sell":
        return (open_price - ask) * contract_size * volume
    raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")


def margin_in_account(
    inst: Instrument,
    volume: float,
    price: float,
    leverage: float,
    account_ccy: str,
    mid: MidLookup,
) -> float | None:
    """Margin for ``volume`` lots in the account currency.

    FX: ``lots * contract_size / leverage`` in the base currency. Everything else (metals,
    indices, crypto CFDs): ``lots * contract_size * price / leverage`` in the quote currency.
    """
    if inst.kind == "fx":
        rate = conversion_rate(inst.base, account_ccy, mid)
        amount = volume * inst.contract_size / leverage
    else:
        rate = conversion_rate(inst.quote, account_ccy, mid)
        amount = volume * inst.contract_size * price / leverage
    return None if rate is None else amount * rate


def margin_level(equity: float, margin: float) -> float:
    """``equity / margin * 100``, and 0 when no margin is used (as MetaTrader reports it)."""
    return equity / margin * 100.0 if margin > 0 else 0.0
