"""Every command in the guide runs, or is checked another way, so the guide cannot rot.

How each block is proven is said by its marker (see :mod:`tests.docs.blocks`):
runnable ``sh`` and ``python`` blocks run in order in one working directory per
page, as a reader following the page would; ``output`` blocks must equal what
the block before them printed; ``no-run`` blocks are parsed (``meshwatch``
command lines by the real argument parser, ``make`` targets against the
Makefile, Python compiled with its imports resolved) and point at the test
that runs the same thing.

What runs elsewhere, by design:

* ``make up`` / ``meshwatch up``, ``status`` and ``down`` start servers for
  minutes: ``tests/integration/test_native_runner.py::test_cli_up_status_down``
  drives the same commands through the same runner in native mode, and
  ``tests/integration/containers/test_compose_stack.py`` runs the compose stack
  where a Docker engine answers (the GitHub Actions workflow).
* ``pip install`` of a checkout: :mod:`tests.docs.test_install`.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meshwatch.cli import build_parser
from meshwatch.commands.check import PACKAGES
from meshwatch.settings import load_settings
from tests.docs.blocks import (
    DOCS,
    REPO,
    Block,
    blocks_of,
    commands,
    make_targets,
    pages,
    program,
)

PAGES = pages()
BLOCK_TIMEOUT = 120
VENV_BIN = Path(sys.executable).parent


def _page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def _environment() -> dict[str, str]:
    """The reader's shell: the virtualenv first on PATH, no OTEL_* variables of ours leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


# Runs a block's source with line numbers that match the page, in a fresh interpreter.
_PYTHON_BOOTSTRAP = (
    "import sys\n"
    "path, first_line = sys.argv[1], int(sys.argv[2])\n"
    "code = compile('\\n' * (first_line - 1) + sys.stdin.read(), path, 'exec')\n"
    "exec(code, {'__name__': '__main__'})\n"
)


def _run(block: Block, cwd: Path) -> str:
    """Run one block; return its stdout, or fail with everything a reader needs."""
    if block.language == "python":
        argv = [sys.executable, "-c", _PYTHON_BOOTSTRAP, str(block.page), str(block.line)]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", block.code]
    done = subprocess.run(
        argv,
        input=block.code if block.language == "python" else None,
        cwd=cwd,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{block.where}: the {block.language} block exited {done.returncode}\n"
            f"--- block ---\n{block.code}--- stdout ---\n{done.stdout}--- stderr ---\n{done.stderr}"
        )
    return done.stdout


def _normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _write(block: Block, root: Path) -> Path:
    path = root / block.attributes["path"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.code, encoding="utf-8")
    return path


def _needs_tools(request: pytest.FixtureRequest, texts: list[str]) -> None:
    """The real promtool/amtool for pages whose commands call them (skip-or-fail as conftest says)."""
    joined = "\n".join(texts)
    if "promtool" in joined or "meshwatch check" in joined:
        request.getfixturevalue("promtool")
    if "amtool" in joined or "meshwatch check" in joined:
        request.getfixturevalue("amtool")


def _workflow_steps(block: Block) -> list[dict[str, object]]:
    document = yaml.safe_load(block.code)
    triggers = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers, f"{block.where}: a workflow needs triggers (on:)"
    steps: list[dict[str, object]] = []
    for name, job in document["jobs"].items():
        assert job.get("runs-on"), f"{block.where}: job {name} has no runs-on"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{block.where}: {step} needs uses or run"
            steps.append(step)
    return steps


def _installs_on_the_runner(script: str) -> bool:
    """A step that installs software on the CI runner (root, network): checked, not run here."""
    return any(program(argv)[0] in ("sudo", "apt-get") for argv in commands(script)) or any(
        program(argv)[0] in ("pip", "pip3") or argv[1:3] == ["-m", "pip"]
        for argv in commands(script)
    )


# --- running -------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_runnable_blocks_run_and_print_what_the_page_says(
    page: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    blocks = blocks_of(page)
    _needs_tools(request, [b.code for b in blocks if b.runs])
    printed: str | None = None
    for block in blocks:
        if block.kind == "file":
            path = _write(block, tmp_path)
            if block.attributes.get("settings") == "yes":
                load_settings(path)  # raises SettingsError naming the key
        elif block.runs:
            printed = _run(block, tmp_path)
        elif block.kind == "output":
            assert printed is not None, (
                f"{block.where}: an output block needs a run block before it"
            )
            assert _normalised(printed) == _normalised(block.code), (
                f"{block.where}: the page shows output the command no longer prints"
            )
            printed = None


