"""riskd.yamlfile: line numbers, YAML pitfalls, and pydantic errors as ``file:line:`` lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskd.yamlfile import YamlFileError, load_yaml, parse_yaml

CONFIG = """\
# a comment
accounts:
  - id: acc-1
    initial_balance: 100000
    reset: {at: 17:00, zone: America/New_York}
  - id: acc-2
    initial_balance: lots
    rule_files:
      - rules/ftmo-2step.yaml
      - 42
api:
  api_key: sk-live-very-secret
  timeout: 5s
"""


class Reset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: str
    zone: str


class AccountCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    initial_balance: float
    reset: Reset | None = None
    rule_files: list[str] = Field(default_factory=list)
    display_name: str


class Api(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: int
    timeout: str

    @field_validator("timeout")
    @classmethod
    def _echo(cls, value: str) -> str:
        return value


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[AccountCfg]
    api: Api


def test_lines_of_keys_and_items() -> None:
    doc = parse_yaml(CONFIG, "riskd.yaml")
    assert doc.line_of(()) == 2
    assert doc.line_of(("accounts",)) == 2
    assert doc.line_of(("accounts", 0)) == 3
    assert doc.line_of(("accounts", 0, "reset", "zone")) == 5
    assert doc.line_of(("accounts", 1, "rule_files", 1)) == 10
    assert doc.line_of(("api", "timeout")) == 13
    # A part that is not in the data (a union tag, a missing field) is skipped.
    assert doc.line_of(("accounts", 1, "SomeTag", "initial_balance")) == 7
    assert doc.line_of(("accounts", 1, "display_name")) == 6
    assert doc.where(("api",)) == "riskd.yaml:11"


def test_clock_times_and_leading_zeros_stay_strings() -> None:
    doc = parse_yaml("a: 17:00\nb: 0500\nc: 1_000\nd: 1.5\ne: 00:00\nf: -3\ng: 1:30\n")
    assert doc.data == {
        "a": "17:00",
        "b": "0500",
        "c": 1000,
        "d": 1.5,
        "e": "00:00",
        "f": -3,
        "g": "1:30",
    }


def test_validation_problems_all_at_once_with_exact_lines() -> None:
    doc = parse_yaml(CONFIG, "riskd.yaml")
    with pytest.raises(ValidationError) as info:
        Config.model_validate(doc.data)
    assert doc.problems(info.value) == [
        "riskd.yaml:3: accounts[0]: missing required field 'display_name'",
        "riskd.yaml:6: accounts[1]: missing required field 'display_name'",
        "riskd.yaml:7: accounts[1].initial_balance: Input should be a valid number, "
        "unable to parse string as a number",
        "riskd.yaml:10: accounts[1].rule_files[1]: Input should be a valid string",
        "riskd.yaml:12: api.api_key: Input should be a valid integer, "
        "unable to parse string as an integer",
    ]


def test_unknown_field_with_a_suggestion() -> None:
    doc = parse_yaml("accounts: []\napi:\n  api_key: 1\n  timeout: 5s\n  timeuot: 6s\n", "c.yaml")
    with pytest.raises(ValidationError) as info:
        Config.model_validate(doc.data)
    problems = doc.problems(info.value, known_fields=lambda loc: ["api_key", "timeout"])
    assert problems == ["c.yaml:5: api: unknown field 'timeuot' (did you mean 'timeout'?)"]


def test_secret_values_are_never_echoed() -> None:
    class Leaky(BaseModel):
        api_key: str
        password: str

        @field_validator("api_key", "password")
        @classmethod
        def _bad(cls, value: str) -> str:
            raise ValueError(f"{value} is not a valid credential")

    doc = parse_yaml("api_key: sk-live-very-secret\npassword: hunter2\n", "c.yaml")
    with pytest.raises(ValidationError) as info:
        Leaky.model_validate(doc.data)
    problems = doc.problems(info.value)
    assert problems == [
        "c.yaml:1: api_key: *** is not a valid credential",
        "c.yaml:2: password: *** is not a valid credential",
    ]
    assert not any("secret" in p or "hunter2" in p for p in problems)


def test_syntax_error_has_the_line_and_no_source_text() -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml("a: 1\nb:\n  - x\n  y: [\npassword: hunter2\n", "bad.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("bad.yaml:4: invalid YAML:")
    assert "hunter2" not in problem


def test_tab_indentation_is_a_syntax_error_on_its_line() -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml("a:\n\tb: 1\n", "tabs.yaml")
    assert info.value.problems[0].startswith("tabs.yaml:2: invalid YAML:")


def test_a_key_given_twice_is_an_error_naming_both_lines() -> None:
    with pytest.raises(YamlFileError) as info:
        parse_yaml("- name: a\n  limit: 5%\n  kind: x\n  limit: 6%\n", "dup.yaml")
    assert info.value.problems == [
        "dup.yaml:4: key 'limit' is given twice in this mapping (first at line 2)"
    ]


def test_aliases_and_recursion_are_safe() -> None:
    doc = parse_yaml("base: &b {at: '00:00'}\none: *b\ntwo: {<<: *b, zone: UTC}\nr: &r [*r]\n")
    assert doc.data["one"] == {"at": "00:00"}
    assert doc.data["two"] == {"at": "00:00", "zone": "UTC"}
    assert doc.line_of(("two", "zone")) == 3


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError) as info:
        load_yaml(tmp_path / "missing.yaml")
    assert info.value.problems == [
        f"{tmp_path / 'missing.yaml'}: cannot read the file: No such file or directory"
    ]
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(YamlFileError) as info:
        load_yaml(latin1)
    assert info.value.problems == [f"{latin1}:2: the file is not UTF-8 text"]


def test_empty_document_loads_as_none() -> None:
    assert parse_yaml("# nothing\n").data is None
