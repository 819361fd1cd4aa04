"""The quiet band is sound: a tick inside it, evaluated in full, changes nothing.

The property drives random rule sets of every kind along random equity walks (with jumps
across floors, targets and warning levels) and evaluates every step in full. Whenever the band
left by the previous step says "quiet", the full evaluation must agree: the same statuses, no
``Newly`` flag, and the very same state objects. The tick path skips exactly those steps.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskd.engine import Newly, evaluate, parse_rules
from riskd.engine.band import QuietBand, quiet_band
from tests.engine.helpers import Account, snap, utc

START = utc("2026-03-20 08:00")
INITIAL = 100_000.0
RESET = '{at: "00:00", zone: Europe/Prague}'


def _levels(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.integers(5, 95), max_size=3, unique=True))
    return "[" + ", ".join(f"{x}%" for x in sorted(levels)) + "]"


@st.composite
def rule_sets(draw: st.DrawFn) -> str:
    """Rule-file text with 1-6 rules of every kind (actions, warnings, for: and resets)."""
    kinds = draw(
        st.lists(
            st.sampled_from(
                ["daily", "max", "trail_eq", "trail_bal", "target", "margin", "exposure", "stale"]
            ),
            min_size=1,
            max_size=6,
        )
    )
    out = []
    for i, kind in enumerate(kinds):
        actions = {"stale": ["alert"], "target": ["alert", "close_all"]}
        action = draw(st.sampled_from(actions.get(kind, ["alert", "close_all", "lockout"])))
        hold = draw(st.sampled_from([0, 0, 3]))
        head = f"- name: r{i}\n  action: {action}\n  for: {hold}s\n  warn_at: {_levels(draw)}\n"
        pct = draw(st.sampled_from([1, 2.5, 5, 10]))
        if kind == "daily":
            baseline = draw(st.sampled_from(["balance", "equity", "max_balance_equity"]))
            of = draw(st.sampled_from(["initial_balance", "day_start"]))
            head += (
                f"  kind: daily_loss\n  limit: {pct}%\n  limit_of: {of}\n"
                f"  baseline: {baseline}\n  reset: {RESET}\n"
            )
        elif kind == "max":
            head += f"  kind: max_loss\n  limit: {pct}%\n"
        elif kind in ("trail_eq", "trail_bal"):
            track = "equity" if kind == "trail_eq" else "balance"
            lock = draw(st.booleans())
            head += (
                f"  kind: trailing_drawdown\n  limit: {pct}%\n  track: {track}\n"
                f"  update: intraday\n  lock_at_initial: {str(lock).lower()}\n"
            )
        elif kind == "target":
            head += f"  kind: profit_target\n  target: {pct}%\n"
        elif kind == "margin":
            head += f"  kind: margin_level\n  below: {draw(st.sampled_from([50, 100, 150]))}%\n"
        elif kind == "exposure":
            head += "  kind: exposure\n  max_total_lots: 3\n"
        else:
            head += "  kind: stale_data\n  max_poll_age: 20s\n"
        out.append(head)
    return "".join(out)


walks = st.lists(
    st.tuples(
        st.floats(0.0, 4.0),  # seconds to the next tick
        st.one_of(
            st.floats(-400.0, 400.0),  # a tick's move
            st.floats(-12_000.0, 12_000.0),  # a jump
        ),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=rule_sets(),
    walk=walks,
    start=st.floats(88_000.0, 112_000.0),
    margin=st.sampled_from([0.0, 1_000.0, 60_000.0]),
)
def test_inside_the_band_a_full_evaluation_changes_nothing(
    text: str, walk: list[tuple[float, float]], start: float, margin: float
) -> None:
    rules = parse_rules(text)
    account = Account(rules, INITIAL)
    account.roll(utc("2026-03-19 23:00"), balance=INITIAL, equity=INITIAL)
    now, equity = START, start
    band: QuietBand | None = None
    quiet_steps = 0
    for seconds, move in walk:
        now += timedelta(seconds=seconds)
        equity = max(equity + move, 1.0)
        snapshot = snap(
            now,
            equity=equity,
            balance=INITIAL,
            margin=margin,
            positions=[("EURUSD", "buy", 1.0)],
            last_poll_at=START,
            last_tick_at=now,
            estimated=True,
        )
        before = dict(account.states)
        previous = account.last
        result = evaluate(rules, snapshot, before)
        if band is not None and band.holds(equity, now):
            quiet_steps += 1
            assert previous is not None
            assert [v.status for v in result.verdicts] == [v.status for v in previous.verdicts]
            assert all(v.newly is Newly.NONE for v in result.verdicts)
            assert result.changed == ()
            for rule in rules:
                assert result.states[rule.name] is band.states[rules.index(rule)]
        account.states, account.last = dict(result.states), result
        band = None if result.to_flatten else quiet_band(rules, snapshot, result)


def test_a_band_is_left_at_the_floor_and_at_the_next_reset() -> None:
    rules = parse_rules(
        "- name: daily\n  kind: daily_loss\n  limit: 5%\n  limit_of: initial_balance\n"
        "  baseline: balance\n  action: close_all\n"
        f"  warn_at: [50%]\n  reset: {RESET}\n"
    )
    account = Account(rules, INITIAL)
    account.roll(utc("2026-03-19 23:00"), balance=INITIAL)
    snapshot = snap(START, equity=99_000.0, balance=INITIAL, last_poll_at=START)
    result = account.at(START, equity=99_000.0, balance=INITIAL)
    band = quiet_band(rules, snapshot, result)
    assert band is not None
    # Floor 95,000; the 50% warning at 97,500; nothing above (no mark, no target).
    assert 97_500.0 < band.lo < 97_500.1
    assert band.hi == float("inf")
    assert band.holds(97_600.0, START)
    assert not band.holds(97_500.0, START)
    assert band.until == utc("2026-03-20 23:00")  # Prague midnight (CET)
    assert not band.holds(99_000.0, utc("2026-03-20 23:00"))


def test_no_band_while_a_rule_is_pending() -> None:
    rules = parse_rules(
        "- name: floor\n  kind: max_loss\n  limit: 5%\n  action: close_all\n  for: 10s\n"
    )
    account = Account(rules, INITIAL)
    snapshot = snap(START, equity=94_000.0, last_poll_at=START)
    result = account.at(START, equity=94_000.0)
    assert result.verdicts[0].status == "pending"
    assert quiet_band(rules, snapshot, result) is None


def test_a_trailing_equity_mark_closes_the_band_above() -> None:
    rules = parse_rules(
        "- name: trail\n  kind: trailing_drawdown\n  limit: 5%\n  track: equity\n"
        "  update: intraday\n  action: close_all\n"
    )
    account = Account(rules, INITIAL)
    snapshot = snap(START, equity=101_000.0, last_poll_at=START)
    result = account.at(START, equity=101_000.0)
    # The mark just rose to this equity: any rise raises it again, so there is no band.
    assert quiet_band(rules, snapshot, result) is None
    lower = snap(START, equity=100_500.0, last_poll_at=START)
    band = quiet_band(rules, lower, account.at(START, equity=100_500.0))
    assert band is not None
    assert band.hi < 101_000.0
    assert band.lo > 96_000.0  # the floor trails the mark: 101,000 - 5,000


def test_no_band_while_a_lockout_holds_open_positions() -> None:
    # Positions under a lockout are closed on sight by the full check, retried on each poll:
    # neither a tick nor a check may be skipped until the account is flat.
    rules = parse_rules("- name: floor\n  kind: max_loss\n  limit: 5%\n  action: lockout\n")
    account = Account(rules, INITIAL)
    account.at(START, equity=94_000.0)  # breached: latched
    held = snap(START, equity=94_100.0, positions=[("EURUSD", "buy", 1.0)], last_poll_at=START)
    result = evaluate(rules, held, account.states)
    assert result.locked_out
    assert quiet_band(rules, held, result) is None
    flat = snap(START, equity=94_100.0, last_poll_at=START)
    assert quiet_band(rules, flat, evaluate(rules, flat, account.states)) is not None


def test_no_band_at_a_non_finite_equity() -> None:
    rules = parse_rules("- name: floor\n  kind: max_loss\n  limit: 5%\n  action: close_all\n")
    nan = snap(START, equity=float("nan"), last_poll_at=START)
    assert quiet_band(rules, nan, evaluate(rules, nan, {})) is None
