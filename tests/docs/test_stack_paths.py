"""The paths the local-dashboards guide names are where ``meshwatch up`` really writes.

The guide tells users where the Grafana password, the dashboards, the logs and
the data are; those strings are computed here from the runner's own layout
(:class:`meshwatch.stack.runner.Workdir`, the secrets file, the dashboards
directory), so moving any of them fails this test until the page says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.dashboards import OUTPUT_DIR
from meshwatch.settings import Settings
from meshwatch.stack import secrets
from meshwatch.stack.ports import ALERT_SINK
from meshwatch.stack.runner import Workdir
from tests.docs.blocks import DOCS

PAGE = DOCS / "guide" / "local-dashboards.md"


def _documented_paths() -> list[str]:
    settings = Settings()
    workdir = Workdir(settings.stack.workdir)
    base = Path.cwd()

    def shown(path: Path) -> str:
        return path.relative_to(base).as_posix()

    return [
        f"{shown(workdir.root)}/",
        shown(workdir.stack / secrets.PATH),
        f"{shown(workdir.stack / OUTPUT_DIR)}/*.json",
        shown(workdir.notifications_file),
        shown(workdir.log_file(ALERT_SINK)),
        *(f"`{p.name}/`" for p in (workdir.stack, workdir.native, workdir.data, workdir.logs)),
        f"`{workdir.run.name}/`",
    ]


@pytest.mark.parametrize("path", _documented_paths())
def test_the_local_guide_names_the_runners_paths(path: str) -> None:
    assert path in PAGE.read_text(encoding="utf-8"), f"{PAGE.name} should name {path}"


def test_the_grafana_login_is_where_the_guide_says() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert secrets.PASSWORD_VAR in text
    assert f"`{secrets.ADMIN_USER}`" in text
