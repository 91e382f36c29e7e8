"""config/monitoring: the alert rules pass promtool and fire on the series recorded from the live stack,
and the rules and the dashboard ask only for metrics the operator exports.

promtool is Prometheus' own (hack/lib/build-promtool.sh builds it once into the stack's cache).
The series come from hack/monitoring/record_alert_series.py; the cases that say when each alert
fires and when it does not are in config/monitoring/tests/alert-cases.yaml.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase

from controllers.core import metrics
from tests.cached_tools import REPO, built, version

MONITORING = REPO / "config" / "monitoring"
RULE = MONITORING / "prometheus-rule.yaml"
DASHBOARD = MONITORING / "infometis-dashboard.json"
RECORDED = MONITORING / "tests" / "recorded-series.yaml"
CASES = MONITORING / "tests" / "alert-cases.yaml"

# The sample names each metric type exports (prometheus_client, without the _created gauges).
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
# What a PromQL expression names besides metrics: aggregations' and binary operators' keywords.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


@functools.cache
def promtool() -> Path:
    return built("build-promtool.sh", f"promtool-v{version('PROMETHEUS_MODULE_VERSION')}") / "promtool"


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(promtool()), *args], capture_output=True, text=True, timeout=120)


def rule_groups() -> dict[str, Any]:
    """The PrometheusRule's spec: a Prometheus rule file as it is."""
    manifest = yaml.safe_load(RULE.read_text())
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1" and manifest["kind"] == "PrometheusRule"
    spec: dict[str, Any] = manifest["spec"]
    return spec


def write_rule_file(folder: Path) -> Path:
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups()))
    return path


def alert_names() -> set[str]:
    return {rule["alert"] for group in rule_groups()["groups"] for rule in group["rules"]}


def exported_names() -> set[str]:
    """Every sample name controllers/core/metrics.py exports."""
    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects: its identifiers, less label matchers, strings, ranges,
    functions, keywords and numbers."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"(?<![A-Za-z0-9_:])\d[A-Za-z0-9_.]*", " ", bare)  # numbers, durations (offset 1h)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        follows = bare[match.end() :].lstrip()
        if follows.startswith("(") or match.group() in KEYWORDS:
            continue
        names.add(match.group())
    return names


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return panels


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel.get("targets", [])]


def test_alert_rules_pass_promtool_check(tmp_path: Path) -> None:
    checked = run_promtool("check", "rules", str(write_rule_file(tmp_path)))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in checked.stdout


def test_each_alert_fires_and_stays_quiet_on_the_recorded_series_as_its_cases_say(tmp_path: Path) -> None:
    recorded = yaml.safe_load(RECORDED.read_text())
    cases = yaml.safe_load(CASES.read_text())
    test_file = tmp_path / "alerts-test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(write_rule_file(tmp_path))],
                "evaluation_interval": cases["evaluation_interval"],
                "tests": [
                    {
                        "name": "series recorded from the live stack",
                        "interval": recorded["interval"],
                        "input_series": recorded["input_series"],
                        "alert_rule_test": cases["alert_rule_test"],
                    }
                ],
            },
            width=1000,
        )
    )
    tested = run_promtool("test", "rules", str(test_file))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    cases = yaml.safe_load(CASES.read_text())["alert_rule_test"]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert fires == alert_names()
    assert quiet == alert_names()


def test_recorded_series_name_only_exported_metrics() -> None:
    recorded = yaml.safe_load(RECORDED.read_text())["input_series"]
    assert {entry["series"].partition("{")[0] for entry in recorded} <= exported_names()


def test_alert_rules_ask_only_for_exported_metrics() -> None:
    rules = [rule for group in rule_groups()["groups"] for rule in group["rules"]]
    for rule in rules:
        named = metric_names(rule["expr"])
        assert named, f"{rule['alert']} names no metric"
        assert named <= exported_names(), f"{rule['alert']} asks for {sorted(named - exported_names())}"


def test_dashboard_panels_ask_only_for_exported_metrics() -> None:
    expressions = dashboard_expressions()
    assert expressions
    for expression in expressions:
        named = metric_names(expression)
        assert named, f"a panel's query names no metric: {expression}"
        assert named <= exported_names(), f"a panel asks for {sorted(named - exported_names())}: {expression}"


def test_dashboard_queries_are_promql_that_promtool_accepts(tmp_path: Path) -> None:
    # Grafana's $__rate_interval is filled in at query time; promtool checks the rest as recording rules.
    rules = [
        {"record": f"dashboard:panel_query_{index}", "expr": expression.replace("$__rate_interval", "5m")}
        for index, expression in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run_promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_panels_are_laid_out_with_unique_ids_and_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert [v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_metric_names_finds_the_metrics_of_an_expression_and_nothing_else() -> None:
    # The check above is only as good as this: a misspelt metric must show, label names must not.
    expression = (
        'sum by (kind, le) (rate(infometis_reconciles_totl{phase="Ready", kind=~"a|b"}[5m])) '
        "/ on (kind) group_left max(infometis_leader offset 1h) > bool 0.5"
    )
    assert metric_names(expression) == {"infometis_reconciles_totl", "infometis_leader"}