@pytest.mark.parametrize(
    "block",
    [b for p in PAGES for b in blocks_of(p) if b.attributes.get("workflow") == "yes"],
    ids=lambda b: b.where,
)
def test_the_ci_workflow_runs_its_steps_here(
    block: Block, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The copy-paste GitHub Actions job, run step by step in a repository laid out as the page says.

    Steps that install on the runner (``sudo apt-get``, ``pip install``) cannot run
    here; the packages must be the ones ``meshwatch check`` names, and the pip
    install of meshwatch is proven by tests/docs/test_install.py.
    """
    steps = _workflow_steps(block)
    scripts = [str(s["run"]) for s in steps if "run" in s]
    _needs_tools(request, scripts)
    for other in blocks_of(block.page):
        if other.kind == "file" and other is not block:
            _write(other, tmp_path)
    ran = 0
    for step in steps:
        script = step.get("run")
        if script is None:
            continue
        script = str(script)
        if _installs_on_the_runner(script):
            for argv in commands(script):
                name, args = program(argv)
                if name == "sudo":
                    name, args = program(args)
                if name == "apt-get" and args[:1] == ["install"]:
                    packages = {a for a in args[1:] if not a.startswith("-")}
                    assert packages == set(PACKAGES.values()), (
                        f"{block.where}: install exactly the packages meshwatch check needs"
                    )
            continue
        _run(Block(block.page, block.line, "sh", script, "run"), tmp_path)
        ran += 1
    assert ran >= 2, f"{block.where}: expected the generate and check steps to run here"


# --- checking what does not run ------------------------------------------------------------


def _check_meshwatch_command(block: Block, args: list[str]) -> None:
    try:
        build_parser().parse_args(args)
    except SystemExit as exit_:
        pytest.fail(f"{block.where}: `meshwatch {' '.join(args)}` does not parse (exit {exit_})")


def _check_python_imports(block: Block) -> None:
    tree = ast.parse(block.code, filename=block.where)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("meshwatch"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), (
                    f"{block.where}: {node.module} has no {alias.name}"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("meshwatch"):
                    importlib.import_module(alias.name)


def _covered_by_exists(block: Block) -> None:
    for reference in block.attributes.get("covered-by", "").split():
        path, _, test = reference.partition("::")
        target = REPO / path
        assert target.is_file(), f"{block.where}: covered-by names a missing file {path}"
        if test:
            assert re.search(rf"^\s*def {re.escape(test)}\(", target.read_text(), re.MULTILINE), (
                f"{block.where}: {path} has no test {test}"
            )


NO_RUN = [b for p in PAGES for b in blocks_of(p) if b.kind == "no-run"]


@pytest.mark.parametrize("block", NO_RUN, ids=lambda b: b.where)
def test_blocks_that_do_not_run_here_are_still_checked(block: Block) -> None:
    _covered_by_exists(block)
    if block.language == "python":
        compile(block.code, block.where, "exec")
        _check_python_imports(block)
        return
    targets = make_targets()
    for argv in commands(block.code):
        name, args = program(argv)
        if name == "meshwatch":
            _check_meshwatch_command(block, args)
        elif name == "make":
            for target in (a for a in args if not a.startswith("-") and "=" not in a):
                assert target in targets, f"{block.where}: the Makefile has no target {target}"


def test_every_page_has_blocks_that_run() -> None:
    """A guide page whose blocks were all turned into no-run would prove nothing."""
    for page in (DOCS / "guide").glob("*.md"):
        assert any(b.runs for b in blocks_of(page)), f"{page.name} has no block that runs"


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_yaml_and_json_block_parses(page: Path) -> None:
    for block in blocks_of(page):
        if block.language in ("yaml", "yml"):
            yaml.safe_load(block.code)
        elif block.language == "json":
            json.loads(block.code)
        if block.attributes.get("workflow") == "yes":
            assert _workflow_steps(block)
