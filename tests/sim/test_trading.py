"""Order validation retcodes, SL/TP and pending triggers, modify, partial and full close."""

from __future__ import annotations

import httpx
import pytest

from riskd.sim import SimServer
from tests.sim.conftest import buy, close, history, modify, positions, sell, send, summary

# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "retcode"),
    [
        ({"symbol": "NOPE", "operation": 0, "volume": 0.1}, 10013),
        ({"symbol": "EURUSD", "operation": 0, "volume": 0}, 10014),
        ({"symbol": "EURUSD", "operation": 0, "volume": -1}, 10014),
        ({"symbol": "EURUSD", "operation": 0, "volume": 0.015}, 10014),
        ({"symbol": "EURUSD", "operation": 9, "volume": 0.1}, 10035),
        # buy: SL must be below the bid, TP above it
        ({"symbol": "EURUSD", "operation": 0, "volume": 0.1, "stopLoss": 1.0860}, 10016),
        ({"symbol": "EURUSD", "operation": 0, "volume": 0.1, "takeProfit": 1.0840}, 10016),
        # sell: SL must be above the ask, TP below it
        ({"symbol": "EURUSD", "operation": 1, "volume": 0.1, "stopLoss": 1.0840}, 10016),
        ({"symbol": "EURUSD", "operation": 1, "volume": 0.1, "takeProfit": 1.0860}, 10016),
        # pending orders need a price on the waiting side of the market
        ({"symbol": "EURUSD", "operation": 2, "volume": 0.1}, 10015),
        ({"symbol": "EURUSD", "operation": 2, "volume": 0.1, "price": 1.0900}, 10015),
        ({"symbol": "EURUSD", "operation": 4, "volume": 0.1, "price": 1.0800}, 10015),
        ({"symbol": "EURUSD", "operation": 3, "volume": 0.1, "price": 1.0800}, 10015),
        ({"symbol": "EURUSD", "operation": 5, "volume": 0.1, "price": 1.0900}, 10015),
    ],
)
def test_order_send_rejections(
    priced: SimServer, http: httpx.Client, account: str, body: dict[str, object], retcode: int
) -> None:
    result = send(http, account, **body)
    assert result["retcode"] == retcode
    assert result["ticket"] == 0
    assert positions(http, account) == {}


