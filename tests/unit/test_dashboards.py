"""The provisioned Grafana dashboards (deploy/grafana/).

Every metric a panel queries is one a fresh `Metrics()` exports; every panel and query names the
provisioned datasource by its uid; every query is valid PromQL (promtool parses it as a recording
rule, Grafana's `$__` variables replaced); the JSON is what deploy/grafana/generate.py writes.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.unit.test_deploy_files import HAS_YAML, PROMTOOL, ROOT, _load_yaml, exported_names

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "aiops.yml"
EXPECTED = {"incidents.json", "log-analyzer.json", "ai-performance.json"}

# Grafana's built-in variables, replaced by durations for promtool.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "6h",
}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every query."""
    found = []
    for name, board in _dashboards().items():
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                found.append((name, panel["title"], target["expr"]))
    return found


# -- PromQL: which metric names does an expression select? -------------------------------------

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions, keywords,
    label names (inside `{}` or `by (...)`), strings or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # grouping labels
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)\b(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def test_metric_names_parser() -> None:
    assert metric_names(
        'sum by (le, analyzer) (rate(aiops_x_bucket{a="b", c=~"d|e"}[$__rate_interval]))'
    ) == {"aiops_x_bucket"}
    assert metric_names("time() - max by (loop) (aiops_beat)") == {"aiops_beat"}
    assert metric_names("a / on(instance) group_left(version) b > bool 0.5") == {"a", "b"}
    assert metric_names('sum(increase(x_total{outcome="FAILED"}[10m])) > 3') == {"x_total"}
    assert metric_names("up == 0") == {"up"}


# -- the dashboards ----------------------------------------------------------------------------


def test_the_three_dashboards_exist_with_unique_uids() -> None:
    boards = _dashboards()
    assert set(boards) == EXPECTED
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids)
    for name, board in boards.items():
        assert board["title"].startswith("aiops-agent: "), name
        ids = [panel["id"] for panel in _panels(board["panels"])]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"


def test_every_queried_metric_is_exported() -> None:
    exported = exported_names()
    queries = _queries()
    assert len(queries) >= 40
    used: set[str] = set()
    problems = []
    for board, title, expr in queries:
        names = metric_names(expr)
        if not names:
            problems.append(f"{board} / {title}: selects no metric: {expr}")
        used |= names
        missing = sorted(names - exported)
        if missing:
            problems.append(f"{board} / {title}: {missing} not exported")
    assert problems == []
    # the panels: incidents, log analyzer, AI performance
    for needed in (
        "aiops_incidents_total",
        "aiops_recovery_duration_seconds_bucket",
        "aiops_workflow_transitions_total",
        "aiops_log_anomalies_total",
        "aiops_log_failure_probability",
        "aiops_proactive_alerts_total",
        "aiops_log_templates",
        "aiops_log_bytes_scanned_total",
        "aiops_analyzer_latency_seconds_bucket",
        "aiops_analyzer_tokens_total",
        "aiops_analyzer_fallbacks_total",
        "aiops_analyzer_confidence_bucket",
        "aiops_analyzer_cost_dollars_total",
    ):
        assert needed in used, f"no panel queries {needed}"


def test_a_panel_with_an_unknown_metric_is_caught() -> None:
    exported = exported_names()
    assert metric_names("sum(rate(aiops_incidents_totl[5m]))") - exported == {
        "aiops_incidents_totl"
    }
    assert "aiops_incidents_in_flight" in exported
    assert metric_names("aiops_incidents_in_flight_total") - exported  # a gauge has no _total


@pytest.mark.skipif(not HAS_YAML, reason="PyYAML not installed")
def test_every_panel_uses_the_provisioned_datasource() -> None:
    (source,) = _load_yaml(DATASOURCES)["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    uid = source["uid"]
    for name, board in _dashboards().items():
        for panel in _panels(board["panels"]):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel)
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel)


@pytest.mark.skipif(not HAS_YAML, reason="PyYAML not installed")
def test_the_provider_loads_the_mounted_directory() -> None:
    (provider,) = _load_yaml(PROVIDERS)["providers"]
    compose = _load_yaml(ROOT / "docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_panels_fit_the_grid() -> None:
    for name, board in _dashboards().items():
        for panel in _panels(board["panels"]):
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"])


def test_the_json_is_what_the_generator_writes() -> None:
    generator = _generator()
    assert set(generator.DASHBOARDS) == EXPECTED
    for name in EXPECTED:
        assert (DASHBOARDS / name).read_text() == generator.render(name), (
            f"{name} is stale: run python deploy/grafana/generate.py"
        )


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not on PATH")
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    rules = []
    for i, (_, _, expr) in enumerate(_queries()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unreplaced variable in {expr}"
        rules.append({"record": f"panel:query_{i}", "expr": expr})
    path = tmp_path / "panels.yml"
    path.write_text(json.dumps({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
