"""The alert rules: valid for Prometheus (``promtool check rules``), each alert unit-tested
firing and not firing (``promtool test rules`` on rules_test.yaml), aggregated over proxies."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from memfleet.kube.alert_rules import RuleOptions, rule_groups
from memfleet.kube.monitoring import RULES_FILE, prometheus_rule, rules_yaml, write_rules
from memfleet.kube.options import RenderOptions
from tests.monitoring.tools import binary, metric_names

HERE = Path(__file__).parent
UNIT_TESTS = HERE / "rules_test.yaml"


def _alerts() -> list[dict[str, object]]:
    return [r for g in rule_groups() for r in g["rules"]]


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    promtool = binary("promtool")
    path = write_rules(tmp_path)
    r = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in r.stdout + r.stderr


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    promtool = binary("promtool")
    write_rules(tmp_path)  # rule_files in the test file are relative to the test file
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    r = subprocess.run(
        [promtool, "test", "rules", UNIT_TESTS.name],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    doc = yaml.safe_load(UNIT_TESTS.read_text())
    assert doc["rule_files"] == [RULES_FILE]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {str(a["alert"]) for a in _alerts()}
    assert names == fires, f"never tested firing: {names - fires}"
    assert names == quiet, f"never tested quiet: {names - quiet}"


def test_alerts_on_proxy_metrics_are_aggregated_over_proxies() -> None:
    # Prometheus scrapes every proxy: an expression on their metrics that is not aggregated
    # raises one alert per proxy for a single broken backend.
    for alert in _alerts():
        expr = str(alert["expr"])
        proxy_metrics = {m for m in metric_names(expr) if m.startswith("memfleet_")} - {
            "memfleet_node_up"
        }
        if proxy_metrics:
            for line in expr.split("\n"):
                for m in proxy_metrics:
                    assert m not in line or "sum by (" in line or "max by (" in line, (
                        f"{alert['alert']}: {m} is not aggregated in {line!r}"
                    )


def test_every_alert_says_what_and_how_bad() -> None:
    for alert in _alerts():
        assert alert["labels"] and dict(alert["labels"])["severity"] in ("warning", "critical")  # type: ignore[arg-type]
        notes = dict(alert["annotations"])  # type: ignore[call-overload]
        assert notes["summary"] and notes["description"]


def test_for_durations_are_a_parameter() -> None:
    default = {str(a["alert"]): a.get("for") for a in _alerts()}
    assert default["MemfleetNodeDown"] == "1m"
    short = [r for g in rule_groups(RuleOptions(for_override="1s")) for r in g["rules"]]
    assert {r["for"] for r in short} == {"1s"}
    assert "for: 1s" in rules_yaml(RuleOptions(for_override="1s"))


def test_the_prometheus_rule_carries_the_same_groups() -> None:
    rule = prometheus_rule(RenderOptions())
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == yaml.safe_load(rules_yaml())["groups"]
