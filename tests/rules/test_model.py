"""Rule values validate when built; helpers format PromQL and expand templates like Prometheus."""

from __future__ import annotations

import math

import pytest

from meshwatch.alerts import recording
from meshwatch.alerts.model import AlertRule, RecordingRule, RuleGroup
from meshwatch.alerts.promql import at_least_events, duration, sum_by, sum_rate
from meshwatch.alerts.ruletests.model import Case, ExprCheck, Sample, num
from meshwatch.alerts.ruletests.templates import (
    expand,
    humanize,
    humanize_duration,
    humanize_percentage,
)
from meshwatch.settings import Duration


def _alert(**kwargs: object) -> AlertRule:
    fields = {
        "alert": "SomethingHigh",
        "expr": "x > 1",
        "for_": Duration("5m"),
        "summary": "s",
        "description": "d",
    }
    return AlertRule(**(fields | kwargs))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alert": "something_high"}, "CamelCase"),
        ({"expr": " "}, "empty expression"),
        ({"summary": ""}, "summary and description"),
        ({"labels": {"severity": "critical"}}, "severity field"),
        ({"labels": {"bad-name": "x"}}, "invalid label name"),
        ({"annotations": {"summary": "again"}}, "fields, not annotations"),
        ({"severity": "page"}, "severity must be one of"),
    ],
)
def test_malformed_alerts_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _alert(**kwargs)


def test_an_alert_without_the_conventions_pass_cannot_be_rendered() -> None:
    with pytest.raises(ValueError, match="conventions"):
        _alert().to_dict()


def test_an_alert_renders_for_only_when_it_waits() -> None:
    rule = _alert(for_=Duration("0s"), severity="info", annotations={"runbook_url": "u"})
    assert "for" not in rule.to_dict()
    assert rule.to_dict()["labels"] == {"severity": "info"}


@pytest.mark.parametrize("record", ["agent_did_rate", "a:b", "A:b:c", "a:b:c:d", "a:b:"])
def test_record_names_must_be_level_metric_operations(record: str) -> None:
    with pytest.raises(ValueError, match="level:metric:operations"):
        RecordingRule(record, "x")


def test_a_group_cannot_record_one_series_twice() -> None:
    rule = RecordingRule("a:b:c", "x")
    with pytest.raises(ValueError, match="twice"):
        RuleGroup("g", (rule, RecordingRule("a:b:c", "y")))
    RuleGroup("g", (rule, RecordingRule("a:b:c", "y", {"quantile": "0.5"})))


def test_a_windowed_rule_reads_its_record_at_its_window_and_inlines_at_others() -> None:
    rule = recording.GOVERNANCE_LATENCY_P99
    assert rule.at("5m") == rule.at("300s") == rule.selector
    assert rule.selector.endswith('{quantile="0.99"}')
    inline = rule.at("10m")
    assert "[10m]" in inline and rule.record not in inline
    assert inline.startswith("(label_replace(histogram_quantile(0.99, ")


def test_promql_helpers() -> None:
    assert sum_by((), "x") == "sum(x)"
    assert sum_by(("a", "b"), "x") == "sum by (a, b) (x)"
    assert sum_rate(("a",), "x_total", "5m") == "sum by (a) (rate(x_total[5m]))"
    assert [duration(s) for s in (0, 0.25, 90, 900, 4500, 90000)] == [
        "0ms",
        "250ms",
        "1m30s",
        "15m",
        "1h15m",
        "1d1h",
    ]
    with pytest.raises(ValueError):
        duration(-1)


def test_the_volume_guard_filters_on_the_given_labels_and_counts_events_in_the_window() -> None:
    guarded = at_least_events("r > 0.1", ("agent_did",), "a + b", Duration("10m"), 10)
    assert guarded == "r > 0.1 and on(agent_did) (a + b) * 600 >= 10"
    assert at_least_events("r > 0.1", (), "x", Duration("5m"), 3).endswith("on() (x) * 300 >= 3")
    assert at_least_events("r > 0.1", ("agent_did",), "x", Duration("5m"), 0) == "r > 0.1"


@pytest.mark.parametrize(
    ("function", "value", "text"),
    [
        (humanize, 0, "0"),
        (humanize, 1.25, "1.25"),
        (humanize, 1234.5, "1.234k"),
        (humanize, 2_500_000, "2.5M"),
        (humanize, 0.25, "250m"),
        (humanize, 0.0005, "500u"),
        (humanize, math.nan, "NaN"),
        (humanize_percentage, 0.25, "25%"),
        (humanize_percentage, 0.55, "55%"),
        (humanize_duration, 0, "0s"),
        (humanize_duration, 0.05, "50ms"),
        (humanize_duration, 1.5, "1.5s"),
        (humanize_duration, 90, "1m 30s"),
        (humanize_duration, 3723, "1h 2m 3s"),
        (humanize_duration, 90061, "1d 1h 1m 1s"),
    ],
)
def test_humanize_functions_match_prometheus(function, value: float, text: str) -> None:
    assert function(value) == text


def test_templates_expand_labels_and_values_and_reject_the_rest() -> None:
    template = "Agent {{ $labels.agent_did }} at {{ $value | humanizePercentage }}"
    assert expand(template, {"agent_did": "a"}, 0.5) == "Agent a at 50%"
    with pytest.raises(ValueError, match="does not carry"):
        expand("{{ $labels.agent_id }}", {"agent_did": "a"}, 1)
    with pytest.raises(ValueError, match="unsupported"):
        expand("{{ $value | printf }}", {}, 1)


def test_numbers_round_trip_exactly_for_promtool() -> None:
    assert num(60.0) == "60"
    assert float(num(0.1 + 0.2)) == 0.1 + 0.2


def test_cases_must_say_what_they_prove_and_check_something() -> None:
    check = ExprCheck("x", Duration("1m"), (Sample({}, 1.0),))
    with pytest.raises(ValueError, match="what it proves"):
        Case("works", (), (check,))
    with pytest.raises(ValueError, match="checks nothing"):
        Case("fires when x", (), ())


def test_a_rounded_check_drops_the_metric_name_like_promql_does() -> None:
    check = ExprCheck("a:b:c", Duration("1m"), (Sample({}, 0.9, "a:b:c"),), round_to=0.001)
    rendered = check.to_dict()
    assert rendered["expr"] == "round(a:b:c, 0.001)"
    assert rendered["exp_samples"] == [{"labels": "{}", "value": 0.9}]
