"""Credentials: environment over secrets files, never in the YAML, never printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from riskd.config import Config, ConfigError, load_config
from tests.config.conftest import MINIMAL, WriteConfig

FILE_KEY = "file-key-7Qm2"
ENV_KEY = "env-key-X9pL"
PASSWORD = "pro-pass-4Rt8"


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    path = tmp_path / "secrets"
    path.mkdir()
    return path


def api_key(config: Config) -> str:
    key = config.client_settings().api_key
    assert isinstance(key, SecretStr)
    return key.get_secret_value()


def test_secrets_file_supplies_the_key_with_its_newline_stripped(
    write_config: WriteConfig, secrets_dir: Path
) -> None:
    (secrets_dir / "API2TRADE_API_KEY").write_text(FILE_KEY + "\n")
    config = load_config(write_config(MINIMAL), env={"RISKD_SECRETS_DIR": str(secrets_dir)})
    assert api_key(config) == FILE_KEY
    assert config.secrets_dirs == (secrets_dir,)


def test_only_one_trailing_newline_is_stripped(
    write_config: WriteConfig, secrets_dir: Path
) -> None:
    (secrets_dir / "API2TRADE_API_KEY").write_bytes(b" spaced key \r\n")
    config = load_config(write_config(MINIMAL), env={"RISKD_SECRETS_DIR": str(secrets_dir)})
    assert api_key(config) == " spaced key "


def test_env_var_beats_secrets_file(write_config: WriteConfig, secrets_dir: Path) -> None:
    (secrets_dir / "API2TRADE_API_KEY").write_text(FILE_KEY)
    env = {"RISKD_SECRETS_DIR": str(secrets_dir), "API2TRADE_API_KEY": ENV_KEY}
    assert api_key(load_config(write_config(MINIMAL), env=env)) == ENV_KEY


def test_secrets_file_beats_yaml(write_config: WriteConfig, secrets_dir: Path) -> None:
    """The YAML may set the Pro user name; a secrets file for it wins."""
    (secrets_dir / "API2TRADE_PRO_USERNAME").write_text("file-user\n")
    (secrets_dir / "API2TRADE_PRO_PASSWORD").write_text(PASSWORD + "\n")
    path = write_config(MINIMAL + "bridge: {pro_username: yaml-user}\n")
    settings = load_config(path, env={"RISKD_SECRETS_DIR": str(secrets_dir)}).client_settings()
    assert settings.auth_mode == "basic"
    assert settings.pro_username == "file-user"
    assert settings.pro_password is not None
    assert settings.pro_password.get_secret_value() == PASSWORD


def test_systemd_credentials_directory(write_config: WriteConfig, secrets_dir: Path) -> None:
    (secrets_dir / "API2TRADE_API_KEY").write_text(FILE_KEY)
    config = load_config(write_config(MINIMAL), env={"CREDENTIALS_DIRECTORY": str(secrets_dir)})
    assert api_key(config) == FILE_KEY


def test_explicit_secrets_dir_is_searched_before_systemds(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    explicit, systemd = tmp_path / "explicit", tmp_path / "systemd"
    explicit.mkdir()
    systemd.mkdir()
    (explicit / "API2TRADE_API_KEY").write_text("explicit")
    (systemd / "API2TRADE_API_KEY").write_text("systemd")
    (systemd / "API2TRADE_PRO_USERNAME").write_text("only-in-systemd")
    env = {"RISKD_SECRETS_DIR": str(explicit), "CREDENTIALS_DIRECTORY": str(systemd)}
    config = load_config(write_config(MINIMAL), env=env, require_credentials=False)
    assert config.bridge.api_key is not None
    assert config.bridge.api_key.get_secret_value() == "explicit"
    assert config.bridge.pro_username == "only-in-systemd"


def test_kubernetes_secret_mount_with_lowercase_names(
    write_config: WriteConfig, secrets_dir: Path
) -> None:
    """A secret volume holds symlinks into a ``..data`` directory; key names are often lower."""
    data = secrets_dir / "..2026_11_25_10_00_00.123"
    data.mkdir()
    (data / "api2trade_api_key").write_text(FILE_KEY + "\n")
    (secrets_dir / "..data").symlink_to(data.name)
    (secrets_dir / "api2trade_api_key").symlink_to(Path("..data") / "api2trade_api_key")
    config = load_config(write_config(MINIMAL), env={"RISKD_SECRETS_DIR": str(secrets_dir)})
    assert api_key(config) == FILE_KEY


def test_missing_credential_names_the_variable_and_the_secrets_dir(
    write_config: WriteConfig, secrets_dir: Path
) -> None:
    (secrets_dir / "API2TRADE_API_KEY").write_text("\n")
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(MINIMAL), env={"RISKD_SECRETS_DIR": str(secrets_dir)})
    assert caught.value.problems == [
        "API2TRADE_API_KEY: no bridge API key: set the API2TRADE_API_KEY environment variable "
        "or put it in a file named API2TRADE_API_KEY in the secrets directory "
        f"(searched: {secrets_dir}); Pro plans set API2TRADE_PRO_USERNAME and "
        "API2TRADE_PRO_PASSWORD instead; empty secrets files: "
        f"{secrets_dir / 'API2TRADE_API_KEY'}"
    ]


def test_missing_credential_without_a_secrets_dir(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(MINIMAL), env={})
    [problem] = caught.value.problems
    assert "(none configured: set RISKD_SECRETS_DIR, or use LoadCredential= under systemd)" in (
        problem
    )


def test_pro_login_without_password_names_the_password(write_config: WriteConfig) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(MINIMAL), env={"API2TRADE_PRO_USERNAME": "alice"})
    [problem] = caught.value.problems
    assert problem.startswith(
        "API2TRADE_PRO_PASSWORD: the Pro plan login has no password: set the "
        "API2TRADE_PRO_PASSWORD environment variable or put it in a file named "
        "API2TRADE_PRO_PASSWORD in the secrets directory"
    )


def test_credentials_are_optional_for_offline_tools(write_config: WriteConfig) -> None:
    config = load_config(write_config(MINIMAL), env={}, require_credentials=False)
    assert config.bridge.api_key is None


def test_secrets_dir_that_is_not_a_directory(write_config: WriteConfig, tmp_path: Path) -> None:
    env = {"RISKD_SECRETS_DIR": str(tmp_path / "nope"), "API2TRADE_API_KEY": "k"}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(MINIMAL), env=env)
    assert caught.value.problems == [f"RISKD_SECRETS_DIR: {tmp_path / 'nope'} is not a directory"]


@pytest.mark.parametrize(
    ("section", "key", "variable"),
    [
        ("bridge", "api_key", "API2TRADE_API_KEY"),
        ("bridge", "pro_password", "API2TRADE_PRO_PASSWORD"),
    ],
)
def test_a_secret_in_the_yaml_is_refused(
    write_config: WriteConfig, section: str, key: str, variable: str
) -> None:
    path = write_config(
        f"{section}:\n  base_url: https://x.example\n  {key}: {FILE_KEY}\n" + MINIMAL
    )
    # Refused even when the environment supplies the same credential.
    env = {variable: ENV_KEY}
    if key == "pro_password":
        env["API2TRADE_PRO_USERNAME"] = "alice"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    assert caught.value.problems == [
        f"{path}:3: {section}: '{key}' is a secret and does not belong in the config file: "
        f"set the {variable} environment variable or put the value in a file named "
        f"{variable} in the secrets directory (RISKD_SECRETS_DIR, or $CREDENTIALS_DIRECTORY "
        "under systemd)"
    ]
    assert FILE_KEY not in str(caught.value)


def test_any_secret_looking_key_is_refused(write_config: WriteConfig) -> None:
    path = write_config(MINIMAL + "    password: hunter2\napi_token: abc\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"API2TRADE_API_KEY": "k"})
    assert [p.split(" and ")[0] for p in caught.value.problems] == [
        f"{path}:5: accounts[0]: 'password' is a secret",
        f"{path}:6: 'api_token' looks like a secret,",
    ]
    assert "hunter2" not in str(caught.value)
    assert "abc" not in str(caught.value)


def test_secret_values_never_appear_in_errors_or_reprs(
    write_config: WriteConfig, secrets_dir: Path
) -> None:
    (secrets_dir / "API2TRADE_PRO_PASSWORD").write_text(PASSWORD + "\n")
    env = {
        "RISKD_SECRETS_DIR": str(secrets_dir),
        "API2TRADE_API_KEY": ENV_KEY,
        "API2TRADE_PRO_USERNAME": "alice",
    }
    config = load_config(write_config(MINIMAL), env=env)
    settings = config.client_settings()
    for text in (repr(config), str(config), repr(settings), str(settings), repr(config.bridge)):
        assert ENV_KEY not in text
        assert PASSWORD not in text

    # With problems elsewhere, and a secret in a badly formed JSON override.
    broken = write_config(MINIMAL + "polling: {summary_interval: 5}\n")
    env["RISKD_BRIDGE"] = f'{{"api_key": "{ENV_KEY}", "timeout": "soon"}}'
    env["RISKD_BRIDGE__PRO_PASSWORD"] = PASSWORD
    with pytest.raises(ConfigError) as caught:
        load_config(broken, env=env)
    text = str(caught.value)
    assert ENV_KEY not in text
    assert PASSWORD not in text
    assert caught.value.problems == [
        f"{broken}:5: polling.summary_interval: a duration needs a unit, e.g. 5s or 5m",
        "RISKD_BRIDGE: bridge.timeout: 'soon' is not a duration; write a number and a unit "
        "(ms, s, m, h, d, w), e.g. 30s, 5m, 1h30m",
    ]

    env["RISKD_BRIDGE"] = f'{{"api_key": "{ENV_KEY}" '
    with pytest.raises(ConfigError) as caught:
        load_config(broken, env=env)
    assert ENV_KEY not in str(caught.value)
    assert (
        "RISKD_BRIDGE: expected JSON for this section or list "
        "(Expecting ',' delimiter at character 28)"
    ) in caught.value.problems
