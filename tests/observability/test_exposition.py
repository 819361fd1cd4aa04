"""The /metrics exposition: fixed by a golden file, clean for promtool, bounded labels."""

from __future__ import annotations

import os
import re
from pathlib import Path

from riskd.metrics import Metrics
from riskd.sim import SimServer
from tests.observability.conftest import (
    GOLDEN,
    Scenario,
    build_scenario,
    close_scenario,
    normalise,
    run_promtool,
    scrape,
)

# Every label name riskd may put on a series (histogram ``le`` included): nothing that can
# grow with trading (tickets, symbols, prices) or with the network (URLs, hosts).
ALLOWED_LABELS = {
    "account", "rule", "kind", "action", "severity", "state", "event", "outcome", "endpoint",
    "reason", "name", "currency", "dry_run", "version", "python", "le", "shard", "shards",
}  # fmt: skip


async def test_exposition_matches_golden_file(scenario: Scenario) -> None:
    response = await scrape(scenario.service, scenario.metrics)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = normalise(response.text, scenario.account)
    if os.environ.get("RISKD_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(got)
    assert got == GOLDEN.read_text(), (
        "the /metrics exposition changed; if on purpose, rerun with RISKD_UPDATE_GOLDEN=1 "
        "and review the diff of tests/observability/golden/metrics.txt"
    )


async def test_promtool_check_metrics_is_clean(sim: SimServer, tmp_path: Path) -> None:
    built = await build_scenario(sim, tmp_path, process_metrics=True)
    try:
        response = await scrape(built.service, built.metrics)
    finally:
        await close_scenario(built)
    assert "process_resident_memory_bytes" in response.text
    result = run_promtool("check", "metrics", stdin=response.content)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )


async def test_every_family_is_documented_prefixed_and_bounded(scenario: Scenario) -> None:
    text = scenario.metrics.exposition().decode()
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.M))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert helps.keys() == types.keys()
    for name, doc in helps.items():
        assert name.startswith("riskd_"), name
        assert len(doc) > 20, f"{name}: HELP too short"
        if types[name] == "counter":
            assert name.endswith("_total"), name
    labels = set(re.findall(r'[{,]([a-zA-Z_][a-zA-Z0-9_]*)="', text))
    assert labels <= ALLOWED_LABELS, labels - ALLOWED_LABELS
    assert "_created" not in text  # OpenMetrics-only series stay out of the text format


async def test_state_is_read_at_scrape_time(scenario: Scenario) -> None:
    book = scenario.service.books[scenario.account]
    metrics = scenario.metrics

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"account": scenario.account, **labels})

    assert value("riskd_rule_headroom", rule="max-loss", kind="max_loss") == 400.0
    assert book.summary is not None
    book.summary = book.summary.model_copy(update={"equity": 99_100.0, "margin": 0.0})
    assert value("riskd_account_equity") == 99_100.0
    # No margin in use: no margin level (MetaTrader's 0 would look like a margin call).
    assert value("riskd_account_margin") == 0.0
    assert value("riskd_account_margin_level_ratio") is None


def test_two_metrics_objects_do_not_share_state() -> None:
    first, second = Metrics(process_metrics=False), Metrics(process_metrics=False)
    first.alert_sent("breach", "critical")
    labels = {"event": "breach", "severity": "critical"}
    assert first.registry.get_sample_value("riskd_alerts_sent_total", labels) == 1.0
    assert second.registry.get_sample_value("riskd_alerts_sent_total", labels) is None
