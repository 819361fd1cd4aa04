"""``alerts:``: URLs only from the environment or a secrets file (never the YAML, never
shown), an apprise config file, routes checked against the tags in use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from riskd.actions.notify import AppriseAlerter, AppriseSettings
from riskd.config import ConfigError, load_config
from tests.config.conftest import MINIMAL, WriteConfig

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM = f"tgram://{TOKEN}/-1001234567"
MAIL = "mailtos://alice:Passw0rdXyz@smtp.example.com:587?to=ops@example.com"


def test_defaults_mean_log_only(write_config: WriteConfig) -> None:
    alerts = load_config(write_config(MINIMAL), env={}, require_credentials=False).alerts
    assert not alerts.enabled
    assert (alerts.timeout, alerts.retries, alerts.repeat_interval) == (10.0, 3, 1800.0)
    assert (alerts.queue_size, alerts.retry_backoff, alerts.drain_timeout) == (1000, 2.0, 10.0)
    assert alerts.routes == {}


def test_urls_in_the_yaml_are_refused_without_echoing_them(write_config: WriteConfig) -> None:
    path = write_config(MINIMAL + f"alerts:\n  timeout: 5s\n  urls:\n    - {TELEGRAM}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, require_credentials=False)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:7: alerts: 'urls' holds apprise URLs")
    assert "RISKD_ALERTS__URLS" in problem
    assert TOKEN not in str(caught.value)


def test_urls_from_the_environment_as_json_or_lines(write_config: WriteConfig) -> None:
    path = write_config(MINIMAL + "alerts:\n  routes: {critical: [telegram, email]}\n")
    as_json = json.dumps([{"url": TELEGRAM, "tags": ["telegram"]}, f"email={MAIL}"])
    as_lines = f"# comment\ntelegram={TELEGRAM}\n\n email = {MAIL}\n"
    for value in (as_json, as_lines):
        config = load_config(path, env={"RISKD_ALERTS__URLS": value}, require_credentials=False)
        urls = config.alerts.urls
        assert [u.url.get_secret_value() for u in urls] == [TELEGRAM, MAIL]
        assert [u.tags for u in urls] == [("telegram",), ("email",)]
        assert TOKEN not in repr(config)
        assert "Passw0rdXyz" not in repr(config)
        settings = AppriseSettings.from_config(config.alerts)
        assert settings.enabled
        assert settings.routes == {"critical": ("telegram", "email")}
        assert TOKEN not in repr(settings)


def test_urls_from_a_secrets_file(write_config: WriteConfig, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "RISKD_ALERTS__URLS").write_text(f"telegram, ops = {TELEGRAM}\n")
    config = load_config(
        write_config(MINIMAL), env={"RISKD_SECRETS_DIR": str(secrets)}, require_credentials=False
    )
    [url] = config.alerts.urls
    assert url.url.get_secret_value() == TELEGRAM
    assert url.tags == ("telegram", "ops")
    # The environment wins over the file.
    env = {"RISKD_SECRETS_DIR": str(secrets), "RISKD_ALERTS__URLS": f"email={MAIL}"}
    [url] = load_config(write_config(MINIMAL), env=env, require_credentials=False).alerts.urls
    assert url.tags == ("email",)


def test_bad_urls_name_the_variable_never_the_url(write_config: WriteConfig) -> None:
    path = write_config(MINIMAL)
    secret = "SuperSecretToken123"
    for value, expected in (
        (f"not a url {secret}", "RISKD_ALERTS__URLS: line 1 is not an apprise URL"),
        (f"nosuchservice://{secret}@host", "RISKD_ALERTS__URLS: alerts.urls[0]: apprise cannot "),
        (json.dumps([{"url": f"x{secret}"}]), "RISKD_ALERTS__URLS: alerts.urls[0].url: expected"),
        (f'[{{"url": "tgram://{secret}"', "RISKD_ALERTS__URLS: expected JSON"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={"RISKD_ALERTS__URLS": value}, require_credentials=False)
        assert caught.value.problems[0].startswith(expected), caught.value.problems
        assert secret not in str(caught.value)


def test_apprise_config_file_is_resolved_and_its_tags_checked(
    write_config: WriteConfig, config_dir: Path
) -> None:
    (config_dir / "apprise.yml").write_text(
        f"version: 1\nurls:\n  - {TELEGRAM}:\n      tag: telegram\n"
    )
    path = write_config(
        MINIMAL + "alerts:\n  config_file: apprise.yml\n  routes: {warning: [telegram]}\n"
    )
    alerts = load_config(path, env={}, require_credentials=False).alerts
    assert alerts.config_file == str(config_dir / "apprise.yml")
    assert alerts.enabled

    typo = write_config(
        MINIMAL + "alerts:\n  config_file: apprise.yml\n  routes:\n    critical: [telegarm]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(typo, env={}, require_credentials=False)
    assert caught.value.problems == [
        f"{typo}:8: alerts.routes.critical: tag 'telegarm' matches no alert URL "
        "(tags in use: telegram)"
    ]


def test_missing_or_empty_apprise_config_file(write_config: WriteConfig, config_dir: Path) -> None:
    path = write_config(MINIMAL + "alerts:\n  config_file: nowhere.yml\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, require_credentials=False)
    assert caught.value.problems == [
        f"{path}:6: alerts.config_file: cannot read the apprise config file "
        f"{config_dir / 'nowhere.yml'}: no such file"
    ]
    (config_dir / "empty.yml").write_text("version: 1\nurls: []\n")
    path = write_config(MINIMAL + "alerts:\n  config_file: empty.yml\n")
    with pytest.raises(ConfigError, match="apprise found no usable notification URL"):
        load_config(path, env={}, require_credentials=False)


def test_durations_and_bounds(write_config: WriteConfig) -> None:
    path = write_config(
        MINIMAL
        + "alerts:\n  timeout: 3s\n  retries: 0\n  retry_backoff: 500ms\n"
        + "  repeat_interval: 0s\n  queue_size: 10\n  drain_timeout: 1m\n"
    )
    alerts = load_config(path, env={}, require_credentials=False).alerts
    assert (alerts.timeout, alerts.retries, alerts.retry_backoff) == (3.0, 0, 0.5)
    assert (alerts.repeat_interval, alerts.queue_size, alerts.drain_timeout) == (0.0, 10, 60.0)
    bad = write_config(MINIMAL + "alerts:\n  queue_size: 0\n  routes: {urgent: [x]}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad, env={}, require_credentials=False)
    assert [p.split(": ")[1] for p in caught.value.problems] == [
        "alerts.queue_size",
        "alerts.routes.urgent",
    ]


def test_shipped_examples_load_together(write_config: WriteConfig) -> None:
    """riskd.example.yaml's routes work with deploy/apprise/apprise.yml's tags."""
    repo = Path(__file__).resolve().parents[2]
    example = (repo / "riskd.example.yaml").read_text()
    apprise_file = repo / "deploy" / "apprise" / "apprise.yml"
    text = example.replace(
        "  # config_file: /etc/riskd/apprise.yml", f"  config_file: {apprise_file}"
    )
    assert text != example
    config = load_config(write_config(text), env={}, require_credentials=False)
    settings = AppriseSettings.from_config(config.alerts)
    assert settings.config_file == str(apprise_file)
    assert settings.routes["critical"] == ("telegram", "email")
    alerter = AppriseAlerter(settings)
    assert alerter.targets == (
        ("Telegram[telegram]", ("telegram",)),
        ("E-Mail[email]", ("email",)),
    )
    assert "replace-with-app-password" not in repr(alerter)
