"""``riskd demo`` tells the whole story: warnings, breach, flatten, lockout."""

from __future__ import annotations

import io

from riskd.demo import run_demo


async def test_demo_runs_the_whole_story() -> None:
    out = io.StringIO()
    assert await run_demo(out=out, speed=5.0) == 0
    text = out.getvalue()
    order = [
        "at 50% of the allowed loss",
        "at 80% of the allowed loss",
        "ftmo-daily-loss BREACHED",
        "account flattened",
        "closing positions opened during lockout",
        "Done: riskd flattened the account",
    ]
    positions = [text.find(line) for line in order]
    assert -1 not in positions, text
    assert positions == sorted(positions), text
    # One alert per state change: a poll landing between ticks must not re-arm a warning.
    for level in ("50%", "80%", "90%"):
        assert text.count(f"ftmo-daily-loss at {level} of the allowed loss") == 1, text
