"""Generated parts of the guide match what they describe, so the tables cannot drift.

``MESHWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/docs/test_tables.py`` rewrites
the generated regions of the pages (review the diff), as it does the dashboard
golden files.
"""

from __future__ import annotations

import os

import pytest
import yaml

from meshwatch.settings import Settings
from meshwatch.stack.grafana_provisioning import dashboard_provider
from tests.docs import tables
from tests.docs.blocks import DOCS, Generated, blocks_of, generated_regions, pages, replace_region

UPDATE = os.environ.get("MESHWATCH_UPDATE_GOLDEN") == "1"
# The runbook index is no guide page (its blocks are not run), but its table is generated.
RUNBOOK_INDEX = DOCS / "runbooks" / "README.md"
REGIONS = [region for page in [*pages(), RUNBOOK_INDEX] for region in generated_regions(page)]


def test_every_generated_table_is_on_a_page() -> None:
    assert sorted(r.name for r in REGIONS) == sorted(tables.GENERATORS)


@pytest.mark.parametrize("region", REGIONS, ids=lambda r: f"{r.page.name}:{r.name}")
def test_generated_region_is_current(region: Generated) -> None:
    expected = tables.render(region.name)
    if UPDATE and region.text != expected:
        replace_region(region, expected)
        return
    assert region.text == expected, (
        f"{region.page.name}: the {region.name!r} table is stale; "
        "regenerate with MESHWATCH_UPDATE_GOLDEN=1 and review the diff"
    )


def test_every_dashboard_metric_has_a_producer() -> None:
    """A new instrumentation module must say which API produces its metrics."""
    tables.producers()


def test_the_documented_dashboard_provider_is_the_generated_one_with_another_path() -> None:
    page = DOCS / "guide" / "importing-dashboards.md"
    (block,) = [
        b
        for b in blocks_of(page)
        if b.attributes.get("path") == "grafana/provisioning/dashboards/meshwatch.yml"
    ]
    documented = yaml.safe_load(block.code)
    generated = dashboard_provider(Settings())
    documented_path = documented["providers"][0]["options"].pop("path")
    generated["providers"][0]["options"].pop("path")
    assert documented_path.startswith("/")
    assert documented == generated
