"""The API2Trade bridge simulator: a real HTTP + WebSocket server speaking the ``sdk`` dialect.

Used by riskd's tests, demo and benchmarks (no real bridge is reachable from them)::

    with SimServer(port=0, tick_rate=0) as sim:
        account_id = sim.create_account(balance=10_000)
        sim.set_price("EURUSD", 1.0850)
        ...  # talk to sim.base_url / sim.ws_url with x-api-key: sim.api_key

Modules, along the data flow: ``market`` (prices) -> ``broker`` (accounts, fills, triggers,
valuation; ``triggers`` indexes SL/TP/pending levels) -> ``stream`` (quote fan-out) and
``server`` (REST endpoints, stream handshake) with ``wire`` (JSON shapes), ``auth``,
``faults`` (fault injection), ``requestlog``, ``control`` (``/_sim`` routes); ``simulator``
ties them together on one event loop and ``runner`` serves it with uvicorn.
"""

from riskd.sim.clock import ManualClock, system_clock
from riskd.sim.errors import SimError, UnknownAccount
from riskd.sim.faults import FaultInjector
from riskd.sim.market import DEFAULT_SPECS, Quote, SymbolSpec
from riskd.sim.requestlog import RequestLog, RequestRecord
from riskd.sim.runner import SimServer
from riskd.sim.simulator import Simulator

__all__ = [
    "DEFAULT_SPECS",
    "FaultInjector",
    "ManualClock",
    "Quote",
    "RequestLog",
    "RequestRecord",
    "SimError",
    "SimServer",
    "Simulator",
    "SymbolSpec",
    "UnknownAccount",
    "system_clock",
]
