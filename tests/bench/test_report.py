"""Grades, the 2x rule, the exit code and the table: pure logic, no timings."""

from __future__ import annotations

import math

import pytest

from riskd.bench.report import (
    Check,
    Figure,
    Grade,
    Target,
    exit_code,
    render_notes,
    render_table,
)

BELOW_1MS = Target(0.001, "below")
AT_LEAST_06 = Target(0.6, "at_least")


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        (0.0005, Grade.PASS),
        (0.001, Grade.FAIL),  # the bound is strict: "under 1 ms"
        (0.0015, Grade.FAIL),
        (0.002, Grade.FAIL),  # missed by exactly 2x: not "more than 2x"
        (0.0021, Grade.MISS),
        (math.nan, Grade.ERROR),
    ],
)
def test_upper_bound_grades(value: float, grade: Grade) -> None:
    assert BELOW_1MS.grade(value) is grade


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        (0.9, Grade.PASS),
        (0.6, Grade.PASS),  # "at least"
        (0.45, Grade.FAIL),
        (0.3, Grade.FAIL),  # half the target: missed by exactly 2x
        (0.29, Grade.MISS),
        (math.nan, Grade.ERROR),
    ],
)
def test_lower_bound_grades(value: float, grade: Grade) -> None:
    assert AT_LEAST_06.grade(value) is grade


def figure(number: int, *values: tuple[float, Target]) -> Figure:
    return Figure(
        number,
        f"figure {number}",
        measured=["measured"],
        checks=[Check(f"check {i}", v, t) for i, (v, t) in enumerate(values)],
    )


def test_a_figure_grades_as_its_worst_check() -> None:
    fig = figure(3, (0.1, Target(0.25, "below")), (10.0, Target(20.0, "at_least")))
    assert fig.grade is Grade.FAIL
    assert fig.result_lines() == ["pass", "fail"]


def test_unmeasured_figures_are_errors() -> None:
    assert Figure(1, "no checks").grade is Grade.ERROR
    errored = figure(2, (0.0001, BELOW_1MS))
    errored.error = "worker died"
    assert errored.grade is Grade.ERROR
    assert errored.result_lines() == ["ERROR"]


@pytest.mark.parametrize(
    ("grades", "code"),
    [
        ([0.0005, 0.9], 0),
        ([0.0015, 0.45], 0),  # missed within 2x: reported, not fatal
        ([0.0005, 0.29], 1),  # one miss by more than 2x
        ([0.0021, 0.9], 1),
    ],
)
def test_exit_code_is_non_zero_only_beyond_2x(grades: list[float], code: int) -> None:
    figures = [figure(1, (grades[0], BELOW_1MS)), figure(2, (grades[1], AT_LEAST_06))]
    assert exit_code(figures) == code


def test_exit_code_is_non_zero_when_a_figure_was_not_measured() -> None:
    broken = Figure(4, "scale", error="timeout")
    assert exit_code([figure(1, (0.0005, BELOW_1MS)), broken]) == 1


def test_table_has_a_row_per_figure_with_targets_and_results() -> None:
    good = figure(2, (0.0005, BELOW_1MS))
    good.checks = [Check("p99 < 1 ms", 0.0005, BELOW_1MS)]
    good.baseline = ["bare loop " + "x" * 80]  # wraps onto more lines
    broken = Figure(4, "scale", error="the worker exited")
    table = render_table([good, broken])
    lines = table.splitlines()
    assert lines[0].split("|")[0].strip() == "#"
    row = next(line for line in lines if line.startswith("2 "))
    assert "p99 < 1 ms" in row
    assert row.rstrip().endswith("pass")
    assert any("not measured: the worker exited" in line for line in lines)
    assert any(line.rstrip().endswith("ERROR") for line in lines)
    widths = {len(line.split("|")[0]) for line in lines if "|" in line}
    assert len(widths) == 1  # the columns line up


def test_notes_are_numbered_paragraphs() -> None:
    fig = figure(5, (0.00001, Target(0.0001, "below")))
    fig.notes = ["how it was measured", "what it was compared with"]
    text = render_notes([fig, Figure(1, "no notes")])
    assert text.splitlines()[0] == "5. figure 5"
    assert "  - how it was measured" in text
    assert "1. no notes" not in text
