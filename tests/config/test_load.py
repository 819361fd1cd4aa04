"""Loading a good config: defaults, resolved paths, compiled rules, env overrides."""

from __future__ import annotations

import os
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from riskd.api2trade.config import DEFAULT_BASE_URL, ClientSettings
from riskd.config import (
    BridgeSettings,
    Config,
    ConfigError,
    EnforcementSettings,
    PollingSettings,
    load_config,
)
from tests.config.conftest import ACCOUNT_ID, MINIMAL, OTHER_ID, WriteConfig

KEY = {"API2TRADE_API_KEY": "test-key"}


def test_minimal_config_gets_every_default(write_config: WriteConfig, config_dir: Path) -> None:
    path = write_config(MINIMAL)
    config = load_config(path, env=KEY)

    assert isinstance(config, Config)
    assert config.path == path
    assert config.dry_run is False
    assert config.state_path == config_dir / "riskd-state.sqlite"
    assert config.state_path.is_absolute()
    assert config.polling == PollingSettings(
        summary_interval=timedelta(seconds=5),
        positions_interval=timedelta(seconds=10),
        start_jitter=timedelta(seconds=2),
        job_timeout=timedelta(seconds=8),
        max_concurrent_requests=16,
    )
    assert (config.polling.summary_interval, config.polling.job_timeout) == (5.0, 8.0)
    assert config.enforcement.confirm_breach is True
    assert config.enforcement.close_concurrency == 4
    assert config.enforcement.flat_timeout == 60.0
    assert config.enforcement.market_closed_retry == 30.0
    assert config.enforcement.reminder_interval == 300.0

    [account] = config.accounts
    assert account.id == ACCOUNT_ID
    assert account.name == ACCOUNT_ID
    assert account.initial_balance == 100_000.0
    assert account.rule_files == [config_dir / "rules" / "ftmo-2step.yaml"]
    assert [r.name for r in account.rules] == [
        "ftmo-daily-loss",
        "ftmo-max-loss",
        "ftmo-profit-target",
    ]
    assert account.timezone is UTC
    assert account.contract_sizes == {}
    assert account.dry_run is None
    assert account.effective_dry_run is False
    assert config.account(ACCOUNT_ID) is account
    with pytest.raises(KeyError):
        config.account(OTHER_ID)


def test_bridge_defaults_are_the_clients(write_config: WriteConfig) -> None:
    config = load_config(write_config(MINIMAL), env=KEY)
    settings = config.client_settings()
    defaults = ClientSettings(api_key="test-key")
    assert settings.model_dump() == defaults.model_dump()
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "test-key"


