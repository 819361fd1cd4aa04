"""Rule files: every preset loads; bad files give ``file:line:`` problems, all at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from riskd.engine import (
    RuleFileError,
    Status,
    check_rule_files,
    check_unique_names,
    evaluate,
    load_account_rules,
    load_rule_file,
    parse_rules,
)
from tests.engine.helpers import RULES_DIR, snap, utc

PRESETS = sorted(RULES_DIR.glob("*.yaml"))

BAD = """\
- name: daily
  kind: daily_loss
  baseline: balance
  limti: 5%
  limit: 5%
  reset: {at: "25:00", zone: Europe/Pragu}
  warn_at: [0.5, 1.5]
  action: flatten
- name: daily
  kind: daily_los
- name: stale
  kind: stale_data
  max_poll_age: 30
  action: close_all
- name: mx
  kind: max_loss
  limit: 5000
  limit_of: initial_balance
  reset: {at: 00:00, zone: UTC}
- kind: exposure
  max_total_lots: 5
  max_positions: 3
  for: 5 minutes
- name: tr
  kind: trailing_drawdown
  limit: 10%
  track: balance
  update: end_of_day
- just a string
- name: pt
  kind: profit_target
  target: 5,000
  reset: {at: "00:00", zne: UTC}
"""


def test_every_preset_loads_and_says_where_its_numbers_come_from() -> None:
    assert {p.name for p in PRESETS} >= {
        "ftmo-2step.yaml",
        "ftmo-1step.yaml",
        "the5ers-high-stakes.yaml",
        "trailing-balance-lock.yaml",
        "margin-guard.yaml",
    }
    assert check_rule_files(PRESETS) == []
    for path in PRESETS:
        rules = load_rule_file(path)
        assert rules, path
        header = path.read_text().split("\n- ", 1)[0]
        assert re.search(r"2026-\d\d-\d\d", header), f"{path.name}: no date in the header"
        assert all(r.source.startswith(f"{path}:") for r in rules)


@pytest.mark.parametrize("path", PRESETS, ids=[p.name for p in PRESETS])
def test_presets_evaluate_on_a_calm_account(path: Path) -> None:
    rules = load_rule_file(path)
    result = evaluate(rules, snap(utc("2026-06-01 10:00"), equity=100_000.0), {})
    assert {v.status for v in result.verdicts} <= {Status.OK, Status.NO_BASELINE}


def test_a_bad_file_reports_every_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    p = str(path)
    assert info.value.problems == [
        f"{p}:4: rule 'daily': unknown field 'limti' (did you mean 'limit'?)",
        f"{p}:5: rule 'daily': limit: say what 5% is a percentage of: add "
        "'limit_of: initial_balance' (FTMO) or 'limit_of: day_start' (The5ers)",
        f"{p}:6: rule 'daily': reset.at: '25:00' is not a clock time; hours go 00-23 and "
        "minutes 00-59",
        f"{p}:6: rule 'daily': reset.zone: unknown time zone 'Europe/Pragu'; use an IANA name "
        "such as Europe/Prague, America/New_York or Etc/UTC, or a fixed offset such as UTC+3",
        f"{p}:7: rule 'daily': warn_at[1]: a warning level is a share of the allowed loss "
        "strictly between 0 and 1 (e.g. 0.8 or 80%); at 1 (100%) the rule is breached, "
        "not warning",
        f"{p}:8: rule 'daily': action: Input should be 'alert', 'close_all' or 'lockout'",
        f"{p}:9: rule 'daily': name: the name is already used by the rule at line 1; rule "
        "names must be unique",
        f"{p}:10: rule 'daily': kind: unknown value 'daily_los'; expected one of "
        "'daily_loss', 'max_loss', 'trailing_drawdown', 'margin_level', 'exposure', "
        "'profit_target', 'stale_data'",
        f"{p}:13: rule 'stale': max_poll_age: a duration needs a unit, e.g. 30s or 30m",
        f"{p}:14: rule 'stale': action: stale_data rules can only alert (action: alert): "
        "stale numbers must never flatten an account or clear a latch",
        f"{p}:17: rule 'mx': limit: 5000 is an amount of money, but limit_of says what a "
        "percentage is of (write e.g. limit: 5%, or remove limit_of)",
        f"{p}:19: rule 'mx': reset: a max_loss rule never resets; after a breach a person "
        "unlocks it (remove reset)",
        f"{p}:20: rule #5: missing required field 'name'",
        f"{p}:22: rule #5: max_positions: a rule has one cap and max_total_lots is already "
        "set; write one rule per cap",
        f"{p}:23: rule #5: for: '5 minutes' is not a duration; write a number and a unit "
        "(ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
        f"{p}:28: rule 'tr': update: 'update: end_of_day' needs the time the day ends, e.g. "
        'end_of_day: {at: "00:00", zone: Europe/Prague}',
        f"{p}:29: rule #7: expected a mapping of fields, found text",
        f"{p}:32: rule 'pt': target: write amounts without thousands separators, e.g. 5000 "
        "not 5,000",
        f"{p}:33: rule 'pt': reset: missing required field 'zone'",
        f"{p}:33: rule 'pt': reset: unknown field 'zne' (did you mean 'zone'?)",
    ]


def test_check_rule_files_lists_the_problems_of_all_files(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("- {name: a, kind: max_loss}\n")
    two = tmp_path / "two.yaml"
    two.write_text("rules:\n  - name: b\n")
    three = tmp_path / "three.yaml"
    three.write_text("# only a comment\n")
    problems = check_rule_files([one, two, PRESETS[0], three, tmp_path / "none.yaml"])
    assert problems == [
        f"{one}:1: rule 'a': missing required field 'limit'",
        f"{two}:1: a rule file is a list of rules, each starting with '- name: ...'",
        f"{three}:1: the file has no rules; a rule file is a list of rules ('- name: ...')",
        f"{tmp_path / 'none.yaml'}: cannot read the file: No such file or directory",
    ]


def test_stale_data_can_only_alert() -> None:
    with pytest.raises(RuleFileError) as info:
        parse_rules(
            "- name: s\n  kind: stale_data\n  max_poll_age: 1m\n  action: lockout\n", "s.yaml"
        )
    assert info.value.problems == [
        "s.yaml:4: rule 's': action: stale_data rules can only alert (action: alert): stale "
        "numbers must never flatten an account or clear a latch"
    ]


def test_a_yaml_syntax_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("- name: a\n  kind: max_loss\n  limit: [10%\n")
    with pytest.raises(RuleFileError) as info:
        load_rule_file(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:4: invalid YAML:")


def test_rule_names_must_be_unique_across_the_files_of_an_account(tmp_path: Path) -> None:
    rules = load_account_rules([RULES_DIR / "ftmo-2step.yaml", RULES_DIR / "margin-guard.yaml"])
    assert len(rules) == 5
    extra = tmp_path / "mine.yaml"
    extra.write_text("# my own\n- {name: ftmo-max-loss, kind: max_loss, limit: 8%}\n")
    with pytest.raises(RuleFileError) as info:
        load_account_rules([RULES_DIR / "ftmo-2step.yaml", extra])
    assert info.value.problems == [
        f"{extra}:2: rule name 'ftmo-max-loss' is already used by the rule at "
        f"{RULES_DIR / 'ftmo-2step.yaml'}:44; rule names must be unique for an account"
    ]
    assert check_unique_names(rules) == []


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        ("limit: 0", "limit: the allowed loss must be more than zero"),
        ("limit: 150%", "limit: a loss limit above 100% can never be reached"),
        ("limit: lots", "limit: expected an amount like 5000 or a percentage like 5%"),
        ("limit: 10%\n  for: 1h30x", "for: '1h30x' is not a duration"),
        ("limit: 10%\n  warn_at: [50%, 0.5]", "warn_at: each warning level may be given once"),
        ("limit: 10%\n  severity: loud", "severity: Input should be 'info', 'warning' or"),
        ("limit: 10%\n  name: x", "key 'name' is given twice in this mapping (first at line 1)"),
    ],
)
def test_single_problems(snippet: str, problem: str) -> None:
    with pytest.raises(RuleFileError) as info:
        parse_rules(f"- name: m\n  kind: max_loss\n  {snippet}\n", "f.yaml")
    assert len(info.value.problems) == 1
    assert problem in info.value.problems[0]


def test_defaults_and_values_as_written() -> None:
    (rule,) = parse_rules(
        """
- name: d
  kind: daily_loss
  baseline: max_balance_equity
  limit: 2_500
  reset: {at: 17:00, zone: America/New_York}
  warn_at: [0.8, 50%]
  for: 1m30s
  labels: {firm: x}
"""
    )
    assert rule.action == "alert"
    assert rule.severity == "warning"  # alert rules default to warning, flattening ones critical
    assert rule.warn_at == (0.5, 0.8)
    assert rule.hold_for.total_seconds() == 90
    assert rule.clock is not None and rule.clock.describe() == "17:00 America/New_York"
    assert dict(rule.labels) == {"firm": "x"}
    assert parse_rules("- {name: x, kind: max_loss, limit: 1%, action: close_all}")[0].severity == (
        "critical"
    )


def test_a_rule_without_kind() -> None:
    with pytest.raises(RuleFileError) as info:
        parse_rules("- name: a\n  limit: 5%\n", "f.yaml")
    assert info.value.problems == ["f.yaml:1: rule 'a': missing required field 'kind'"]
