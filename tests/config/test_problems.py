"""A bad config: every problem at once, one ``file:line:`` or ``VARIABLE:`` line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskd.config import ConfigError, load_config
from tests.config.conftest import ACCOUNT_ID, MINIMAL, OTHER_ID, WriteConfig

KEY = {"API2TRADE_API_KEY": "k"}

BROKEN = f"""\
dry_run: false
polling:
  sumary_interval: 5s
  positions_interval: 10 seconds
  job_timeout: 0s
enforcement:
  close_concurrency: 0
accounts:
  - id: {ACCOUNT_ID}
    initial_balance: -5
    rules: [rules/ftmo-2step.yaml, rules/nope.yaml]
    timezone: Europe/Pragu
  - id: {ACCOUNT_ID.upper()}
    name: the same account again
    initial_balance: 100000
  - id: 123456
    initial_balance: 1000
    rules: broken-rules.yaml
    contract_sizes: {{US30: 0}}
"""

BROKEN_RULES = """\
- name: daily
  kind: daily_loss
  limti: 5%
- name: daily
  kind: max_los
"""


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=KEY if env is None else env)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_every_problem_at_once_with_its_line(write_config: WriteConfig, config_dir: Path) -> None:
    (config_dir / "broken-rules.yaml").write_text(BROKEN_RULES)
    path = write_config(BROKEN)
    rules = config_dir / "broken-rules.yaml"
    assert problems_of(path) == [
        f"{path}:3: polling: unknown field 'sumary_interval' (did you mean 'summary_interval'?)",
        f"{path}:4: polling.positions_interval: '10 seconds' is not a duration; write a number "
        "and a unit (ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
        f"{path}:5: polling.job_timeout: must be longer than 0, e.g. 5s",
        f"{path}:7: enforcement.close_concurrency: Input should be greater than or equal to 1",
        f"{path}:10: accounts[0].initial_balance: must be a number greater than 0",
        f"{path}:11: accounts[0].rules[1]: cannot read rule file "
        f"{config_dir / 'rules/nope.yaml'}: no such file",
        f"{path}:12: accounts[0].timezone: unknown time zone 'Europe/Pragu'; use an IANA name "
        "such as Europe/Prague, America/New_York or Etc/UTC, or a fixed offset such as UTC+3",
        f"{path}:13: accounts[1]: missing required field 'rules'",
        f"{path}:13: accounts[1].id: account id '{ACCOUNT_ID.upper()}' is already used by "
        "accounts[0] (line 9); each account is listed once",
        f"{path}:16: accounts[2].id: expected the bridge account UUID "
        "(like 3f9a6c1e-2b47-4d8a-9e15-7c0d2a4b8f61), as /RegisterAccount returned it; "
        "the MetaTrader login number is not the id",
        f"{path}:19: accounts[2].contract_sizes.US30: must be a number greater than 0",
        # The rule file's own problems, at its own lines.
        f"{rules}:1: rule 'daily': missing required field 'baseline'",
        f"{rules}:1: rule 'daily': missing required field 'limit'",
        f"{rules}:1: rule 'daily': missing required field 'reset'",
        f"{rules}:3: rule 'daily': unknown field 'limti' (did you mean 'limit'?)",
        f"{rules}:4: rule 'daily': name: the name is already used by the rule at line 1; "
        "rule names must be unique",
        f"{rules}:5: rule 'daily': kind: unknown value 'max_los'; expected one of 'daily_loss', "
        "'max_loss', 'trailing_drawdown', 'margin_level', 'exposure', 'profit_target', "
        "'stale_data'",
    ]


def test_variables_are_named_in_their_problems(write_config: WriteConfig) -> None:
    path = write_config(MINIMAL + "polling: {summary_interval: 5x}\n")
    env = {
        **KEY,
        "RISKD_DRYRUN": "true",
        "RISKD_POLLING__JOB_TIMEOUT": "8",
        "RISKD_POLLING__MAX_CONCURRENT_REQUESTS": "many",
        "RISKD_POLLING__SUMMARY_INTERVL": "1s",
        "RISKD_DRY_RUN__X": "1",
        "RISKD_ACCOUNTS__0__DRY_RUN": "true",
        "RISKD_BRIDGE__BASE_URL": "ftp://bridge.example",
        "API2TRADE_TIMEOUT": "soon",
        "RISKD_SECRETS_DIR": "",  # not a setting, and empty
    }
    assert problems_of(path, env) == [
        f"{path}:5: polling.summary_interval: '5x' is not a duration; write a number and a "
        "unit (ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
        "API2TRADE_TIMEOUT: 'soon' is not a duration; write a number and a unit "
        "(ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
        "RISKD_ACCOUNTS__0__DRY_RUN: 'accounts' has no settings inside it to set one by one; "
        "set RISKD_ACCOUNTS to its whole value as JSON",
        "RISKD_BRIDGE__BASE_URL: expected a URL starting with http or https://",
        "RISKD_DRYRUN: no setting 'dryrun' in the config (did you mean RISKD_DRY_RUN?)",
        "RISKD_DRY_RUN__X: 'dry_run' has no settings inside it to set one by one; "
        "set RISKD_DRY_RUN to its whole value as JSON",
        "RISKD_POLLING__JOB_TIMEOUT: '8' is not a duration; write a number and a unit "
        "(ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
        "RISKD_POLLING__MAX_CONCURRENT_REQUESTS: Input should be a valid integer, unable to "
        "parse string as an integer",
        "RISKD_POLLING__SUMMARY_INTERVL: no setting 'summary_intervl' in polling "
        "(did you mean RISKD_POLLING__SUMMARY_INTERVAL?)",
    ]


def test_problems_inside_a_json_variable_say_where(write_config: WriteConfig) -> None:
    path = write_config("dry_run: true\n")
    env = {**KEY, "RISKD_ACCOUNTS": f'[{{"id": "{OTHER_ID}", "initial_balance": 0}}]'}
    assert problems_of(path, env) == [
        "RISKD_ACCOUNTS: accounts[0].initial_balance: must be a number greater than 0",
        "RISKD_ACCOUNTS: accounts[0]: missing required field 'rules'",
    ]


def test_duplicate_rule_names_across_an_accounts_files(
    write_config: WriteConfig, config_dir: Path
) -> None:
    path = write_config(
        MINIMAL.replace(
            "[rules/ftmo-2step.yaml]", "[rules/ftmo-2step.yaml, rules/../rules/ftmo-2step.yaml]"
        )
    )
    problems = problems_of(path)
    assert len(problems) == 3
    assert problems[0] == (
        f"{config_dir / 'rules/../rules/ftmo-2step.yaml'}:28: rule name 'ftmo-daily-loss' is "
        f"already used by the rule at {config_dir / 'rules/ftmo-2step.yaml'}:28; rule names "
        "must be unique for an account"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1: missing required field 'accounts'"),
        ("# only a comment\n", "1: missing required field 'accounts'"),
        (
            "- accounts\n",
            "1: the config file must be a mapping of settings (bridge:, accounts:, ...)",
        ),
        ("dry_run: true\n", "1: missing required field 'accounts'"),
        ("accounts: []\n", "1: accounts: list at least one account to watch"),
        (
            f"accounts:\n  - id: {ACCOUNT_ID}\n    initial_balance: 1\n    rules: []\n",
            "4: accounts[0].rules: list at least one rule file, e.g. [rules/ftmo-2step.yaml]",
        ),
        (
            "accounts: x\n",
            "1: accounts: expected a list, found text",
        ),
        (
            "dry_run: maybe\n" + MINIMAL,
            "1: dry_run: Input should be a valid boolean, unable to interpret input",
        ),
        (
            MINIMAL + "bridge: {stream_auth: cookie}\n",
            "5: bridge.stream_auth: Input should be 'header' or 'query'",
        ),
        (
            MINIMAL + "state: {path: no-such-dir/state.sqlite}\n",
            "5: state.path: the directory {dir}/no-such-dir does not exist; create it or choose "
            "another path",
        ),
        (
            MINIMAL + "dry_run: true\ndry_run: false\n",
            "6: key 'dry_run' is given twice in this mapping (first at line 5)",
        ),
        (
            "accounts: [\n",
            "2: invalid YAML: expected the node content, but found '<stream end>' "
            "(while parsing a flow node, column 1)",
        ),
    ],
)
def test_file_level_problems(
    write_config: WriteConfig, config_dir: Path, text: str, expected: str
) -> None:
    path = write_config(text)
    assert problems_of(path) == [f"{path}:{expected.format(dir=config_dir)}"]


def test_missing_config_file(tmp_path: Path) -> None:
    path = tmp_path / "riskd.yaml"
    assert problems_of(path) == [f"{path}: cannot read the file: No such file or directory"]


def test_missing_config_file_with_bad_variables(tmp_path: Path) -> None:
    path = tmp_path / "riskd.yaml"
    assert problems_of(path, {"RISKD_NOPE": "1"}) == [
        f"{path}: cannot read the file: No such file or directory",
        "RISKD_NOPE: no setting 'nope' in the config",
    ]


def test_credentials_and_state_are_checked_even_with_other_problems(
    write_config: WriteConfig, config_dir: Path
) -> None:
    path = write_config(MINIMAL.replace("100000", "-1") + "state: {path: nowhere/state.sqlite}\n")
    problems = problems_of(path, env={})
    assert [p.split(": ")[0] for p in problems] == [f"{path}:3", f"{path}:5", "API2TRADE_API_KEY"]
    assert problems[1] == (
        f"{path}:5: state.path: the directory {config_dir / 'nowhere'} does not exist; create it "
        "or choose another path"
    )
