"""Clients wired to the live simulator, with fast back-off and a hooks recorder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import pytest

from riskd.api2trade import Api2TradeClient, AsyncApi2TradeClient
from riskd.api2trade.backoff import Backoff
from riskd.sim import SimServer


@dataclass
class Recorder:
    """``ClientHooks`` that remembers every call."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    retries: list[tuple[str, str]] = field(default_factory=list)

    def on_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.requests.append((endpoint, outcome))

    def on_retry(self, endpoint: str, reason: str) -> None:
        self.retries.append((endpoint, reason))


def fast_backoff() -> Backoff:
    return Backoff(base=0.01, cap=0.05)


@pytest.fixture
def hooks() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(sim: SimServer, hooks: Recorder) -> AsyncIterator[AsyncApi2TradeClient]:
    async with AsyncApi2TradeClient(
        api_key=sim.api_key, base_url=sim.base_url, timeout=2.0, hooks=hooks,
        backoff=fast_backoff(),
    ) as c:  # fmt: skip
        yield c


@pytest.fixture
def sync_client(sim: SimServer) -> Iterator[Api2TradeClient]:
    with Api2TradeClient(
        api_key=sim.api_key, base_url=sim.base_url, timeout=2.0, backoff=fast_backoff()
    ) as c:
        yield c


@pytest.fixture
def account(sim: SimServer) -> str:
    """A USD 100k account, leverage 100, with known prices on the symbols tests trade."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    sim.set_price("USDJPY", 150.000, 150.010)
    sim.set_price("XAUUSD", 2350.00, 2350.30)
    return sim.create_account()
