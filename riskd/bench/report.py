"""Targets, grades, the one results table, and the exit code.

A figure carries one or more checks (a measured value against a target). Each check is graded:

- ``pass``: the target is met;
- ``fail``: missed, but by at most 2x (``value <= 2 * limit`` for an upper bound,
  ``value >= limit / 2`` for a lower bound);
- ``MISS``: missed by more than 2x. Any MISS, or a figure that could not be measured at all
  (``ERROR``), makes ``riskd bench`` exit non-zero; a plain ``fail`` is reported but does not.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


class Grade(enum.IntEnum):
    """How a check (or a figure, its worst check) came out; ordered from best to worst."""

    PASS = 0
    FAIL = 1  # missed by at most 2x
    MISS = 2  # missed by more than 2x
    ERROR = 3  # not measured

    @property
    def label(self) -> str:
        return {0: "pass", 1: "fail", 2: "MISS >2x", 3: "ERROR"}[self.value]


@dataclass(frozen=True, slots=True)
class Target:
    """A bound: the value must be ``below`` ``limit`` (strictly) or ``at_least`` ``limit``."""

    limit: float
    direction: Literal["below", "at_least"]

    def grade(self, value: float) -> Grade:
        """Grade ``value`` against this target (see the module doc for the 2x rule)."""
        if value != value:  # NaN: nothing was measured
            return Grade.ERROR
        if self.direction == "below":
            if value < self.limit:
                return Grade.PASS
            return Grade.FAIL if value <= 2.0 * self.limit else Grade.MISS
        if value >= self.limit:
            return Grade.PASS
        return Grade.FAIL if value >= self.limit / 2.0 else Grade.MISS


@dataclass(frozen=True, slots=True)
class Check:
    """One measured value against one target, with how to show the target."""

    label: str  # e.g. "p99 < 1 ms"
    value: float
    target: Target

    @property
    def grade(self) -> Grade:
        return self.target.grade(self.value)


@dataclass(slots=True)
class Figure:
    """One row of the table: what was measured, its side-by-side baseline, and its checks.

    ``error`` is set when the figure could not be measured; it then grades ``ERROR``.
    """

    number: int
    name: str
    measured: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def grade(self) -> Grade:
        if self.error is not None or not self.checks:
            return Grade.ERROR
        return max(c.grade for c in self.checks)

    def result_lines(self) -> list[str]:
        """The result column: one grade per check, on the lines of the target column."""
        if self.error is not None or not self.checks:
            return [Grade.ERROR.label]
        return [c.grade.label for c in self.checks]


def exit_code(figures: Sequence[Figure]) -> int:
    """0 unless a figure missed its target by more than 2x or could not be measured (1)."""
    return 1 if any(f.grade >= Grade.MISS for f in figures) else 0


_HEADERS = ("#", "figure", "riskd (measured)", "side by side", "target", "result")
_WIDTHS = (2, 22, 32, 34, 18, 8)


def _wrap(lines: Sequence[str], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        out.extend(textwrap.wrap(line, width, subsequent_indent="  ") or [""])
    return out


def render_table(figures: Sequence[Figure]) -> str:
    """The results as one fixed-width text table (cells wrap onto more lines)."""
    rule = "-+-".join("-" * w for w in _WIDTHS)
    header = " | ".join(h.ljust(w) for h, w in zip(_HEADERS, _WIDTHS, strict=True))
    rows = [header.rstrip(), rule]
    for fig in figures:
        targets = [c.label for c in fig.checks] or ["-"]
        measured = fig.measured if fig.error is None else [f"not measured: {fig.error}"]
        cells = [
            [str(fig.number)],
            _wrap([fig.name], _WIDTHS[1]),
            _wrap(measured, _WIDTHS[2]),
            _wrap(fig.baseline or ["-"], _WIDTHS[3]),
            _wrap(targets, _WIDTHS[4]),
            _wrap(fig.result_lines(), _WIDTHS[5]),
        ]
        height = max(len(c) for c in cells)
        for i in range(height):
            parts = [
                (cell[i] if i < len(cell) else "").ljust(w)
                for cell, w in zip(cells, _WIDTHS, strict=True)
            ]
            rows.append(" | ".join(parts).rstrip())
        rows.append(rule)
    return "\n".join(rows)


def render_notes(figures: Sequence[Figure]) -> str:
    """How each figure was measured, one paragraph per figure."""
    paragraphs = []
    for fig in figures:
        if not fig.notes:
            continue
        body = "\n".join(
            textwrap.fill(n, 100, initial_indent="  - ", subsequent_indent="    ")
            for n in fig.notes
        )
        paragraphs.append(f"{fig.number}. {fig.name}\n{body}")
    return "\n".join(paragraphs)
