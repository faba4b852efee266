"""The catalogue is the one place metric names are spelled, and its entries are well-formed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from meshwatch.instrumentation import catalogue
from meshwatch.instrumentation.catalogue import CATALOGUE, MetricDef, MetricType

PACKAGE = Path(catalogue.__file__).resolve().parents[1]
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _literal_metric_names(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = _docstring_nodes(tree)
    names = CATALOGUE.series_names()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docstrings:
                continue
            for token in NAME_RE.findall(node.value):
                if token in names:
                    found.append((node.lineno, token))
    return found


def test_no_metric_name_is_spelled_outside_the_catalogue() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.resolve() == Path(catalogue.__file__).resolve():
            continue
        for lineno, name in _literal_metric_names(path):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{lineno}: {name}")
    assert offenders == [], "metric names must come from meshwatch.instrumentation.catalogue"


def test_the_spelling_check_catches_a_literal(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docstrings may say agent_governance_trust_score."""\n'
        'EXPR = "rate(agent_hypervisor_ring_breaches_total[5m])"\n'
    )
    assert _literal_metric_names(sample) == [(2, "agent_hypervisor_ring_breaches_total")]


def test_the_tutorial_metrics_are_declared_with_their_labels() -> None:
    assert catalogue.RING_TRANSITIONS.labels == ("event_type", "agent_did", "session_id")
    assert catalogue.RING_BREACHES.labels == ("agent_did", "session_id")
    assert catalogue.RING_CURRENT.labels == ("agent_did",)
    assert catalogue.RING_ELEVATION_DURATION.unit == "seconds"
    assert catalogue.GOVERNANCE_LATENCY.buckets[0] == 0.0005
    assert catalogue.GOVERNANCE_LATENCY.buckets[-1] == 2.5


@pytest.mark.parametrize("metric", list(CATALOGUE), ids=lambda m: m.name)
def test_every_metric_follows_prometheus_conventions(metric: MetricDef) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", metric.name)
    assert metric.help.endswith(".")
    if metric.type is MetricType.COUNTER:
        assert metric.name.endswith("_total")
    for unit in ("milliseconds", "ms", "kilobytes", "minutes"):
        assert not metric.name.endswith("_" + unit), "base units only"
    assert len(set(metric.all_labels(with_optional=True))) == len(
        metric.all_labels(with_optional=True)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "x_count", "type": MetricType.COUNTER}, "_total"),
        ({"name": "x_total", "type": MetricType.GAUGE}, "must not end"),
        ({"name": "x_ms", "type": MetricType.GAUGE, "unit": "seconds"}, "unit"),
        ({"name": "x_seconds", "type": MetricType.HISTOGRAM, "unit": "seconds"}, "buckets"),
        ({"name": "x", "type": MetricType.GAUGE, "labels": ("le",)}, "reserved"),
    ],
)
def test_malformed_definitions_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricDef(help="h.", **kwargs)


def test_lookup_by_series_name() -> None:
    hist = catalogue.GOVERNANCE_LATENCY
    assert CATALOGUE.get(hist.name + "_bucket") is hist
    assert hist.name + "_count" in CATALOGUE
    with pytest.raises(KeyError, match="not in the meshwatch catalogue"):
        CATALOGUE.get("nope_total")
