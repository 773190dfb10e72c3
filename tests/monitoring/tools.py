"""Helpers of the monitoring tests: the Prometheus binaries, and the metric names a PromQL
expression (an alert rule, a dashboard query) reads."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from memfleet.kube.alert_rules import rule_groups
from memfleet.kube.dashboard import dashboard

# CI installs Debian's prometheus package and sets this, so that a missing binary fails there
# instead of skipping the very tests the package was installed for.
REQUIRE_ENV = "MEMFLEET_REQUIRE_PROMETHEUS"
# Series Prometheus makes itself for every target; no exporter serves them.
SYNTHETIC = {"up"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_GROUPING = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"


def binary(name: str) -> str:
    """The path of a Prometheus binary (``promtool``, ``prometheus``); skips the test when it
    is missing, or fails it where CI said it must be there."""
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path is not None:
        return path
    reason = f"{name} is not installed (apt-get install -y prometheus)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 says it must be")
    pytest.skip(reason)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, label names, keywords).

    Grafana's variables are replaced first; then strings, label matchers, ranges, grouping
    clauses and offsets are removed, and what is left that looks like a name and is not
    called like a function is a metric.
    """
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "1m", expr)
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(_GROUPING, " ", e)
    e = re.sub(r"\boffset\s+-?\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if re.match(r"\s*\(", e[m.end() :]) or m.group() in _KEYWORDS:
            continue
        names.add(m.group())
    return names


def rule_expressions() -> list[str]:
    """Every alert rule's expression."""
    return [r["expr"] for g in rule_groups() for r in g["rules"]]


def dashboard_expressions() -> list[str]:
    """Every query of the dashboard: panel targets and the template variables' queries."""
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            # label_values(METRIC, LABEL): METRIC is a selector.
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", var["query"])
            assert m, var["query"]
            exprs.append(m.group(1))
    return exprs


def used_metric_names() -> set[str]:
    """Every metric the rules and the dashboard read, except Prometheus' own ``up``."""
    names: set[str] = set()
    for expr in [*rule_expressions(), *dashboard_expressions()]:
        names |= metric_names(expr)
    return names - SYNTHETIC
