"""P&L, conversion, margin and the equity identity, against numbers computed by hand from the
wire spec's "Money arithmetic" section. Starting prices: ``conftest.BASE_PRICES``."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from riskd.sim import SimServer
from tests.sim.conftest import buy, positions, sell, send, summary


@pytest.fixture
def usd(priced: SimServer) -> str:
    return priced.create_account(balance=10_000, currency="USD", leverage=100)


@pytest.fixture
def eur(priced: SimServer) -> str:
    return priced.create_account(balance=10_000, currency="EUR", leverage=100)


def dec(x: float) -> Decimal:
    """The decimal a JSON number reads as."""
    return Decimal(str(x))


def profit(http: httpx.Client, account_id: str, ticket: int) -> float:
    value: float = positions(http, account_id)[ticket]["profit"]
    return value


# -- USD account --------------------------------------------------------------------------------


def test_eurusd_buy_fills_at_ask_and_is_valued_at_bid(
    priced: SimServer, http: httpx.Client, usd: str
) -> None:
    ticket = buy(http, usd, "EURUSD", 1.0)
    pos = positions(http, usd)[ticket]
    assert pos["openPrice"] == 1.0851
    assert pos["currentPrice"] == 1.0850
    assert pos["profit"] == -10.00  # the spread: (1.0850 - 1.0851) * 100000
    priced.set_price("EURUSD", 1.0871, 1.0872)
    # (1.0871 - 1.0851) * 100000 * 1.0
    assert profit(http, usd, ticket) == 200.00


def test_eurusd_sell_fills_at_bid_and_is_valued_at_ask(
    priced: SimServer, http: httpx.Client, usd: str
) -> None:
    ticket = sell(http, usd, "EURUSD", 0.5)
    assert positions(http, usd)[ticket]["openPrice"] == 1.0850
    priced.set_price("EURUSD", 1.0871, 1.0872)
    # (1.0850 - 1.0872) * 100000 * 0.5
    assert profit(http, usd, ticket) == -110.00
    assert positions(http, usd)[ticket]["currentPrice"] == 1.0872


def test_usdjpy_profit_is_converted_with_one_over_usdjpy(
    priced: SimServer, http: httpx.Client, usd: str
) -> None:
    long = buy(http, usd, "USDJPY", 1.0)  # at 150.010
    short = sell(http, usd, "USDJPY", 1.0)  # at 150.000
    priced.set_price("USDJPY", 150.510, 150.520)  # mid 150.515
    # +0.500 * 100000 = 50000 JPY; / 150.515 = 332.1928 USD
    assert profit(http, usd, long) == 332.19
    # -0.520 * 100000 = -52000 JPY; / 150.515 = -345.4805 USD
    assert profit(http, usd, short) == -345.48


def test_xauusd_uses_a_100_oz_contract(priced: SimServer, http: httpx.Client, usd: str) -> None:
    long = buy(http, usd, "XAUUSD", 0.1)  # at 2350.30
    short = sell(http, usd, "XAUUSD", 0.1)  # at 2350.00
    priced.set_price("XAUUSD", 2360.00, 2360.30)
    assert profit(http, usd, long) == 97.00  # (2360.00 - 2350.30) * 100 * 0.1
    assert profit(http, usd, short) == -103.00  # (2350.00 - 2360.30) * 100 * 0.1


def test_ger40_profit_is_in_eur_and_converted_at_the_eurusd_mid(
    priced: SimServer, http: httpx.Client, usd: str
) -> None:
    ticket = buy(http, usd, "GER40", 1.0)  # at 18501.50
    priced.set_price("GER40", 18550.00, 18551.50)
    # (18550.00 - 18501.50) * 1 * 1.0 = 48.50 EUR; * 1.08505 (EURUSD mid) = 52.6249 USD
    assert profit(http, usd, ticket) == 52.62
    priced.set_price("EURUSD", 1.1000, 1.1002)  # conversion follows the EURUSD mid
    assert profit(http, usd, ticket) == 53.35  # 48.50 * 1.1001 = 53.3549


# -- EUR account --------------------------------------------------------------------------------


def test_eur_account_converts_usd_profit_with_one_over_eurusd(
    priced: SimServer, http: httpx.Client, eur: str
) -> None:
    ticket = buy(http, eur, "EURUSD", 1.0)
    gold = buy(http, eur, "XAUUSD", 0.1)
    priced.set_price("XAUUSD", 2360.00, 2360.30)
    # 97.00 USD / 1.08505 = 89.3968 EUR
    assert profit(http, eur, gold) == 89.40
    priced.set_price("EURUSD", 1.0871, 1.0872)
    # 200.00 USD / 1.08715 = 183.9673 EUR
    assert profit(http, eur, ticket) == 183.97


def test_eur_account_keeps_ger40_profit_in_eur(
    priced: SimServer, http: httpx.Client, eur: str
) -> None:
    ticket = buy(http, eur, "GER40", 1.0)
    priced.set_price("GER40", 18550.00, 18551.50)
    assert profit(http, eur, ticket) == 48.50


def test_eur_account_converts_jpy_profit_through_eurjpy(
    priced: SimServer, http: httpx.Client, eur: str
) -> None:
    ticket = buy(http, eur, "USDJPY", 1.0)
    priced.set_price("USDJPY", 150.510, 150.520)
    # 50000 JPY / 162.7575 (EURJPY mid) = 307.2055 EUR
    assert profit(http, eur, ticket) == 307.21


# -- margin, summary, equity identity -----------------------------------------------------------


def test_margin_per_instrument_kind(priced: SimServer, http: httpx.Client, usd: str) -> None:
    cases = {
        buy(http, usd, "EURUSD", 1.0): 1085.05,  # 1.0 * 100000 / 100 EUR * 1.08505
        buy(http, usd, "USDJPY", 1.0): 1000.00,  # 1.0 * 100000 / 100 USD
        buy(http, usd, "XAUUSD", 0.1): 235.03,  # 0.1 * 100 * 2350.30 / 100 USD
        buy(http, usd, "GER40", 1.0): 200.75,  # 1 * 1 * 18501.50 / 100 EUR * 1.08505
    }
    total = summary(http, usd)["margin"]
    assert total == pytest.approx(sum(cases.values()), abs=1e-9)
    assert total == 2520.83


def test_summary_by_hand(priced: SimServer, http: httpx.Client, usd: str) -> None:
    buy(http, usd, "EURUSD", 1.0)
    buy(http, usd, "XAUUSD", 0.1)
    priced.set_price("EURUSD", 1.0871, 1.0872)
    priced.set_price("XAUUSD", 2360.00, 2360.30)
    s = summary(http, usd)
    assert s == {
        "balance": 10_000.00,
        "credit": 0.0,
        "profit": 297.00,  # 200.00 + 97.00
        "equity": 10_297.00,
        "margin": 1322.18,  # 1000 EUR * 1.08715 = 1087.15, + 235.03
        "freeMargin": 8974.82,
        "marginLevel": 778.79,  # 10297 / 1322.18 * 100 = 778.7896
        "leverage": 100,
        "currency": "USD",
    }


def test_margin_level_is_zero_without_positions(http: httpx.Client, usd: str) -> None:
    s = summary(http, usd)
    assert (s["margin"], s["marginLevel"], s["equity"], s["freeMargin"]) == (0, 0, 10_000, 10_000)


def test_commission_swap_and_credit_enter_equity(priced: SimServer, http: httpx.Client) -> None:
    account = priced.create_account(balance=5_000, credit=250, commission_per_lot=7.0)
    ticket = buy(http, account, "EURUSD", 1.0)
    priced.set_swap(account, ticket, -3.25)
    priced.set_price("EURUSD", 1.0871, 1.0872)
    pos = positions(http, account)[ticket]
    assert (pos["profit"], pos["swap"], pos["commission"]) == (200.00, -3.25, -7.00)
    s = summary(http, account)
    assert s["profit"] == 189.75
    assert s["equity"] == 5_439.75  # 5000 + 250 + 200 - 3.25 - 7


def test_equity_identity_holds_exactly_on_the_wire(priced: SimServer, http: httpx.Client) -> None:
    account = priced.create_account(balance=123_456.78, credit=11.11, commission_per_lot=3.5)
    tickets = [
        buy(http, account, "EURUSD", 0.37),
        sell(http, account, "USDJPY", 1.13),
        buy(http, account, "XAUUSD", 0.07),
        sell(http, account, "GER40", 2.49),
    ]
    priced.set_swap(account, tickets[1], -1.37)
    priced.set_prices(
        [("EURUSD", 1.08613), ("USDJPY", 149.371), ("XAUUSD", 2351.17), ("GER40", 18423.37)]
    )
    s = summary(http, account)
    rows = positions(http, account).values()
    floating = sum(
        (dec(p["profit"]) + dec(p["swap"]) + dec(p["commission"]) for p in rows), Decimal(0)
    )
    assert dec(s["profit"]) == floating
    assert dec(s["equity"]) == dec(s["balance"]) + dec(s["credit"]) + floating
    assert dec(s["freeMargin"]) == dec(s["equity"]) - dec(s["margin"])
    assert s["marginLevel"] == round(s["equity"] / s["margin"] * 100, 2)


def test_not_enough_free_margin_is_10019(priced: SimServer, http: httpx.Client) -> None:
    small = priced.create_account(balance=1_000, leverage=100)
    # 10 lots EURUSD need 10000 EUR * 1.08505 = 10850.50 USD of margin
    assert send(http, small, symbol="EURUSD", operation=0, volume=10.0)["retcode"] == 10019
    assert positions(http, small) == {}