def test_market_and_pending_success_codes(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    market = send(http, account, symbol="EURUSD", operation=0, volume=0.01)
    pending = send(http, account, symbol="EURUSD", operation=2, volume=0.01, price=1.08)
    assert (market["retcode"], market["comment"]) == (10009, "Request completed")
    assert (pending["retcode"], pending["comment"]) == (10008, "Order placed")
    assert pending["ticket"] > market["ticket"] > 0
    assert list(positions(http, account)) == [market["ticket"]]  # pending orders are no positions


# -- SL / TP ------------------------------------------------------------------------------------


def test_buy_take_profit_is_checked_against_the_bid(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    ticket = buy(http, account, "EURUSD", 1.0, stopLoss=1.0800, takeProfit=1.0900)
    priced.set_price("EURUSD", 1.0899, 1.0901)  # ask beyond TP, bid not: still open
    assert ticket in positions(http, account)
    priced.set_price("EURUSD", 1.0900, 1.0901)
    assert positions(http, account) == {}
    [row] = history(http, account)
    assert (row["ticket"], row["closePrice"], row["comment"]) == (ticket, 1.0900, "[tp 1.09000]")
    assert row["profit"] == 490.00  # (1.0900 - 1.0851) * 100000
    assert summary(http, account)["balance"] == 100_490.00


def test_buy_stop_loss_is_checked_against_the_bid(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    ticket = buy(http, account, "EURUSD", 1.0, stopLoss=1.0800)
    priced.set_price("EURUSD", 1.0795, 1.0797)  # gapped through: closes at the bid
    [row] = history(http, account)
    assert (row["ticket"], row["closePrice"], row["comment"]) == (ticket, 1.0795, "[sl 1.08000]")
    assert row["profit"] == -560.00  # (1.0795 - 1.0851) * 100000


def test_sell_stops_are_checked_against_the_ask(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    tp = sell(http, account, "EURUSD", 0.5, takeProfit=1.0800)  # at 1.0850
    sl = sell(http, account, "EURUSD", 0.5, stopLoss=1.0870)
    priced.set_price("EURUSD", 1.0799, 1.0801)  # bid below TP, ask not: nothing closes
    assert set(positions(http, account)) == {tp, sl}
    priced.set_price("EURUSD", 1.0798, 1.0800)
    assert set(positions(http, account)) == {sl}
    priced.set_price("EURUSD", 1.0868, 1.0870)
    assert positions(http, account) == {}
    rows = {r["ticket"]: r for r in history(http, account)}
    assert (rows[tp]["closePrice"], rows[tp]["profit"]) == (1.0800, 250.00)  # 0.0050 * 100000 * 0.5
    assert (rows[sl]["closePrice"], rows[sl]["profit"]) == (
        1.0870,
        -100.00,
    )  # -0.0020 * 100000 * 0.5


def test_modify_sets_and_removes_stops(priced: SimServer, http: httpx.Client, account: str) -> None:
    ticket = buy(http, account, "EURUSD", 1.0)
    assert modify(http, account, ticket, stopLoss=1.0800, takeProfit=1.0950)["retcode"] == 10009
    pos = positions(http, account)[ticket]
    assert (pos["stopLoss"], pos["takeProfit"]) == (1.0800, 1.0950)
    assert modify(http, account, ticket, stopLoss=1.0860)["retcode"] == 10016  # above the bid
    assert modify(http, account, ticket, takeProfit=1.0950)["retcode"] == 10025  # no change
    assert modify(http, account, ticket, takeProfit=0)["retcode"] == 10009  # 0 removes it
    priced.set_price("EURUSD", 1.0960)
    assert ticket in positions(http, account)  # TP was removed
    assert positions(http, account)[ticket]["stopLoss"] == 1.0800  # omitted: unchanged
    assert modify(http, account, 999)["retcode"] == 10013


# -- pending orders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "price", "trigger", "fill", "side"),
    [
        (2, 1.0800, (1.0799, 1.0800), 1.0800, "buy"),  # buy limit: ask <= price, fills at ask
        (3, 1.0900, (1.0900, 1.0901), 1.0900, "sell"),  # sell limit: bid >= price
        (4, 1.0900, (1.0899, 1.0901), 1.0901, "buy"),  # buy stop: ask >= price (slips)
        (5, 1.0800, (1.0798, 1.0799), 1.0798, "sell"),  # sell stop: bid <= price (slips)
    ],
)
def test_pending_orders_trigger_on_price(
    priced: SimServer,
    http: httpx.Client,
    account: str,
    operation: int,
    price: float,
    trigger: tuple[float, float],
    fill: float,
    side: str,
) -> None:
    placed = send(
        http,
        account,
        symbol="EURUSD",
        operation=operation,
        volume=0.2,
        price=price,
        stopLoss=0,
        takeProfit=0,
    )
    assert placed["retcode"] == 10008
    priced.set_price("EURUSD", 1.0850, 1.0851)
    assert positions(http, account) == {}
    priced.set_price("EURUSD", *trigger)
    pos = positions(http, account)[placed["ticket"]]  # the position keeps the order's ticket
    assert (pos["type"], pos["openPrice"], pos["volume"]) == (side, fill, 0.2)


def test_pending_order_arms_its_stops_when_filled(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    placed = send(
        http,
        account,
        symbol="EURUSD",
        operation=2,
        volume=0.1,
        price=1.0800,
        stopLoss=1.0780,
        takeProfit=1.0830,
    )
    priced.set_price("EURUSD", 1.0799, 1.0800)
    assert placed["ticket"] in positions(http, account)
    priced.set_price("EURUSD", 1.0830)
    [row] = history(http, account)
    assert (row["comment"], row["profit"]) == ("[tp 1.08300]", 30.00)  # 0.0030 * 10000


def test_closing_a_pending_order_cancels_it(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    placed = send(http, account, symbol="EURUSD", operation=2, volume=0.1, price=1.08)
    assert close(http, account, placed["ticket"])["retcode"] == 10009
    priced.set_price("EURUSD", 1.0790)
    assert positions(http, account) == {}
    assert history(http, account) == []


# -- closing ------------------------------------------------------------------------------------


def test_partial_close_keeps_the_ticket_and_realises_the_closed_part(
    priced: SimServer, http: httpx.Client
) -> None:
    account = priced.create_account(balance=10_000, commission_per_lot=10.0)
    ticket = buy(http, account, "EURUSD", 1.0)  # commission -10.00
    priced.set_swap(account, ticket, -5.00)
    priced.set_price("EURUSD", 1.0871, 1.0872)
    assert close(http, account, ticket, volume=0.4) == {
        "ticket": ticket,
        "retcode": 10009,
        "comment": "Request completed",
    }
    pos = positions(http, account)[ticket]
    assert (pos["volume"], pos["profit"], pos["swap"], pos["commission"]) == (0.6, 120.0, -3, -6)
    [row] = history(http, account)
    assert (row["ticket"], row["volume"], row["profit"], row["swap"], row["commission"]) == (
        ticket,
        0.4,
        80.00,
        -2.00,
        -4.00,
    )
    assert summary(http, account)["balance"] == 10_074.00  # 10000 + 80 - 2 - 4
    assert close(http, account, ticket)["retcode"] == 10009  # the rest
    assert summary(http, account)["balance"] == 10_185.00  # + 120 - 3 - 6
    assert [r["volume"] for r in history(http, account)] == [0.4, 0.6]


def test_close_errors(priced: SimServer, http: httpx.Client, account: str) -> None:
    ticket = buy(http, account, "EURUSD", 0.5)
    assert close(http, account, ticket, volume=0.6)["retcode"] == 10038
    assert close(http, account, ticket, volume=0.005)["retcode"] == 10014
    assert close(http, account, 12345)["retcode"] == 10013
    assert close(http, account, ticket)["retcode"] == 10009
    assert close(http, account, ticket)["retcode"] == 10036  # already closed
    other = priced.create_account()
    mine = buy(http, other, "EURUSD", 0.1)
    assert close(http, account, mine)["retcode"] == 10013  # another account's ticket


def test_direct_open_position_for_demo_setup(
    priced: SimServer, http: httpx.Client, account: str
) -> None:
    ticket = priced.open_position(account, "EURUSD", "buy", 2.0, open_price=1.0800)
    pos = positions(http, account)[ticket]
    assert (pos["openPrice"], pos["profit"]) == (1.0800, 1000.00)  # (1.0850 - 1.0800) * 200000
