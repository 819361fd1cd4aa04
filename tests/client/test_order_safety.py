"""Trade return codes and orders of unknown outcome: never a second position by accident."""

from __future__ import annotations

import pytest

from riskd.api2trade import AsyncApi2TradeClient, OrderType
from riskd.api2trade.exceptions import BrokerRejectionError
from riskd.sim import SimServer
from tests.client.conftest import Recorder, fast_backoff


async def test_requote_is_retried_at_once(
    client: AsyncApi2TradeClient, sim: SimServer, account: str, hooks: Recorder
) -> None:
    sim.faults.queue_retcode(10004, path="/OrderSend")
    result = await client.orders.send(account, "EURUSD", OrderType.BUY_MARKET, 0.1)
    assert result.success
    assert sim.requests.count(path="/OrderSend") == 2
    assert len(await client.orders.positions(account)) == 1
    assert hooks.retries == [("/OrderSend", "retcode_10004")]


async def test_requote_with_a_price_refreshes_the_price(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.queue_retcode(10020, path="/OrderSend")
    await client.orders.send(account, "EURUSD", OrderType.BUY_MARKET, 0.1, price=1.0)
    first, second = sim.requests.records(path="/OrderSend")
    assert first.body["price"] == 1.0
    assert second.body["price"] == pytest.approx(1.08510)  # the fresh ask
    assert sim.requests.count(path="/GetQuote") == 1


async def test_auto_retry_off_raises_the_requote(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.queue_retcode(10004, path="/OrderSend")
    with pytest.raises(BrokerRejectionError) as info:
        await client.orders.send(account, "EURUSD", 0, 0.1, auto_retry=False)
    assert info.value.retcode == 10004 and info.value.is_retryable
    assert sim.requests.count(path="/OrderSend") == 1


async def test_busy_server_retcode_backs_off_then_gives_up(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.queue_retcode(10024, times=5, path="/OrderSend")
    with pytest.raises(BrokerRejectionError) as info:
        await client.orders.send(account, "EURUSD", 0, 0.1, max_retries=2)
    assert info.value.retcode == 10024
    assert sim.requests.count(path="/OrderSend") == 3


async def test_unknown_outcome_that_was_executed_is_found_not_resent(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.queue_retcode(10012, execute=True, path="/OrderSend")
    result = await client.orders.send(account, "EURUSD", 0, 0.1, comment="bot-1")
    (position,) = await client.orders.positions(account)
    assert result.success and result.ticket == position.ticket
    assert sim.requests.count(path="/OrderSend") == 1


async def test_unknown_outcome_that_was_not_executed_is_resent_after_looking(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.queue_retcode(10031, execute=False, path="/OrderSend")
    result = await client.orders.send(account, "EURUSD", 0, 0.1)
    assert result.success
    assert len(await client.orders.positions(account)) == 1
    assert sim.requests.count(path="/OrderSend") == 2
    methods = [r.path for r in sim.requests.records() if r.path in ("/OrderSend", "/Positions")]
    assert methods[:3] == ["/OrderSend", "/Positions", "/OrderSend"]  # looked before resending


async def test_timeout_on_send_that_executed_is_found(sim: SimServer, account: str) -> None:
    sim.faults.hang_next(1, seconds=3.0, execute=True, path="/OrderSend")
    async with AsyncApi2TradeClient(
        api_key=sim.api_key, base_url=sim.base_url, timeout=0.3, backoff=fast_backoff()
    ) as client:
        result = await client.orders.send(account, "EURUSD", OrderType.SELL_MARKET, 0.2)
        (position,) = await client.orders.positions(account)
    assert result.ticket == position.ticket
    assert sim.requests.count(path="/OrderSend") == 1


async def test_an_older_identical_position_is_not_mistaken_for_the_new_order(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.open_position(account, "EURUSD", "buy", 0.1, open_time="2020-01-01T00:00:00Z")
    sim.faults.queue_retcode(10012, execute=False, path="/OrderSend")
    await client.orders.send(account, "EURUSD", 0, 0.1)
    assert len(await client.orders.positions(account)) == 2
    assert sim.requests.count(path="/OrderSend") == 2


async def test_pending_order_of_unknown_outcome_is_not_resent(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.queue_retcode(10012, execute=False, path="/OrderSend")
    with pytest.raises(BrokerRejectionError) as info:
        await client.orders.send(account, "EURUSD", OrderType.BUY_LIMIT, 0.1, price=1.07)
    assert info.value.outcome_unknown
    assert sim.requests.count(path="/OrderSend") == 1


async def test_close_of_unknown_outcome_checks_positions(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    ticket = (await client.orders.send(account, "EURUSD", 0, 0.1)).ticket
    sim.faults.queue_retcode(10012, execute=True, path="/OrderClose")
    result = await client.orders.close(account, ticket)
    assert result.success and result.ticket == ticket
    assert await client.orders.positions(account) == []
    assert sim.requests.count(path="/OrderClose") == 1

    ticket = (await client.orders.send(account, "EURUSD", 0, 0.1)).ticket
    sim.faults.queue_retcode(10012, execute=False, path="/OrderClose")
    assert (await client.orders.close(account, ticket)).success
    assert await client.orders.positions(account) == []
    assert sim.requests.count(path="/OrderClose") == 3


async def test_partial_close_of_unknown_outcome_is_not_resent(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    ticket = (await client.orders.send(account, "EURUSD", 0, 0.3)).ticket
    sim.faults.queue_retcode(10012, execute=True, path="/OrderClose")
    with pytest.raises(BrokerRejectionError) as info:
        await client.orders.close(account, ticket, volume=0.1)
    assert info.value.outcome_unknown
    (position,) = await client.orders.positions(account)
    assert position.volume == pytest.approx(0.2)  # closed once, not twice
    assert sim.requests.count(path="/OrderClose") == 1
