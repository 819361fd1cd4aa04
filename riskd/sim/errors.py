"""Errors raised by the simulator's control surface (never by the bridge endpoints).

The bridge endpoints answer problems on the wire (401, 404, 400, retcodes); these exceptions are
for the code that drives the simulator: tests, demos and the ``/_sim/...`` control routes, which
map :class:`UnknownAccount` to 404 and any other :class:`SimError` to 400.
"""

from __future__ import annotations


class SimError(ValueError):
    """A control call was given something the simulator cannot do (bad symbol, bad price...)."""


class UnknownAccount(SimError):
    """No account with this id is registered in the simulator."""
