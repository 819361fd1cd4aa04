"""``riskd sim``: run the bridge simulator until Ctrl-C, with a demo account to point at."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import TextIO

from riskd.sim.auth import DEFAULT_API_KEY
from riskd.sim.runner import SimServer

# Demo positions: (symbol, side, volume, open price offset in pips from the market).
_DEMO_POSITIONS = (
    ("EURUSD", "buy", 1.0, -12.0),
    ("XAUUSD", "sell", 0.5, 35.0),
)


def add_sim_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``riskd sim`` on the ``riskd`` command line."""
    parser = subparsers.add_parser(
        "sim",
        help="run the API2Trade bridge simulator (HTTP + WebSocket) on loopback",
        description=(
            "Serve a simulated API2Trade bridge (sdk dialect) with a random-walk market, "
            "for demos, tests and benchmarks. Runs until Ctrl-C."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (prices, ids, faults)")
    parser.add_argument(
        "--tick-rate", type=float, default=10.0, help="random-walk ticks per second (0: none)"
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the accepted API key")
    parser.add_argument(
        "--demo-account",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pre-register a demo account with open positions (default: yes)",
    )
    parser.set_defaults(handler=run_sim)


def run_sim(args: argparse.Namespace) -> int:
    """The ``riskd sim`` command; returns 0 after a clean Ctrl-C/SIGTERM shutdown."""
    server = SimServer(
        host=args.host,
        port=args.port,
        seed=args.seed,
        tick_rate=args.tick_rate,
        api_keys=[args.api_key],
        # uvicorn's per-connection INFO lines drown the banner; show them only when debugging.
        log_level="debug" if str(getattr(args, "log_level", "")).upper() == "DEBUG" else "warning",
    )
    try:
        asyncio.run(_serve(server, demo_account=args.demo_account))
    except KeyboardInterrupt:  # Ctrl-C before the handlers were installed
        pass
    except OSError as exc:
        print(f"riskd sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(server: SimServer, *, demo_account: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start_async()
    try:
        account_id = _create_demo_account(server) if demo_account else None
        print_banner(server, account_id)
        await stop.wait()
    finally:
        await server.stop_async()


def _create_demo_account(server: SimServer) -> str:
    account_id = server.create_account(balance=100_000.0, currency="USD", leverage=100)
    for symbol, side, volume, offset_pips in _DEMO_POSITIONS:
        inst = server.sim.market.instrument(symbol)
        quote = server.quote(symbol)
        price = (quote.ask if side == "buy" else quote.bid) + offset_pips * inst.pip_size
        server.open_position(account_id, symbol, side, volume, open_price=price, comment="demo")
    return account_id


def print_banner(server: SimServer, account_id: str | None, out: TextIO | None = None) -> None:
    """Tell the user where the simulator is and how to connect (flushed at once)."""
    out = out if out is not None else sys.stdout
    users = ", ".join(f"{u}:{p}" for u, p in server.sim.auth.users.items())
    lines = [
        "riskd sim: API2Trade bridge simulator (dialect sdk)",
        f"  base URL:     {server.base_url}",
        f"  stream URL:   {server.ws_url}",
        f"  API key:      {server.api_key}   (header x-api-key; HTTP Basic: {users})",
    ]
    if account_id is not None:
        held = ", ".join(
            f"{side} {volume:.2f} {symbol}" for symbol, side, volume, _ in _DEMO_POSITIONS
        )
        lines.append(f"  demo account: {account_id}   ({held})")
    lines += [
        "",
        "Connect from Python:",
        "    from riskd.api2trade import Api2TradeClient",
        f'    client = Api2TradeClient(api_key="{server.api_key}", base_url="{server.base_url}")',
    ]
    if account_id is not None:
        lines.append(f'    print(client.accounts.summary("{account_id}"))')
    else:
        lines.append('    print(client.accounts.register("123456", "secret", "SimBroker-Demo"))')
    lines += ["", "Press Ctrl-C to stop."]
    print("\n".join(lines), file=out, flush=True)
