"""The dashboard pictures in the docs exist, are the snapshot's PNGs, and stay small.

They are drawn from the demo by ``meshwatch snapshot`` (see
docs/guide/importing-dashboards.md) and committed, so their size is kept in check.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image

from meshwatch.dashboards import dashboard_models
from meshwatch.settings import Settings
from tests.docs.blocks import DOCS, pages

PICTURES = DOCS / "images" / "dashboards"
_IMAGE = re.compile(r"!\[[^\]]*\]\((?P<target>[^)\s]+)\)")
MAX_BYTES = 150_000


def _referenced() -> set[str]:
    found = set()
    for page in pages():
        for match in _IMAGE.finditer(page.read_text(encoding="utf-8")):
            target = (page.parent / match.group("target")).resolve()
            assert target.is_file(), f"{page.name}: no picture {match.group('target')}"
            found.add(target.name)
    return found


def test_every_picture_is_shown_and_every_shown_picture_exists() -> None:
    assert {p.name for p in PICTURES.glob("*.png")} <= _referenced()


@pytest.mark.parametrize("picture", sorted(PICTURES.glob("*.png")), ids=lambda p: p.name)
def test_pictures_are_small_snapshot_pngs_of_a_known_dashboard(picture) -> None:
    uids = {m["uid"] for m in dashboard_models(Settings())}
    assert picture.stem in uids, f"{picture.name} shows no current dashboard"
    assert picture.stat().st_size <= MAX_BYTES, f"{picture.name}: keep committed pictures small"
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.mode == "P" and image.width == 1200
