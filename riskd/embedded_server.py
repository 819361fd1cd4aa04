"""uvicorn embedded in riskd's own processes (the daemon's HTTP server, the simulator).

One subclass for both: uvicorn's ``Server`` assumes it owns the process. Here it must not
install signal handlers (the daemon and ``riskd sim`` own SIGTERM/SIGINT), must exit as soon as
asked instead of polling a flag every 0.1 s, must shut down without its fixed sleeps (tests
start a server per test), and must say when it is listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Generator

import uvicorn

GRACE_SECONDS = 2
"""Seconds connections get to finish when an embedded server stops."""


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn's server with an event-driven exit and a fast shutdown.

    Stock uvicorn polls its exit flag every 0.1 s and sleeps 0.1 s more while shutting down;
    with a fresh server per test that adds up. Signals are left to the caller (``riskd sim``
    installs its own), so a server in a thread or inside pytest never touches them.
    """

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._exit = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()

    def request_exit(self) -> None:
        """Ask the server to stop (call on its loop)."""
        self.should_exit = True
        self._exit.set()

    async def main_loop(self) -> None:
        while not await self.on_tick(0):  # counter 0: refresh the Date header each pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), timeout=1.0)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GRACE_SECONDS
        # uvicorn offers no event for "all connections gone"; poll its state briefly.
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(0.005)
        for task in list(state.tasks):
            task.cancel()
        for server in self.servers:
            await server.wait_closed()


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
