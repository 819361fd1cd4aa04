"""Instrumentation hooks: how the client tells its owner what happened on the wire.

The daemon plugs Prometheus metrics in here; tests plug a recorder. The client itself keeps no
counters, so there is one owner of each number.
"""

from __future__ import annotations

from typing import Protocol


class ClientHooks(Protocol):
    """Receives one call per request attempt and per retry decision. Must not block."""

    def on_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """An attempt finished. ``outcome`` is ``ok``, ``http_<status>``, ``timeout`` or
        ``connection_error``."""

    def on_retry(self, endpoint: str, reason: str) -> None:
        """The client will retry ``endpoint``; ``reason`` is e.g. ``http_503``, ``timeout``,
        ``rate_limited``, ``retcode_10004``."""


class NoHooks:
    """The default: ignore everything."""

    def on_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        pass

    def on_retry(self, endpoint: str, reason: str) -> None:
        pass
