"""The Prometheus adapter's old public name keeps working, and says it is old.

``MeshwatchCollector`` was shown by the instrumentation guide before the class
was renamed ``ScrapeExporter`` (docs/architecture.md, "What a class name says").
"""

from __future__ import annotations

import pytest

import meshwatch.instrumentation.prometheus as prometheus


def test_the_old_collector_name_is_the_scrape_exporter_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="use ScrapeExporter"):
        old = prometheus.MeshwatchCollector
    assert old is prometheus.ScrapeExporter


def test_the_old_name_imports_with_from_import() -> None:
    with pytest.warns(DeprecationWarning):
        from meshwatch.instrumentation.prometheus import MeshwatchCollector
    assert MeshwatchCollector is prometheus.ScrapeExporter


def test_other_missing_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        prometheus.NoSuchThing  # noqa: B018
