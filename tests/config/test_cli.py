"""``riskd check-rules`` and ``riskd check-config``; the shipped example and presets pass."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from riskd.cli import main
from riskd.config import load_config
from tests.config.conftest import EXAMPLE, MINIMAL, REPO, RULES_DIR, WriteConfig

PRESETS = sorted(RULES_DIR.glob("*.yaml"))

BAD_RULES = """\
- name: daily
  kind: daily_loss
  baseline: balance
  limit: 5%
  limit_of: initial_balance
  reset: {at: "25:00", zone: Europe/Prague}
  action: flatten
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """check-config reads os.environ: keep the developer's variables out."""
    for name in list(os.environ):
        if name.upper().startswith(("RISKD_", "API2TRADE_")) or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def test_check_rules_accepts_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-rules", *map(str, PRESETS)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"ok: 13 rules in {len(PRESETS)} files\n"


def test_check_rules_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-rules", str(RULES_DIR / "stale-data.yaml")]) == 0
    assert capsys.readouterr().out == "ok: 1 rule in 1 file\n"


def test_check_rules_prints_every_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_RULES)
    missing = tmp_path / "missing.yaml"
    assert main(["check-rules", str(bad), str(PRESETS[0]), str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{bad}:6: rule 'daily': reset.at: '25:00' is not a clock time; hours go 00-23 and "
        "minutes 00-59",
        f"{bad}:7: rule 'daily': action: Input should be 'alert', 'close_all' or 'lockout'",
        f"{missing}: cannot read the file: No such file or directory",
    ]


def test_check_rules_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check-rules"])
    assert caught.value.code == 2
    assert "FILE" in capsys.readouterr().err


def test_check_config_accepts_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    first, *notes = out.splitlines()
    assert first == "ok: 2 accounts, 8 rules in 3 rule files"
    # Without the service's environment it says what `riskd run` would do differently.
    assert any("API2TRADE_API_KEY" in n and "would refuse to start" in n for n in notes)
    assert any("alerts go to the log only" in n for n in notes)


def test_check_config_notes_vanish_with_the_services_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API2TRADE_API_KEY", "k")
    monkeypatch.setenv(
        "RISKD_ALERTS__URLS", "telegram=json://127.0.0.1:9/t\nemail=json://127.0.0.1:9/e"
    )
    monkeypatch.setenv("RISKD_SHARD_COUNT", "2")
    monkeypatch.setenv("RISKD_SHARD_INDEX", "1")
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok: 2 accounts, 8 rules in 3 rule files"
    assert out[1:] == [
        "note: shard 1 of 2, from RISKD_SHARD_INDEX=1: this replica watches 1 of 2 accounts"
    ]


def test_check_config_does_not_need_credentials_but_reads_overrides(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(MINIMAL)
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "ok: 1 account, 3 rules in 1 rule file"

    monkeypatch.setenv("RISKD_POLLING__SUMMARY_INTERVAL", "fast")
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("RISKD_POLLING__SUMMARY_INTERVAL: 'fast' is not a duration")


def test_check_config_prints_every_problem(
    write_config: WriteConfig, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (config_dir / "bad.yaml").write_text(BAD_RULES)
    path = write_config(
        MINIMAL.replace("100000", "zero").replace("rules/ftmo-2step.yaml", "bad.yaml")
        + "polling: {job_timeout: 2 s}\n"
    )
    assert main(["check-config", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        f"{path}:3",
        f"{path}:5",
        f"{config_dir / 'bad.yaml'}:6",
        f"{config_dir / 'bad.yaml'}:7",
    ]


def test_example_is_accepted_by_load_config() -> None:
    config = load_config(EXAMPLE, env={}, require_credentials=False)
    assert [a.name for a in config.accounts] == ["FTMO 100k challenge", "The5ers 60k high stakes"]
    assert [a.effective_dry_run for a in config.accounts] == [False, True]
    assert config.state_path == REPO / "riskd-state.sqlite"


def test_example_documents_every_key() -> None:
    """Each key has a comment on its line or on the line above (the example is the manual)."""
    lines = EXAMPLE.read_text().splitlines()
    key = re.compile(r"^\s*(?:- )?[a-z_]+:")
    undocumented = [
        f"{number}: {line}"
        for number, line in enumerate(lines, start=1)
        if key.match(line) and "#" not in line and not lines[number - 2].lstrip().startswith("#")
    ]
    assert undocumented == []


def test_as_a_subprocess_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "riskd.yaml"
    bad.write_text("accounts:\n  - id: nope\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RISKD_")}
    run = subprocess.run(  # noqa: S603  (our own interpreter, constant arguments)
        [sys.executable, "-m", "riskd", "check-config", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert run.stderr.splitlines()[0].startswith(f"{bad}:2: accounts[0]")

    ok = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "riskd", "check-rules", *map(str, PRESETS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith("ok: ")
