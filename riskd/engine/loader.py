"""Loading rule files: YAML in, compiled rules out, or every problem as ``file:line: ...``.

A rule file is a YAML list of rules (see ``rules/README.md``). Loading validates the whole
file and reports all its problems at once; ``riskd check-rules FILE...`` prints
``check_rule_files``. Rule names must be unique within a file, and across all the files
applied to one account (``load_account_rules`` / ``check_unique_names``), because states,
alerts and metrics are keyed by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from riskd.engine.rules import Rule, compile_rule
from riskd.engine.schema import ResetSpec, RuleSpec, field_names
from riskd.yamlfile import Loc, YamlDocument, YamlFileError, load_yaml, parse_yaml

_RULE_LIST: TypeAdapter[list[RuleSpec]] = TypeAdapter(list[RuleSpec])


class RuleFileError(Exception):
    """One or more rule files are wrong; ``problems`` holds one ``file:line: ...`` per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def load_rule_file(path: str | Path) -> list[Rule]:
    """Load, validate and compile the rule file at ``path``.

    Raises ``RuleFileError`` listing every problem of the file.
    """
    try:
        doc = load_yaml(path)
    except YamlFileError as exc:
        raise RuleFileError(exc.problems) from None
    return _rules_from(doc)


def parse_rules(text: str, path: str = "<string>") -> list[Rule]:
    """Like ``load_rule_file`` for rule-file text; ``path`` is only used in messages."""
    try:
        doc = parse_yaml(text, path)
    except YamlFileError as exc:
        raise RuleFileError(exc.problems) from None
    return _rules_from(doc)


def check_rule_files(paths: Iterable[str | Path]) -> list[str]:
    """Every problem of every file, each file checked on its own; empty when all are good.

    Files are not checked against each other for duplicate names (presets of different
    firms may reuse names); ``load_account_rules`` does that for the files of one account.
    """
    problems: list[str] = []
    for path in paths:
        try:
            load_rule_file(path)
        except RuleFileError as exc:
            problems.extend(exc.problems)
    return problems


def load_account_rules(paths: Iterable[str | Path]) -> list[Rule]:
    """Load all rule files applied to one account, in order, with names unique across them.

    Raises ``RuleFileError`` with the problems of every file plus any name used twice.
    """
    rules: list[Rule] = []
    problems: list[str] = []
    for path in paths:
        try:
            rules.extend(load_rule_file(path))
        except RuleFileError as exc:
            problems.extend(exc.problems)
    problems.extend(check_unique_names(rules))
    if problems:
        raise RuleFileError(problems)
    return rules


def check_unique_names(rules: Iterable[Rule]) -> list[str]:
    """A problem line for each rule whose name an earlier rule already uses."""
    first: dict[str, Rule] = {}
    problems: list[str] = []
    for rule in rules:
        seen = first.get(rule.name)
        if seen is None:
            first[rule.name] = rule
        else:
            problems.append(
                f"{rule.source}: rule name '{rule.name}' is already used by the rule at "
                f"{seen.source}; rule names must be unique for an account"
            )
    return problems


def _rules_from(doc: YamlDocument) -> list[Rule]:
    data = doc.data
    if data is None:
        raise RuleFileError(
            [f"{doc.path}:1: the file has no rules; a rule file is a list of rules ('- name: ...')"]
        )
    if not isinstance(data, list):
        raise RuleFileError(
            [
                f"{doc.path}:{doc.line_of(())}: a rule file is a list of rules, each starting "
                "with '- name: ...'"
            ]
        )
    try:
        specs = _RULE_LIST.validate_python(data)
    except ValidationError as exc:
        problems = doc.problems(
            exc,
            describe_loc=lambda loc: _describe(doc, loc),
            known_fields=lambda loc: _known_fields(doc, loc),
        )
        problems.extend(_duplicate_names(doc))
        raise RuleFileError(_sorted(problems)) from None
    problems = _duplicate_names(doc)
    if problems:
        raise RuleFileError(problems)
    return [compile_rule(spec, doc.where((index,))) for index, spec in enumerate(specs)]


def _duplicate_names(doc: YamlDocument) -> list[str]:
    """Names used twice in one file (checked on the raw data, so with other problems too)."""
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for index, item in enumerate(doc.data):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        line = doc.line_of((index, "name"))
        if name in first_line:
            problems.append(
                f"{doc.path}:{line}: rule '{name}': name: the name is already used by the rule "
                f"at line {first_line[name]}; rule names must be unique"
            )
        else:
            first_line[name] = line
    return problems


def _describe(doc: YamlDocument, loc: Loc) -> str:
    """``rule 'ftmo-daily-loss': reset.zone`` for a location inside rule ``loc[0]``."""
    if not loc or not isinstance(loc[0], int):
        return ""
    index = loc[0]
    item = doc.data[index] if index < len(doc.data) else None
    name = item.get("name") if isinstance(item, dict) else None
    who = f"rule '{name}'" if isinstance(name, str) and name else f"rule #{index + 1}"
    rest = ""
    for part in loc[1:]:
        rest += f"[{part}]" if isinstance(part, int) else (f".{part}" if rest else str(part))
    return f"{who}: {rest}" if rest else who


def _known_fields(doc: YamlDocument, loc: Loc) -> list[str]:
    """The fields allowed in the mapping at ``loc`` (for "did you mean")."""
    if not loc or not isinstance(loc[0], int) or loc[0] >= len(doc.data):
        return []
    if len(loc) > 1:  # inside reset: / end_of_day:
        return list(ResetSpec.model_fields) if loc[1] in ("reset", "end_of_day") else []
    item = doc.data[loc[0]]
    kind = item.get("kind") if isinstance(item, dict) else None
    return field_names(kind if isinstance(kind, str) else None)


def _sorted(problems: list[str]) -> list[str]:
    def line_of(problem: str) -> int:
        parts = problem.split(":", 2)
        return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0

    return sorted(dict.fromkeys(problems), key=line_of)
