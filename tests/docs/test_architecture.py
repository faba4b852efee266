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


def _import_table(heading: str, nothing: str) -> dict[str, set[str]]:
    """The table under ``heading``: each row's first cell -> the names in backticks of its second.

    ``the package root`` counts as ``__init__``; a row naming nothing must say ``nothing``.
    """
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(f"### {heading}", 1)[1].split("\n#", 1)[0]
    allowed: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        names = set(re.findall(r"`([a-z_]+)`", cells[1]))
        if ROOT in cells[1]:
            names.add("__init__")
        assert names or cells[1] == nothing, f"cannot read the row {line!r}"
        allowed[cells[0].strip("`")] = names
    return allowed


def documented() -> dict[str, set[str]]:
    """The table under the "Who may import whom" heading: package -> what it may import."""
    return _import_table("Who may import whom", NOTHING)


def _unit(path: Path, package: Path = PACKAGE) -> str:
    """The top-level package or module of meshwatch that ``path`` belongs to."""
    return path.relative_to(package).with_suffix("").parts[0]


MODULE_PATH = re.compile(r"meshwatch(\.[a-z_]+)*")


def _imports_by_name(tree: ast.AST) -> bool:
    """Whether the module calls ``import_module`` (``importlib.import_module`` or imported bare)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "import_module":
                return True
    return False


def _imported(tree: ast.AST) -> list[str]:
    """The meshwatch modules a module imports: statements, and names it imports by string.

    In a module that calls ``import_module``, every string that is a dotted
    meshwatch module path counts (``COMMAND_MODULES = ("meshwatch.commands.up", ...)``).
    """
    modules = []
    by_name = _imports_by_name(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == "meshwatch":  # from meshwatch import alerts, __version__
                modules.extend(f"meshwatch.{alias.name}" for alias in node.names)
            else:
                modules.append(node.module or "")
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif by_name and isinstance(node, ast.Constant) and isinstance(node.value, str):
            modules.extend(m.group() for m in [MODULE_PATH.fullmatch(node.value)] if m)
    return modules


def actual(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Which top-level parts of meshwatch each part imports (lazy and by-name imports included)."""
    edges: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        source = _unit(path, package)
        for module in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            parts = module.split(".")
            if parts[0] != "meshwatch":
                continue
            # ``from meshwatch import __version__`` reads the package root.
            target = parts[1] if len(parts) > 1 and not parts[1].startswith("__") else "__init__"
            if target != source:
                edges.setdefault(source, set()).add(target)
    return edges


def test_the_table_lists_every_part_of_the_package() -> None:
    parts = {_unit(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert set(documented()) == parts


def test_every_permission_in_the_table_is_used() -> None:
    """The table says what is true: a row lists exactly what its package imports."""
    edges = actual()
    stale = {
        source: sorted(allowed - edges.get(source, set()))
        for source, allowed in documented().items()
        if allowed - edges.get(source, set())
    }
    assert not stale, f"the table allows imports no module makes: {stale}"


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


def test_the_scan_sees_modules_imported_by_name(tmp_path: Path) -> None:
    """``import_module("meshwatch.x")`` is an import; a module path in a file that never
    imports by name (a docstring, a log message) is not."""
    (tmp_path / "cli.py").write_text(
        "import importlib\nMODULES = ('meshwatch.commands.up',)\n"
        "def load():\n    return [importlib.import_module(m) for m in MODULES]\n",
        encoding="utf-8",
    )
    (tmp_path / "demo.py").write_text("HELP = 'see meshwatch.stack'\n", encoding="utf-8")
    assert actual(tmp_path) == {"cli": {"commands"}}


ADAPTER = PACKAGE / "instrumentation" / "prometheus"
ADAPTER_MODULE = "meshwatch.instrumentation.prometheus"


def documented_adapter() -> dict[str, set[str]]:
    """The table under "Inside the Prometheus adapter": module -> modules it may import."""
    return _import_table("Inside the Prometheus adapter", "(nothing of the package)")


def actual_adapter(adapter: Path = ADAPTER) -> dict[str, set[str]]:
    """Which modules of the adapter each of its modules imports (``__init__`` for the package)."""
    edges: dict[str, set[str]] = {}
    for path in adapter.glob("*.py"):
        if path.stem == "__init__":
            continue
        targets = edges.setdefault(path.stem, set())
        for module in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            if module == ADAPTER_MODULE:
                targets.add("__init__")
            elif module.startswith(ADAPTER_MODULE + "."):
                targets.add(module.removeprefix(ADAPTER_MODULE + ".").split(".")[0])
    return edges


def test_the_prometheus_adapter_imports_only_what_its_table_allows() -> None:
    """Its modules import one way, and never the re-exporting ``__init__`` (a cycle)."""
    assert documented_adapter() == actual_adapter()


def test_the_adapter_scan_sees_an_import_of_the_package_itself(tmp_path: Path) -> None:
    (tmp_path / "__init__.py").write_text(
        "from meshwatch.instrumentation.prometheus.push import P\n"
    )
    (tmp_path / "push.py").write_text("import json\n")
    (tmp_path / "server.py").write_text(
        "def f():\n    from meshwatch.instrumentation.prometheus import serve_metrics\n"
        "from meshwatch.instrumentation.prometheus.scrape import S\n"
    )
    assert actual_adapter(tmp_path) == {"push": set(), "server": {"__init__", "scrape"}}
