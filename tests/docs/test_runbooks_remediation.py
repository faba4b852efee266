"""Every runbook says what automatic remediation does about its alert, and how to turn it off."""

from __future__ import annotations

import pytest

from tests.docs.blocks import DOCS

TURN_OFF = "`remediation.dry_run: true`"
RUNBOOKS = sorted(p.stem for p in (DOCS / "runbooks").glob("*.md") if p.stem != "README")


@pytest.mark.parametrize("alertname", RUNBOOKS)
def test_the_runbook_says_how_automatic_remediation_is_turned_off(alertname: str) -> None:
    text = (DOCS / "runbooks" / f"{alertname}.md").read_text(encoding="utf-8")
    mitigation = text.split("## Mitigation", 1)[1]
    assert TURN_OFF in mitigation, (
        f"{alertname}'s Mitigation does not say how to turn remediation off"
    )
    assert "remediation.md" in mitigation or alertname.startswith("Remediation")
