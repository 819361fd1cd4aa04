"""``/_sim/...``: the in-process control surface over HTTP, for ``riskd sim`` users and
benchmarks running in another process.

- ``POST /_sim/<control>`` with a JSON object of keyword arguments calls
  ``Simulator.<control>(**kwargs)`` (same names as in Python; times as ISO 8601 strings) and
  answers ``{"result": ...}``;
- ``POST /_sim/faults/<knob>`` does the same for ``FaultInjector.<knob>``;
- ``GET /_sim/requests[?path=&method=]`` lists the request log, ``DELETE`` clears it.

Same auth as the bridge. Errors: 400 ``{"message"}`` for bad arguments, 404 for an unknown
control or account.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from riskd.sim import wire
from riskd.sim.errors import UnknownAccount
from riskd.sim.market import Quote
from riskd.sim.wire import error_response

if TYPE_CHECKING:
    from riskd.sim.simulator import Simulator

CONTROLS = frozenset(
    {
        "create_account",
        "delete_account",
        "set_balance",
        "set_connected",
        "open_position",
        "set_swap",
        "set_price",
        "set_prices",
        "script_prices",
        "step_script",
        "script_remaining",
        "set_tick_rate",
        "set_time",
        "advance_time",
        "drop_streams",
        "stream_connections",
        "stream_stats",
        "reset_faults",
    }
)

FAULT_KNOBS = frozenset(
    {
        "set_latency",
        "fail_next",
        "set_error_rate",
        "hang_next",
        "set_timeout_rate",
        "rate_limit_next",
        "queue_retcode",
        "reject_next_streams",
        "close_next_streams",
        "set_stream_malformed_rate",
        "set_stream_bad_tick_rate",
        "reset",
    }
)


def _to_json(value: Any) -> Any:
    if isinstance(value, Quote):
        return wire.quote_json(value)
    if isinstance(value, datetime):
        return wire.format_time(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


async def _invoke(request: Request, sim: Simulator, target: Callable[..., Any]) -> Response:
    if not sim.auth.allows(request.headers):
        return error_response(401, wire.AUTH_FAILED)
    raw = await request.body()
    try:
        kwargs = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return error_response(400, "malformed JSON body")
    if not isinstance(kwargs, dict):
        return error_response(400, "expected a JSON object of keyword arguments")
    try:
        inspect.signature(target).bind(**kwargs)
    except TypeError as exc:
        return error_response(400, str(exc))
    try:
        result = target(**kwargs)
    except UnknownAccount as exc:
        return error_response(404, str(exc))
    except (ValueError, TypeError, ArithmeticError) as exc:  # SimError is a ValueError
        return error_response(400, str(exc))
    return JSONResponse({"result": _to_json(result)})


def control_routes(sim: Simulator) -> list[BaseRoute]:
    """The ``/_sim`` routes over ``sim``."""

    async def control(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in CONTROLS:
            return error_response(404, f"no control {name!r}")
        return await _invoke(request, sim, getattr(sim, name))

    async def fault(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in FAULT_KNOBS:
            return error_response(404, f"no fault knob {name!r}")
        return await _invoke(request, sim, getattr(sim.faults, name))

    async def requests(request: Request) -> Response:
        if not sim.auth.allows(request.headers):
            return error_response(401, wire.AUTH_FAILED)
        if request.method == "DELETE":
            sim.requests.clear()
            return JSONResponse({"result": None})
        records = sim.requests.records(
            path=request.query_params.get("path"), method=request.query_params.get("method")
        )
        return JSONResponse({"result": [dataclasses.asdict(r) for r in records]})

    return [
        Route("/_sim/requests", requests, methods=["GET", "DELETE"]),
        Route("/_sim/faults/{name}", fault, methods=["POST"]),
        Route("/_sim/{name}", control, methods=["POST"]),
    ]
