"""`pip install` of a meshwatch checkout gives a working `meshwatch`, as the CI guide says.

meshwatch is not on PyPI; the guide installs it from a git URL or a checkout.
This test does the checkout case for real: it copies the project's packaged
files (what ``git clone`` would give) to ``./meshwatch`` in a temporary
directory, creates a fresh virtualenv and runs the guide's command there,
``.venv/bin/python -m pip install ./meshwatch``, a regular (not editable)
install. The installed command must then generate output on its own, which
fails if a module or data file the CLI needs is left out of the built package.

To keep it fast and offline apart from the build backend, the new virtualenv
sees this virtualenv's site-packages through a ``.pth`` file, so meshwatch's
runtime dependencies count as installed and pip downloads nothing but what
build isolation needs (the same ``setuptools`` ``make test`` fetched).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.docs.blocks import DOCS, REPO, blocks_of

INSTALL_COMMAND = "-m pip install ./meshwatch"
TIMEOUT = 240
# What a clone contains that the build reads: the package, its metadata and readme.
PACKAGED = ("pyproject.toml", "README.md", "meshwatch")


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def test_the_guide_documents_this_install() -> None:
    page = DOCS / "guide" / "alerts-in-ci.md"
    covered = [
        b
        for b in blocks_of(page)
        if "tests/docs/test_install.py" in b.attributes.get("covered-by", "")
    ]
    assert covered, f"{page.name} no longer points its install block at this test"
    assert all(INSTALL_COMMAND in b.code for b in covered)


def test_pip_install_of_a_checkout_gives_a_working_cli(tmp_path: Path) -> None:
    checkout = tmp_path / "meshwatch"
    checkout.mkdir()
    for name in PACKAGED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, checkout / name)

    _run([sys.executable, "-m", "venv", ".venv"], tmp_path)
    python = tmp_path / ".venv" / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
    ).strip()
    (Path(purelib) / "meshwatch-test-deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )

    _run([str(python), *INSTALL_COMMAND.split()], tmp_path)

    installed = _run([str(python), "-c", "import meshwatch; print(meshwatch.__file__)"], tmp_path)
    assert Path(installed.strip()).is_relative_to(Path(purelib)), (
        "meshwatch must be imported from the fresh virtualenv, not from the source tree"
    )
    meshwatch = tmp_path / ".venv" / "bin" / "meshwatch"
    assert "generate" in _run([str(meshwatch), "--help"], tmp_path)
    out = _run([str(meshwatch), "generate", "--out", "generated"], tmp_path)
    assert out.startswith("wrote ")
    assert (tmp_path / "generated" / "prometheus" / "rules" / "meshwatch-alerts.yml").is_file()
    assert (tmp_path / "generated" / "grafana" / "dashboards").is_dir()