def test_every_key_is_read(write_config: WriteConfig, config_dir: Path) -> None:
    path = write_config(
        f"""\
bridge:
  base_url: http://127.0.0.1:8765
  ws_url: ws://127.0.0.1:8765/stream
  timeout: 2500ms
  max_retries: 0
  max_retry_after: 1m
  stream_auth: query
state:
  path: data/state.db
dry_run: true
polling:
  summary_interval: 500ms
  positions_interval: 2m
  start_jitter: 0
  job_timeout: 1h30m
  max_concurrent_requests: 3
enforcement:
  confirm_breach: false
  close_concurrency: 1
  flat_timeout: 90s
  market_closed_retry: 1m
  reminder_interval: 1h
accounts:
  - id: {ACCOUNT_ID}
    name: FTMO 100k challenge
    initial_balance: 100000.5
    rules: rules/ftmo-2step.yaml
    timezone: Europe/Prague
    contract_sizes: {{US30: 1, GER40: 0.5}}
    dry_run: false
  - id: {OTHER_ID}
    initial_balance: 60000
    rules:
      - rules/the5ers-high-stakes.yaml
      - {config_dir / "rules" / "margin-guard.yaml"}
    timezone: UTC+3
"""
    )
    (config_dir / "data").mkdir()
    config = load_config(path, env=KEY)

    settings = config.client_settings()
    assert settings.base_url == "http://127.0.0.1:8765"
    assert settings.stream_url == "ws://127.0.0.1:8765/stream"
    assert (settings.timeout, settings.max_retries, settings.max_retry_after) == (2.5, 0, 60.0)
    assert settings.stream_auth == "query"
    assert config.state_path == config_dir / "data" / "state.db"
    assert config.dry_run is True
    assert config.polling == PollingSettings(
        summary_interval=timedelta(milliseconds=500),
        positions_interval=timedelta(minutes=2),
        start_jitter=timedelta(0),
        job_timeout=timedelta(hours=1, minutes=30),
        max_concurrent_requests=3,
    )
    assert config.enforcement == EnforcementSettings(
        confirm_breach=False,
        close_concurrency=1,
        flat_timeout=timedelta(seconds=90),
        market_closed_retry=timedelta(minutes=1),
        reminder_interval=timedelta(hours=1),
    )

    ftmo, fivers = config.accounts
    assert ftmo.name == "FTMO 100k challenge"
    assert ftmo.initial_balance == 100_000.5
    assert ftmo.timezone == ZoneInfo("Europe/Prague")
    assert ftmo.contract_sizes == {"US30": 1.0, "GER40": 0.5}
    # The global true is a kill switch: the account's own false does not make it trade.
    assert (ftmo.dry_run, ftmo.effective_dry_run) == (False, True)
    assert (fivers.dry_run, fivers.effective_dry_run) == (None, True)
    assert fivers.timezone.utcoffset(None) == timedelta(hours=3)
    assert fivers.rule_files == [
        config_dir / "rules" / "the5ers-high-stakes.yaml",
        config_dir / "rules" / "margin-guard.yaml",
    ]
    assert [r.name for r in fivers.rules] == [
        "the5ers-daily-loss",
        "the5ers-max-loss",
        "the5ers-profit-target",
        "margin-level-low",
        "margin-level-critical",
    ]


