"""Shared fixtures: a live bridge simulator on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from riskd.sim import SimServer


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A started simulator on a free loopback port with no random ticks (tests set prices)."""
    with SimServer(host="127.0.0.1", port=0, tick_rate=0) as server:
        yield server
