"""Percentiles and distribution summaries."""

from __future__ import annotations

import pytest

from riskd.bench.stats import Distribution, percentile


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_of_one_value() -> None:
    assert percentile([7.0], 99) == 7.0


@pytest.mark.parametrize("q", [-1.0, 100.5])
def test_percentile_rejects_out_of_range(q: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], q)


def test_percentile_rejects_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_distribution_summary_scaling_and_json_round_trip() -> None:
    d = Distribution.of(float(i) for i in range(1, 101))
    assert (d.count, d.min, d.max, d.mean) == (100, 1.0, 100.0, 50.5)
    assert d.p50 == pytest.approx(50.5)
    assert d.p99 == pytest.approx(99.01)
    ms = d.scaled(1000.0)
    assert ms.max == 100_000.0
    assert ms.count == 100
    assert Distribution.from_json(d.to_json()) == d
    with pytest.raises(ValueError, match="no values"):
        Distribution.of([])
