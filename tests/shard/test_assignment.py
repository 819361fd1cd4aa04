"""Rendezvous assignment: one owner per account, even spread, ~1/N moves on a resize."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from riskd.shard import Shard, ShardError, owner, shard_from_env

IDS = [str(uuid.UUID(int=i * 7919 + 17)) for i in range(3000)]


def test_every_account_has_exactly_one_owner() -> None:
    shards = [Shard(i, 3) for i in range(3)]
    for account in IDS:
        assert sum(s.owns(account) for s in shards) == 1


def test_the_spread_is_even() -> None:
    counts = Counter(owner(a, 4) for a in IDS)
    assert set(counts) == {0, 1, 2, 3}
    assert all(600 <= n <= 900 for n in counts.values()), counts  # 750 each, +-20%


@pytest.mark.parametrize("before", [1, 2, 3, 5])
def test_growing_by_one_moves_about_one_in_n_and_only_to_the_new_shard(before: int) -> None:
    after = before + 1
    moved = [a for a in IDS if owner(a, before) != owner(a, after)]
    assert all(owner(a, after) == before for a in moved)  # only the new shard gains
    share = len(moved) / len(IDS)
    assert abs(share - 1 / after) < 0.04, share


def test_the_assignment_is_stable_across_processes() -> None:
    # Pinned: a change of hash would reshuffle every deployed fleet on upgrade.
    assert [owner(a, 5) for a in IDS[:6]] == [3, 4, 3, 3, 0, 4]
    assert owner(IDS[0].upper(), 5) == owner(IDS[0], 5)  # UUIDs are case-insensitive


def test_index_and_count_from_the_environment() -> None:
    assert shard_from_env({}) == Shard(0, 1)
    assert shard_from_env({"RISKD_SHARD_COUNT": "3", "RISKD_SHARD_INDEX": "2"}) == Shard(2, 3)
    assert shard_from_env({"RISKD_SHARD_COUNT": "3", "RISKD_POD_NAME": "riskd-1"}) == Shard(1, 3)
    assert shard_from_env({"RISKD_SHARD_COUNT": "4", "HOSTNAME": "riskd-3"}) == Shard(3, 4)
    # An explicit index wins over the pod name.
    env = {"RISKD_SHARD_COUNT": "3", "RISKD_SHARD_INDEX": "0", "RISKD_POD_NAME": "riskd-2"}
    assert shard_from_env(env) == Shard(0, 3)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RISKD_SHARD_COUNT": "three"}, "RISKD_SHARD_COUNT: expected a whole number, got 'three'"),
        ({"RISKD_SHARD_COUNT": "0"}, "RISKD_SHARD_COUNT: must be 1 or more"),
        ({"RISKD_SHARD_COUNT": "3", "RISKD_SHARD_INDEX": "3"}, "shard index 3 is outside 0..2"),
        ({"RISKD_SHARD_COUNT": "3", "HOSTNAME": "vps"}, "set RISKD_SHARD_INDEX"),
        (
            {"RISKD_SHARD_COUNT": "3", "RISKD_POD_NAME": "riskd-7"},
            "RISKD_POD_NAME='riskd-7': pod ordinal 7 is no shard",
        ),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ShardError, match=message.replace("(", r"\(").replace(".", r"\.")):
        shard_from_env(env)