def test_relative_paths_follow_the_config_file_not_the_cwd(
    config_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_dir / "etc").mkdir()
    (config_dir / "etc" / "riskd.yaml").write_text(
        MINIMAL.replace("rules/ftmo-2step.yaml", "../rules/ftmo-2step.yaml")
        + "state: {path: ../state.sqlite}\n"
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(config_dir / "etc" / "riskd.yaml", env=KEY)
    assert config.state_path == config_dir / "state.sqlite"
    assert config.accounts[0].rule_files == [config_dir / "etc" / ".." / "rules/ftmo-2step.yaml"]
    assert len(config.accounts[0].rules) == 3


def test_env_overrides_nested_settings(write_config: WriteConfig, config_dir: Path) -> None:
    path = write_config(
        MINIMAL
        + """\
dry_run: false
bridge: {base_url: https://yaml.example, timeout: 4s}
polling: {summary_interval: 5s, positions_interval: 7s}
"""
    )
    (config_dir / "var").mkdir()
    env = {
        **KEY,
        "RISKD_DRY_RUN": "true",
        "RISKD_POLLING__SUMMARY_INTERVAL": "2s",
        "riskd_enforcement__close_concurrency": "2",  # names match case-insensitively
        "RISKD_STATE__PATH": "var/riskd.sqlite",
        "RISKD_BRIDGE__TIMEOUT": "3s",
        "API2TRADE_TIMEOUT": "9",  # the client's variable, in seconds; RISKD_ wins
        "API2TRADE_MAX_RETRIES": "5",
        "API2TRADE_BASE_URL": "https://env.example",
        "RISKD_ENFORCEMENT": '{"flat_timeout": "2m", "close_concurrency": 9}',
        "RISKD_POLLING__START_JITTER": "",  # an empty value is unset
        "HOME": "/root",
    }
    config = load_config(path, env=env)

    assert config.dry_run is True
    assert config.accounts[0].effective_dry_run is True
    assert config.polling.summary_interval == 2.0
    assert config.polling.positions_interval == 7.0  # the YAML's, where no variable is set
    assert config.polling.start_jitter == 2.0
    # A section as JSON, a single setting of it on top.
    assert config.enforcement.flat_timeout == 120.0
    assert config.enforcement.close_concurrency == 2
    assert config.state_path == config_dir / "var" / "riskd.sqlite"
    settings = config.client_settings()
    assert settings.timeout == 3.0
    assert settings.max_retries == 5
    assert settings.base_url == "https://env.example"


def test_api2trade_variables_fill_the_bridge_section(write_config: WriteConfig) -> None:
    env = {
        "API2TRADE_API_KEY": "k",
        "API2TRADE_TIMEOUT": "2.5",
        "API2TRADE_MAX_RETRY_AFTER": "30",
        "API2TRADE_STREAM_AUTH": "query",
        "API2TRADE_WS_URL": "wss://ws.example/stream",
        "API2TRADE_UNRELATED": "ignored, as the client ignores it",
    }
    settings = load_config(write_config(MINIMAL), env=env).client_settings()
    assert (settings.timeout, settings.max_retry_after) == (2.5, 30.0)
    assert settings.stream_auth == "query"
    assert settings.stream_url == "wss://ws.example/stream"


def test_env_mapping_makes_the_load_hermetic(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKD_DRY_RUN", "true")
    monkeypatch.setenv("RISKD_NOT_A_SETTING", "x")
    monkeypatch.setenv("API2TRADE_BASE_URL", "https://from-os-environ.example")
    monkeypatch.setenv("API2TRADE_API_KEY", "from-os-environ")
    path = write_config(MINIMAL)

    config = load_config(path, env={"API2TRADE_API_KEY": "given"})
    assert config.dry_run is False
    settings = config.client_settings()
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "given"

    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.problems[0].startswith("API2TRADE_API_KEY: no bridge API key")


def test_env_defaults_to_os_environ(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("RISKD_", "API2TRADE_")) or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RISKD_DRY_RUN", "yes")
    monkeypatch.setenv("API2TRADE_API_KEY", "k")
    assert load_config(write_config(MINIMAL)).dry_run is True


def test_accounts_can_come_from_a_json_variable(write_config: WriteConfig) -> None:
    path = write_config("dry_run: true\n")
    env = {
        **KEY,
        "RISKD_ACCOUNTS": (
            f'[{{"id": "{OTHER_ID}", "initial_balance": 5000, "rules": ["rules/stale-data.yaml"],'
            ' "dry_run": false}]'
        ),
    }
    [account] = load_config(path, env=env).accounts
    assert account.id == OTHER_ID
    assert [r.name for r in account.rules] == ["stale-data"]
    assert account.dry_run is False
    assert account.effective_dry_run is True  # the global dry_run is a kill switch


def test_bridge_section_mirrors_the_client_settings() -> None:
    """Every bridge key must be a ClientSettings field, so nothing is silently dropped."""
    assert set(BridgeSettings.model_fields) <= set(ClientSettings.model_fields)


def test_client_settings_overrides_for_the_demo(write_config: WriteConfig) -> None:
    config = load_config(write_config(MINIMAL), env={}, require_credentials=False)
    with pytest.raises(ConfigError) as caught:
        config.client_settings()
    [problem] = caught.value.problems
    assert problem.startswith("API2TRADE_API_KEY: no bridge API key: set the API2TRADE_API_KEY")
    settings = config.client_settings(api_key="sim-key", base_url="http://127.0.0.1:9")
    assert settings.base_url == "http://127.0.0.1:9"
    assert settings.stream_url == "ws://127.0.0.1:9/stream"


def test_a_section_with_every_key_commented_out_is_all_defaults(
    write_config: WriteConfig,
) -> None:
    path = write_config(
        MINIMAL + "    contract_sizes:\nbridge:\n  # timeout: 10s\npolling:\nenforcement:\nstate:\n"
    )
    config = load_config(path, env={**KEY, "RISKD_POLLING__JOB_TIMEOUT": "3s"})
    assert config.polling.job_timeout == 3.0
    assert config.polling.summary_interval == 5.0
    assert config.accounts[0].contract_sizes == {}
    assert config.client_settings().timeout == 10.0


def test_client_settings_refuses_unknown_overrides(write_config: WriteConfig) -> None:
    config = load_config(write_config(MINIMAL), env=KEY)
    with pytest.raises(TypeError, match="not a ClientSettings field: apikey"):
        config.client_settings(apikey="x")
