"""Helpers for config tests: a config directory with the presets it refers to."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
EXAMPLE = REPO / "riskd.example.yaml"

ACCOUNT_ID = "3f9a6c1e-2b47-4d8a-9e15-7c0d2a4b8f61"
OTHER_ID = "8c2d4e6f-1a3b-4c5d-8e7f-9a0b1c2d3e4f"

MINIMAL = f"""\
accounts:
  - id: {ACCOUNT_ID}
    initial_balance: 100000
    rules: [rules/ftmo-2step.yaml]
"""

WriteConfig = Callable[[str], Path]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A directory holding a copy of the shipped rule presets under ``rules/``."""
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    return tmp_path


@pytest.fixture
def write_config(config_dir: Path) -> WriteConfig:
    """Write ``riskd.yaml`` in ``config_dir`` and return its path."""

    def write(text: str) -> Path:
        path = config_dir / "riskd.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write
