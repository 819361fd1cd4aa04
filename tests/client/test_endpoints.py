"""Every REST endpoint, both auth modes and every exception, against the live simulator."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest

from riskd.api2trade import Api2TradeClient, AsyncApi2TradeClient, OrderType
from riskd.api2trade.exceptions import (
    AccountNotFoundError,
    Api2TradeConnectionError,
    AuthenticationError,
    BrokerRejectionError,
    RateLimitError,
    ServerError,
)
from riskd.sim import SimServer
from tests.client.conftest import Recorder, fast_backoff


def test_sync_quick_start_as_in_the_sdk_readme(
    sync_client: Api2TradeClient, sim: SimServer
) -> None:
    client = sync_client
    account_id = client.accounts.register(
        login="123456", password="BrokerPass", server="ICMarkets-Live01"
    )
    assert client.accounts.check_connect(account_id).connected
    summary = client.accounts.summary(account_id)
    assert summary.currency == "USD" and summary.balance == summary.equity > 0

    sim.set_price("EURUSD", 1.08500, 1.08510)
    quote = client.market.quote(account_id, "EURUSD")
    assert str(quote) == "Quote(EURUSD: bid=1.08500, ask=1.08510, spread=1.0 pips)"

    result = client.orders.send(
        account_id, symbol="EURUSD", order_type=OrderType.BUY_MARKET, volume=0.01,
        stop_loss=round(quote.ask - 0.0020, 5), take_profit=round(quote.ask + 0.0040, 5),
    )  # fmt: skip
    assert result.success and result.ticket > 0
    (position,) = client.orders.positions(account_id)
    assert (position.ticket, position.symbol, position.order_type, position.volume) == (
        result.ticket, "EURUSD", "buy", 0.01,
    )  # fmt: skip
    assert position.open_price == pytest.approx(1.08510)
    assert position.total_pnl == pytest.approx(-0.10)  # the spread: 1 pip on 0.01 lot

    closed = client.orders.close(account_id, ticket=result.ticket)
    assert closed.success
    assert client.orders.positions(account_id) == []
    client.accounts.delete(account_id)
    with pytest.raises(AccountNotFoundError):
        client.accounts.summary(account_id)


async def test_quotes_are_fetched_concurrently(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.set_latency(0.5, path="/GetQuote")
    symbols = ["EURUSD", "USDJPY", "XAUUSD", "GBPUSD"]
    quotes = await client.market.quotes(account, symbols)
    assert [q.symbol for q in quotes] == symbols
    arrivals = [r.at for r in sim.requests.records(path="/GetQuote")]
    # One after another they would arrive 0.5 s apart; together they arrive at once.
    assert max(arrivals) - min(arrivals) < 0.25


async def test_modify_partial_close_and_close_all(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    buy = await client.orders.send(account, "EURUSD", OrderType.BUY_MARKET, 0.30)
    sell = await client.orders.send(account, "USDJPY", 1, 0.10)  # plain int as in the SDK
    modified = await client.orders.modify(account, buy.ticket, stop_loss=1.07, take_profit=1.11)
    assert modified.success
    positions = {p.ticket: p for p in await client.orders.positions(account)}
    assert positions[buy.ticket].stop_loss == pytest.approx(1.07)
    assert positions[buy.ticket].take_profit == pytest.approx(1.11)

    partial = await client.orders.close(account, buy.ticket, volume=0.10)
    assert partial.success
    positions = {p.ticket: p for p in await client.orders.positions(account)}
    assert positions[buy.ticket].volume == pytest.approx(0.20)

    results = await client.orders.close_all(account)
    assert sorted(r.ticket for r in results) == sorted([buy.ticket, sell.ticket])
    assert all(r.success for r in results)
    assert await client.orders.positions(account) == []
    assert sim.requests.count(path="/OrderClose") == 3


async def test_close_all_reports_each_refusal_without_hiding_the_rest(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    a = await client.orders.send(account, "EURUSD", OrderType.BUY_MARKET, 0.1)
    b = await client.orders.send(account, "EURUSD", OrderType.SELL_MARKET, 0.1)
    sim.faults.queue_retcode(10018, path="/OrderClose")  # market closed, once
    results = {r.ticket: r for r in await client.orders.close_all(account)}
    assert set(results) == {a.ticket, b.ticket}
    refused = [r for r in results.values() if not r.success]
    assert len(refused) == 1 and refused[0].retcode == 10018
    assert "Market is closed" in refused[0].comment
    assert len(await client.orders.positions(account)) == 1


async def test_history_pages_iteration_and_stats(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    tickets = []
    for _ in range(7):
        tickets.append((await client.orders.send(account, "EURUSD", 0, 0.1)).ticket)
    sim.set_price("EURUSD", 1.08600, 1.08610)  # +9 pips on each buy
    for ticket in tickets[:5]:
        await client.orders.close(account, ticket)
    sim.set_price("EURUSD", 1.08400, 1.08410)  # -11 pips on the rest
    for ticket in tickets[5:]:
        await client.orders.close(account, ticket)

    now = datetime.now(UTC)
    start = now - timedelta(days=1)
    later = now + timedelta(minutes=1)
    everything = await client.history.get(account, start, later)
    assert sorted(o.ticket for o in everything) == sorted(tickets)

    first = await client.history.get_page(account, start, later, page=1, page_size=3)
    assert (first.total, first.total_pages, first.has_next, len(first.data)) == (7, 3, True, 3)
    last = await client.history.get_page(account, start, later, page=3, page_size=3)
    assert (last.has_next, len(last.data)) == (False, 1)

    streamed = [o.ticket async for o in client.history.iter_all(account, start, later, page_size=2)]
    assert sorted(streamed) == sorted(tickets)
    assert sim.requests.count(path="/OrderHistoryPagination") == 2 + 4

    assert len(await client.history.last_n_days(account, days=1)) == 7
    stats = await client.history.summary_stats(account, start, later)
    assert stats["total_trades"] == 7
    assert stats["win_rate"] == pytest.approx(5 / 7)
    assert stats["net_profit"] == pytest.approx(5 * 9.0 - 2 * 11.0)
    assert stats["profit_factor"] == pytest.approx(45.0 / 22.0)


def test_sync_history_iter_all_is_a_generator(sync_client: Api2TradeClient, sim: SimServer) -> None:
    account = sim.create_account()
    for _ in range(3):
        ticket = sync_client.orders.send(account, "EURUSD", 0, 0.1).ticket
        sync_client.orders.close(account, ticket)
    now = datetime.now(UTC)
    items = sync_client.history.iter_all(
        account, now - timedelta(hours=1), now + timedelta(minutes=1), page_size=1
    )
    assert len(list(items)) == 3
    assert sim.requests.count(path="/OrderHistoryPagination") == 3


async def test_basic_auth(sim: SimServer, account: str) -> None:
    async with AsyncApi2TradeClient(
        pro_username="pro-user", pro_password="pro-pass", base_url=sim.base_url
    ) as pro:
        assert (await pro.accounts.summary(account)).balance == 100_000.0
    async with AsyncApi2TradeClient(
        pro_username="pro-user", pro_password="wrong", base_url=sim.base_url
    ) as bad:
        with pytest.raises(AuthenticationError) as info:
            await bad.accounts.summary(account)
    assert info.value.status_code == 401


async def test_bad_api_key_and_unknown_account(sim: SimServer, account: str) -> None:
    async with AsyncApi2TradeClient(api_key="nope", base_url=sim.base_url) as bad:
        with pytest.raises(AuthenticationError):
            await bad.accounts.summary(account)
    async with AsyncApi2TradeClient(api_key=sim.api_key, base_url=sim.base_url) as good:
        with pytest.raises(AccountNotFoundError) as info:
            await good.accounts.summary("00000000-0000-0000-0000-000000000000")
    assert info.value.status_code == 404
    assert sim.requests.count(path="/AccountSummary") == 2  # neither is retried


async def test_broker_rejection_is_not_retried(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    with pytest.raises(BrokerRejectionError) as info:
        await client.orders.send(account, "XAUUSD", OrderType.BUY_MARKET, 500.0)
    assert info.value.retcode == 10019
    assert not info.value.is_retryable
    assert "Insufficient margin" in str(info.value)
    assert sim.requests.count(path="/OrderSend") == 1


async def test_5xx_is_retried_with_backoff_then_succeeds(
    client: AsyncApi2TradeClient, sim: SimServer, account: str, hooks: Recorder
) -> None:
    sim.faults.fail_next(2, status=503, path="/AccountSummary")
    assert (await client.accounts.summary(account)).balance == 100_000.0
    assert sim.requests.count(path="/AccountSummary") == 3
    assert hooks.retries == [("/AccountSummary", "http_503")] * 2


async def test_5xx_beyond_max_retries_raises_server_error(
    client: AsyncApi2TradeClient, sim: SimServer, account: str
) -> None:
    sim.faults.fail_next(10, status=502, path="/Positions")
    with pytest.raises(ServerError) as info:
        await client.orders.positions(account)
    assert info.value.status_code == 502
    assert sim.requests.count(path="/Positions") == 1 + client.settings.max_retries


async def test_429_honours_retry_after(
    client: AsyncApi2TradeClient, sim: SimServer, account: str, hooks: Recorder
) -> None:
    sim.faults.rate_limit_next(1, retry_after=0.3, path="/AccountSummary")
    await client.accounts.summary(account)
    first, second = sim.requests.records(path="/AccountSummary")
    assert second.at - first.at >= 0.3
    assert hooks.retries == [("/AccountSummary", "rate_limited")]


async def test_429_exhausted_raises_rate_limit_error(sim: SimServer, account: str) -> None:
    sim.faults.rate_limit_next(5, retry_after=0.01)
    async with AsyncApi2TradeClient(
        api_key=sim.api_key, base_url=sim.base_url, max_retries=1
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.accounts.summary(account)
    assert info.value.retry_after == pytest.approx(0.01)
    assert sim.requests.count(path="/AccountSummary") == 2


async def test_timeout_is_retried_for_reads(sim: SimServer, account: str, hooks: Recorder) -> None:
    sim.faults.hang_next(1, seconds=5.0, path="/AccountSummary")
    async with AsyncApi2TradeClient(
        api_key=sim.api_key, base_url=sim.base_url, timeout=0.3, hooks=hooks,
        backoff=fast_backoff(),
    ) as client:  # fmt: skip
        assert (await client.accounts.summary(account)).balance == 100_000.0
    assert ("/AccountSummary", "timeout") in hooks.requests
    assert hooks.retries == [("/AccountSummary", "timeout")]


async def test_connection_refused_raises_connection_error(hooks: Recorder) -> None:
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AsyncApi2TradeClient(
        api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=2, hooks=hooks,
        backoff=fast_backoff(),
    ) as client:  # fmt: skip
        with pytest.raises(Api2TradeConnectionError):
            await client.accounts.summary("acc")
    assert len(hooks.retries) == 2
    assert {reason for _, reason in hooks.retries} == {"connection_error"}
