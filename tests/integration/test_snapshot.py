"""Dashboard pictures of the live native stack: every Prometheus panel draws data.

``meshwatch snapshot``'s own code path (``take_snapshots``) runs against the
session stack's Prometheus, as a user runs it after ``make up``. The pictures
are kept: under ``$MESHWATCH_SNAPSHOT_DIR`` when it is set (the GitHub
workflow uploads that directory as an artifact), else in pytest's temporary
directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from meshwatch.dashboards import dashboard_models
from meshwatch.dashboards.query_sources import metric_names
from meshwatch.snapshot import SnapshotReport, take_snapshots
from meshwatch.snapshot.collect import PanelData
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.report import NOT_CHECKABLE_PANELS
from tests.integration.helpers.stack import LiveStack
from tests.integration.test_chain import history_bound, recording_rule_queries

pytestmark = pytest.mark.integration

# Two hours at a 60 s step make $__rate_interval 61 s on this 1 s-scrape stack: the
# window test_chain's panel queries use, wide enough for rare events (conflicts) to
# land in some window of a stack only minutes old.
SINCE_SECONDS = 7200.0
# Each attempt queries every panel and draws four PNGs (several seconds, more on a loaded
# machine). Rare events need time: a histogram's rate has data once a second observation
# follows the demo's forced first one (conflicts: about one a minute and a half).
DATA_TIMEOUT = 150.0


def _out(tmp_path: Path) -> Path:
    configured = os.environ.get("MESHWATCH_SNAPSHOT_DIR")
    return Path(configured) if configured else tmp_path / "snapshots"


def _reads(panel: PanelData) -> set[str]:
    return {m for t in panel.panel.get("targets", []) for m in metric_names(t.get("expr", ""))}


@pytest.mark.timeout(DATA_TIMEOUT + 240)  # the wait, plus the session stack's start if first
def test_snapshot_of_the_live_stack_draws_every_prometheus_panel(
    live_stack: LiveStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    out = _out(tmp_path)
    too_young = set(history_bound(recording_rule_queries(live_stack.prometheus)))

    def expected(panel: PanelData) -> bool:
        """A Prometheus panel this stack can feed: no Tempo series, no history it lacks yet."""
        return panel.kind == "prometheus" and not panel.external and not _reads(panel) & too_young

    def blank(report: SnapshotReport) -> list[str]:
        return [
            f"{uid} / {p.title}: {'; '.join(p.errors) or 'no data'}"
            for uid, p in report.panels()
            if expected(p) and not p.has_data
        ]

    last: list[SnapshotReport] = []

    def attempt() -> SnapshotReport | None:
        report = take_snapshots(
            live_stack.settings, live_stack.prometheus.base_url, out, SINCE_SECONDS
        )
        last[:] = [report]
        return None if blank(report) else report

    try:
        report = wait_until(attempt, timeout=DATA_TIMEOUT, interval=1.0, what="every panel drawn")
    except AssertionError:
        missing = blank(last[0]) if last else ["no snapshot was taken"]
        pytest.fail("Prometheus panels drawn without data:\n  " + "\n  ".join(missing))

    models = dashboard_models(live_stack.settings)
    uids = [m["uid"] for m in models]
    assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{uid}.png" for uid in uids)
    for model in models:
        # The picture is as tall as the dashboard's grid (about 30 px a grid unit), not a stub.
        grid_units = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in model["panels"])
        with Image.open(out / f"{model['uid']}.png") as image:
            assert image.width == 1200 and image.height >= 25 * grid_units, model["uid"]
    assert (out / "index.html").read_text(encoding="utf-8").count("<img ") == len(uids)
    drawn = [p for _, p in report.panels() if expected(p)]
    assert len(drawn) >= 35, "most panels are fed by this stack"
    request.config.stash.setdefault(NOT_CHECKABLE_PANELS, []).extend(
        sorted(
            f"{uid} / {p.title} (snapshot: {p.not_drawable or 'reads ' + ', '.join(p.external)})"
            for uid, p in report.panels()
            if p.kind == "not-drawable" or p.external
        )
    )
