"""The operator files in deploy/: the Grafana dashboard and the Prometheus rules use only
metrics riskd exports, parse as PromQL, and the rules pass their unit tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.conftest import ROOT, Scenario, run_promtool

DASHBOARD = ROOT / "deploy" / "grafana" / "riskd.json"
RULES = ROOT / "deploy" / "prometheus" / "riskd-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "riskd-rules.test.yml"
CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.example.yml"

_NAME = re.compile(r"\briskd_[a-z0-9_]+")
# Grafana's variables, as a value PromQL accepts, to parse the dashboard's queries.
_GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$account": ".+",
}


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in doc["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_queries(doc: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(doc) for t in p.get("targets", [])]


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _exported_names(exposition: str) -> set[str]:
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def test_dashboard_has_fixed_uid_and_datasource_and_account_variables() -> None:
    doc = _dashboard()
    assert doc["uid"] == "riskd-overview"
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    account = variables["account"]
    assert account["type"] == "query" and account["multi"] and account["includeAll"]
    assert "riskd_account_info" in account["definition"]
    panels = [p for p in _panels(doc) if p["type"] != "row"]
    titles = " | ".join(p["title"] for p in panels)
    for wanted in ("Equity vs every floor", "Headroom", "Margin level", "Rule states",
                   "Flattens", "API latency", "API errors", "Stream connected"):  # fmt: skip
        assert wanted in titles
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in _panels(doc)]
    assert len(ids) == len(set(ids))


def test_dashboard_works_across_shards() -> None:
    """No query pins an instance or a job: every riskd process (shard) shows up."""
    for expr in _dashboard_queries(_dashboard()):
        assert not re.search(r"\b(instance|job)\s*=~?\s*\"", expr), expr
        if "group_left" in expr:  # joins match within one process (shard), never across
            assert re.search(r"on \(instance(, account)?\)", expr), expr


async def test_every_metric_in_dashboard_and_rules_is_exported(scenario: Scenario) -> None:
    exported = _exported_names(scenario.metrics.exposition().decode())
    doc = _dashboard()
    queries = _dashboard_queries(doc)
    variables = [v.get("definition", "") for v in doc["templating"]["list"]]
    used = {name for text in [*queries, *variables, *_rule_exprs()] for name in _NAME.findall(text)}
    assert used, "no riskd metric found in the dashboard"
    missing = sorted(used - exported)
    assert not missing, f"not in riskd's /metrics: {missing}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    exprs = []
    for expr in _dashboard_queries(_dashboard()):
        for variable, value in _GRAFANA_VARS.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        exprs.append(expr)
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]}]}  # fmt: skip
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "success"),
    [
        (("check", "rules", str(RULES)), "SUCCESS"),
        (("test", "rules", str(RULE_TESTS)), "SUCCESS"),
        (("check", "config", str(CONFIG)), "SUCCESS"),
    ],
    ids=["check rules", "test rules", "check config"],
)
def test_prometheus_files_pass_promtool(args: tuple[str, ...], success: str) -> None:
    result = run_promtool(*args)
    assert result.returncode == 0 and success in result.stdout, result.stdout + result.stderr


def test_rules_cover_what_operators_need() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    for wanted in ("RiskdDown", "RiskdPollsStale", "RiskdStreamDown",
                   "RiskdAlertDeliveryFailing", "RiskdFlattenFailed"):  # fmt: skip
        assert wanted in alerts
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
