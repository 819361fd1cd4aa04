"""Pure pieces without a server: market, trigger book, broker money, wire times, auth."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskd.sim import ManualClock, SimError
from riskd.sim.auth import Auth
from riskd.sim.broker import Broker, to_cents, volume_ok
from riskd.sim.market import DEFAULT_SPECS, Market
from riskd.sim.triggers import TriggerBook
from riskd.sim.wire import format_time, parse_time

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# -- market -------------------------------------------------------------------------------------


def test_market_covers_the_required_symbols_with_realistic_prices() -> None:
    market = Market(clock=ManualClock(T0))
    assert set(market.symbols) >= {
        "EURUSD",
        "GBPUSD",
        "USDJPY",
        "USDCHF",
        "AUDUSD",
        "USDCAD",
        "NZDUSD",
        "EURGBP",
        "EURJPY",
        "GBPJPY",
        "XAUUSD",
        "XAGUSD",
        "US30",
        "GER40",
    }
    eurusd = market.quote("EURUSD")
    assert (eurusd.bid, eurusd.ask, eurusd.time) == (1.0850, 1.08508, T0)  # 0.8 pip spread
    assert market.quote("USDJPY").ask == 150.010
    assert market.instrument("GER40").quote == "EUR"
    assert market.mid("EURUSD") == pytest.approx(1.08504)
    assert market.mid("NOPE") is None


def test_set_price_rounds_and_defaults_the_ask() -> None:
    market = Market()
    quote = market.set_price("EURUSD", 1.123456789)
    assert (quote.bid, quote.ask) == (1.12346, 1.12354)
    assert market.set_price("XAUUSD", 2000, 2000.5).ask == 2000.5
    for bad in ((0.0, None), (-1.0, None), (1.1, 1.0), (float("nan"), None)):
        with pytest.raises(SimError):
            market.set_price("EURUSD", *bad)
    with pytest.raises(SimError):
        market.set_price("NOPE", 1.0)


def test_random_walk_is_seeded_rounded_and_skips_scripted_symbols() -> None:
    def walk(seed: int) -> list[tuple[str, float]]:
        market = Market(seed=seed)
        out = []
        for _ in range(200):
            quote = market.random_tick(skip={"EURUSD"})
            assert quote is not None
            out.append((quote.symbol, quote.bid))
        return out

    first = walk(1)
    assert first == walk(1)
    assert first != walk(2)
    assert "EURUSD" not in {s for s, _ in first}
    digits = {spec.symbol: Market().instrument(spec.symbol).digits for spec in DEFAULT_SPECS}
    assert all(bid == round(bid, digits[s]) and bid > 0 for s, bid in first)


# -- trigger book -------------------------------------------------------------------------------


def _fires(level: float, side: str, below: bool, *, bid: float, ask: float) -> bool:
    price = bid if side == "bid" else ask
    return price <= level if below else price >= level


levels = st.floats(min_value=1.0, max_value=2.0, allow_nan=False).map(lambda x: round(x, 3))


@settings(max_examples=200, deadline=None)
@given(
    triggers=st.lists(
        st.tuples(levels, st.sampled_from(["bid", "ask"]), st.booleans()), max_size=30
    ),
    removed=st.sets(st.integers(min_value=0, max_value=29)),
    prices=st.lists(st.tuples(levels, levels), min_size=1, max_size=10),
)
def test_trigger_book_fires_exactly_what_a_linear_scan_would(
    triggers: list[tuple[float, str, bool]],
    removed: set[int],
    prices: list[tuple[float, float]],
) -> None:
    book: TriggerBook[int] = TriggerBook()
    live: dict[int, tuple[float, str, bool]] = {}
    for key, (level, side, below) in enumerate(triggers):
        book.arm(key, level, "bid" if side == "bid" else "ask", below)
        live[key] = (level, side, below)
    for key in removed:
        book.disarm(key)
        live.pop(key, None)
    for a, b in prices:
        bid, ask = min(a, b), max(a, b)
        expected = {key for key, trigger in live.items() if _fires(*trigger, bid=bid, ask=ask)}
        assert set(book.fired(bid, ask)) == expected
        for key in expected:
            del live[key]
    assert len(book) == len(live)


def test_rearming_replaces_the_old_level() -> None:
    book: TriggerBook[str] = TriggerBook()
    book.arm("sl", 1.10, "bid", below=True)
    book.arm("sl", 1.05, "bid", below=True)
    assert book.fired(1.08, 1.09) == []
    assert book.fired(1.05, 1.06) == ["sl"]
    assert "sl" not in book


# -- broker money -------------------------------------------------------------------------------


def test_cents_round_half_away_from_zero_on_the_decimal_text() -> None:
    assert to_cents(8.675) == 868  # round(8.675, 2) would give 8.67 (binary)
    assert to_cents(-8.675) == -868
    assert to_cents(0.004999) == 0
    assert to_cents(1e-05) == 0
    assert to_cents(123456.785) == 12345679


def test_volume_grid() -> None:
    assert volume_ok(0.01) and volume_ok(1.1) and volume_ok(100)
    assert not (volume_ok(0) or volume_ok(-0.01) or volume_ok(0.015) or volume_ok(float("inf")))


def dec(x: float) -> Decimal:
    """The decimal a float prints as (what the wire carries)."""
    return Decimal(repr(x))


volumes = st.integers(min_value=1, max_value=500).map(lambda n: n / 100)


@settings(max_examples=100, deadline=None)
@given(
    trades=st.lists(
        st.tuples(
            st.sampled_from(["EURUSD", "USDJPY", "XAUUSD", "GER40", "GBPJPY"]),
            st.sampled_from(["buy", "sell"]),
            volumes,
            st.floats(min_value=-50, max_value=50, allow_nan=False),  # swap
        ),
        min_size=1,
        max_size=8,
    ),
    moves=st.lists(st.floats(min_value=0.97, max_value=1.03), min_size=5, max_size=5),
    currency=st.sampled_from(["USD", "EUR", "JPY", "GBP", "CHF"]),
    commission=st.floats(min_value=0, max_value=10, allow_nan=False),
)
def test_equity_identity_and_conservation_on_close(
    trades: list[tuple[str, str, float, float]],
    moves: list[float],
    currency: str,
    commission: float,
) -> None:
    market = Market()
    broker = Broker(market, ManualClock(T0))
    account = broker.create_account(
        balance=50_000, currency=currency, leverage=200, commission_per_lot=commission
    )
    for symbol, side, volume, swap in trades:
        pos = broker.open_position(account, symbol, side, volume)
        broker.set_swap(account, pos.ticket, swap)
    for symbol, factor in zip(
        ["EURUSD", "USDJPY", "XAUUSD", "GER40", "GBPJPY"], moves, strict=True
    ):
        market.set_price(symbol, market.quote(symbol).bid * factor)

    view = broker.view(account)
    floating = sum(
        (dec(p.profit) + dec(p.swap) + dec(p.commission) for p in view.positions), Decimal(0)
    )
    assert dec(view.equity) == dec(view.balance) + dec(view.credit) + floating
    assert dec(view.free_margin) == dec(view.equity) - dec(view.margin)

    # Closing everything (half first, then the rest) realises exactly the floating total.
    before = account.balance_cents + sum(
        p.profit_cents + p.swap_cents + p.commission_cents for p in view.positions
    )
    for pos in list(account.positions.values()):
        half = round(pos.volume / 2, 2)
        if volume_ok(half) and half < pos.volume:
            assert broker.close(account, pos.ticket, half).retcode == 10009
        assert broker.close(account, pos.ticket).retcode == 10009
    assert account.balance_cents == pytest.approx(before, abs=len(trades) * 2)
    assert account.positions == {}


# -- wire times and auth ------------------------------------------------------------------------


def test_time_format_has_milliseconds_and_z() -> None:
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.678Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 2, 5, 4, 5, tzinfo=plus_two)) == "2026-01-02T03:04:05.000Z"
    assert parse_time("2026-01-02T03:04:05Z") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2026-01-02T05:04:05.5+02:00").hour == 3
    with pytest.raises(ValueError):
        parse_time("yesterday")


def test_auth_modes() -> None:
    auth = Auth(["k"], {"u": "p:with:colons"})
    token = base64.b64encode(b"u:p:with:colons").decode()
    assert auth.allows({"x-api-key": "k"})
    assert auth.allows({"authorization": f"Basic {token}"})
    assert auth.allows({}, {"api_key": "k"})
    assert not auth.allows({})
    assert not auth.allows({"x-api-key": "k2"}, {"api_key": "k"})  # a wrong header is final
    assert not auth.allows({"authorization": "Basic dTpw"})  # u:p


def test_manual_clock_requires_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock(T0)
    assert clock.advance(minutes=1, seconds=30) == T0 + timedelta(seconds=90)
