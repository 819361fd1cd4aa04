"""Sharding: N riskd replicas split the accounts among themselves, with no coordinator.

Each replica knows only its own index and the count, and owns the accounts that rendezvous
(highest-random-weight) hashing gives it: every replica scores every (shard, account) pair
with the same hash and an account belongs to the shard with the highest score. So all replicas
agree without talking, every account has exactly one owner, and going from N to N+1 replicas
moves only the accounts the new shard now wins, about 1/(N+1) of them (consistent hashing
with a ring would need virtual nodes to be as even; at the tens of replicas riskd runs, the
O(N) score per account is nothing).

The hash is BLAKE2b of the shard index and the account id (lower-cased, as the bridge's UUIDs
are case-insensitive): stable across processes, machines and Python versions, unlike
``hash()``. No library does this in a few lines with that guarantee, hence this module.

Where the index comes from (``shard_from_env``): ``RISKD_SHARD_INDEX`` if set, else the
ordinal at the end of the StatefulSet pod name (``RISKD_POD_NAME``, else ``HOSTNAME``:
``riskd-2`` is index 2). The count is ``RISKD_SHARD_COUNT`` (default 1: one replica owns all).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

INDEX_ENV = "RISKD_SHARD_INDEX"
COUNT_ENV = "RISKD_SHARD_COUNT"
POD_NAME_ENV = "RISKD_POD_NAME"
ENV_NAMES = frozenset({INDEX_ENV, COUNT_ENV, POD_NAME_ENV})

_ORDINAL = re.compile(r"-(\d+)$")


class ShardError(ValueError):
    """The shard settings cannot be used; the message names the variable and the problem."""


@dataclass(frozen=True, slots=True)
class Shard:
    """This replica's place among ``count`` replicas (``index`` counts from 0)."""

    index: int = 0
    count: int = 1
    source: str = field(default="", compare=False)
    """Where the index came from, for the start-up log (``RISKD_POD_NAME='riskd-2'``)."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardError(f"{COUNT_ENV}: must be 1 or more, not {self.count}")
        if not 0 <= self.index < self.count:
            raise ShardError(
                f"{INDEX_ENV}: shard index {self.index} is outside 0..{self.count - 1} "
                f"for {COUNT_ENV}={self.count}"
            )

    def owns(self, account_id: str) -> bool:
        """True when this replica watches ``account_id``."""
        return self.count == 1 or owner(account_id, self.count) == self.index

    def select(self, account_ids: Iterable[str]) -> list[str]:
        """The ids of ``account_ids`` this replica owns, in their order."""
        return [a for a in account_ids if self.owns(a)]

    def describe(self) -> str:
        where = f", from {self.source}" if self.source else ""
        return f"shard {self.index} of {self.count}{where}"


def _score(shard: int, account_id: str) -> int:
    digest = hashlib.blake2b(f"{shard}\x00{account_id.lower()}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(account_id: str, count: int) -> int:
    """The shard (0..count-1) that owns ``account_id`` among ``count`` shards."""
    return max(range(count), key=lambda shard: _score(shard, account_id))


def shard_from_env(env: Mapping[str, str]) -> Shard:
    """This replica's shard from the environment (see the module docstring)."""
    count = _integer(env, COUNT_ENV, default=1)
    if count < 1:
        raise ShardError(f"{COUNT_ENV}: must be 1 or more, not {count}")
    raw_index = env.get(INDEX_ENV, "").strip()
    if raw_index:
        index = _integer(env, INDEX_ENV, default=0)
        origin = f"{INDEX_ENV}={index}"
    elif count == 1:
        index, origin = 0, ""
    else:
        source = POD_NAME_ENV if env.get(POD_NAME_ENV, "").strip() else "HOSTNAME"
        name = env.get(source, "").strip()
        match = _ORDINAL.search(name)
        if match is None:
            raise ShardError(
                f"{COUNT_ENV}={count} but no shard index: set {INDEX_ENV}, or run as a "
                f"StatefulSet pod whose name ends in -<ordinal> ({source}={name!r})"
            )
        index = int(match.group(1))
        if index >= count:
            raise ShardError(
                f"{source}={name!r}: pod ordinal {index} is no shard of {COUNT_ENV}={count} "
                f"(shards 0..{count - 1}): spec.replicas is larger than {COUNT_ENV}; change "
                "both together"
            )
        origin = f"{source}={name!r}"
    return Shard(index, count, origin)


def _integer(env: Mapping[str, str], name: str, *, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ShardError(f"{name}: expected a whole number, got {raw!r}") from None
