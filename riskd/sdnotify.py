"""systemd's service notification protocol (``sd_notify(3)``) for a ``Type=notify`` unit.

systemd passes the unit an ``AF_UNIX`` datagram socket in ``$NOTIFY_SOCKET`` (a path, or an
abstract name written with a leading ``@``); the service sends newline-separated
``KEY=VALUE`` lines to it: ``READY=1`` when start-up is done, ``STATUS=...`` for
``systemctl status``, ``WATCHDOG=1`` at least once per ``$WATCHDOG_USEC`` (systemd kills and
restarts a service that stops pinging), ``RELOADING=1`` / ``STOPPING=1`` around a reload and
a shutdown. Without ``$NOTIFY_SOCKET`` (not under systemd, or another ``Type=``) every call
here does nothing.

Written here rather than taken from PyPI, on purpose. ``sdnotify`` (last release 2017) swallows
every error and knows nothing of the watchdog variables; ``systemd-python`` links libsystemd
and compiles on install (libsystemd-dev and a compiler on every host); ``cysystemd`` is a
Cython binding for the journal as much as for this; the small pure-Python ones
(``sd-notify``, ``systemd-watchdog``) are one-person packages with a blocking API. What riskd
needs is one non-blocking ``sendto`` that never stalls the event loop (a full socket queue
drops the message instead of waiting) and the ``WATCHDOG_USEC``/``WATCHDOG_PID`` rules: about
forty lines.

The watchdog must be pinged from the event loop itself (see ``riskd.service``): a ping from a
thread would keep a hung loop alive in systemd's eyes.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("riskd.sdnotify")

__all__ = ["Notifier", "watchdog_interval"]


def watchdog_interval(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between two ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC`` (as
    ``sd_watchdog_enabled(3)`` recommends), or None when the watchdog is off or meant for
    another process (``$WATCHDOG_PID`` names a different pid)."""
    raw = env.get("WATCHDOG_USEC", "").strip()
    if not raw.isdigit() or int(raw) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "").strip()
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(raw) / 1_000_000 / 2


def _address(raw: str) -> str | None:
    """The socket address of ``$NOTIFY_SOCKET``, or None if unset or not a unix socket."""
    if raw.startswith("@"):
        return "\0" + raw[1:]  # an abstract socket: no file, a name starting with NUL
    if raw.startswith("/"):
        return raw
    if raw:
        # systemd 254+ may also hand out vsock: addresses (virtual machines); riskd runs on
        # the host, where it is always a unix socket.
        log.warning("NOTIFY_SOCKET %r is not a unix socket; systemd notifications are off", raw)
    return None


class Notifier:
    """Sends ``sd_notify`` messages; a no-op without ``$NOTIFY_SOCKET``.

    ``env`` defaults to ``os.environ`` (tests pass a dict). Sending never blocks and never
    raises: a failure is logged once (until a send succeeds again) and the message dropped,
    because telling systemd is never worth stalling the risk path for.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = watchdog_interval(env) if self._address else None
        """Seconds between watchdog pings, or None when systemd runs no watchdog for us."""
        self._socket: socket.socket | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        """True when there is a notification socket to send to."""
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; True if sent."""
        if self._address is None or not fields:
            return False
        # A newline would start a new field: a status text must stay on one line.
        message = "\n".join(f.replace("\n", " ") for f in fields).encode("utf-8")
        try:
            if self._socket is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._socket = sock
            self._socket.sendto(message, self._address)
        except OSError as exc:  # queue full (BlockingIOError), no listener, socket gone
            if not self._failing:
                self._failing = True
                log.warning("systemd notification not delivered: %s", exc.strerror or exc)
            return False
        if self._failing:
            self._failing = False
            log.info("systemd notifications delivered again")
        return True

    def ready(self, status: str) -> bool:
        """Start-up is complete."""
        return self.notify("READY=1", f"STATUS={status}")

    def reloading(self, status: str) -> bool:
        """A configuration reload starts; ``ready()`` ends it. ``MONOTONIC_USEC`` is what
        systemd 253+ (``Type=notify-reload``) asks for; older ones ignore it."""
        stamp = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={stamp}", f"STATUS={status}")

    def stopping(self, status: str) -> bool:
        """Shutdown has begun."""
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        """The one-line state ``systemctl status`` shows."""
        return self.notify(f"STATUS={status}")

    def watchdog(self) -> bool:
        """One keep-alive ping."""
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
