"""The architecture page's import table is the rule: no package imports what its row omits.

docs/architecture.md describes a one-way flow (settings and catalogue, then
rules, dashboards and stack, then runners). This test reads the page's "Who may
import whom" table and every ``import`` in ``meshwatch/``, so the page and the
code cannot disagree, and a module reaching back up the chain fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import meshwatch
from tests.docs.blocks import DOCS

PACKAGE = Path(meshwatch.__file__).resolve().parent
PAGE = DOCS / "architecture.md"
ROOT = "the package root"
NOTHING = "(nothing of meshwatch)"


def documented() -> dict[str, set[str]]:
    """The table under the "Who may import whom" heading: package -> what it may import."""
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("### Who may import whom", 1)[1].split("\n#", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        names = set(re.findall(r"`([a-z_]+)`", cells[1]))
        if ROOT in cells[1]:
            names.add("__init__")
        assert names or cells[1] == NOTHING, f"cannot read the row {line!r}"
        allowed[cells[0].strip("`")] = names
    return allowed


def _unit(path: Path, package: Path = PACKAGE) -> str:
    """The top-level package or module of meshwatch that ``path`` belongs to."""
    return path.relative_to(package).with_suffix("").parts[0]


def actual(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Which top-level parts of meshwatch each part imports (lazy imports included)."""
    edges: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        source = _unit(path, package)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] != "meshwatch":
                    continue
                target = parts[1] if len(parts) > 1 else "__init__"
                if target != source:
                    edges.setdefault(source, set()).add(target)
    return edges


def test_the_table_lists_every_part_of_the_package() -> None:
    parts = {_unit(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert set(documented()) == parts


def test_no_package_imports_what_the_architecture_page_does_not_allow() -> None:
    allowed = documented()
    violations = {
        source: sorted(targets - allowed.get(source, set()))
        for source, targets in actual().items()
        if targets - allowed.get(source, set())
    }
    assert not violations, f"imports that break the documented flow: {violations}"


def test_the_scan_sees_imports_inside_functions_and_ignores_relative_ones(tmp_path: Path) -> None:
    """Lazy imports (inside a function) count: they break the flow just as much."""
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "rules.py").write_text(
        "def build():\n    from meshwatch.dashboards import render\n    return render\n"
        "from . import sibling\nimport meshwatch.settings.loader\n",
        encoding="utf-8",
    )
    assert actual(tmp_path) == {"alerts": {"dashboards", "settings"}}
