"""Atomic generation: all files or none, never half a tree."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from meshwatch.generated import GeneratedFile, write_tree


def test_writes_files_with_their_modes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree([GeneratedFile("a/b.yml", "x: 1\n"), GeneratedFile(".env", "S=1\n", 0o600)], out)
    assert (out / "a/b.yml").read_text() == "x: 1\n"
    assert stat.S_IMODE((out / ".env").stat().st_mode) == 0o600


def test_replaces_previous_contents(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree([GeneratedFile("old.txt", "old")], out)
    write_tree([GeneratedFile("new.txt", "new")], out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary directories left"


def test_a_failure_leaves_the_old_tree_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree([GeneratedFile("keep.txt", "keep")], out)

    class Boom(GeneratedFile):
        @property  # type: ignore[misc]
        def content(self) -> str:
            raise RuntimeError("generator failed mid-way")

    files = [GeneratedFile("a.txt", "a"), Boom.__new__(Boom)]
    object.__setattr__(files[1], "path", "b.txt")
    object.__setattr__(files[1], "mode", 0o644)
    with pytest.raises(RuntimeError, match="mid-way"):
        write_tree(files, out)
    assert (out / "keep.txt").read_text() == "keep"
    assert not (out / "a.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_swap_puts_the_old_tree_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_tree([GeneratedFile("keep.txt", "keep")], out)
    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(src).name.startswith(".out.tmp-"):  # the new tree taking the old one's place
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        write_tree([GeneratedFile("new.txt", "new")], out)
    monkeypatch.undo()
    assert (out / "keep.txt").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["out"], "no temporary directories left"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../escape", ""])
def test_paths_must_stay_inside_the_output(bad: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        GeneratedFile(bad, "")


def test_two_generators_claiming_one_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="two generators"):
        write_tree([GeneratedFile("x", "1"), GeneratedFile("x", "2")], tmp_path / "out")


# --- an --out that cannot be used is one line, exit 2, and nothing is left behind ----------


def _generate(out: Path | str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from meshwatch.cli import main

    code = main(["generate", "--out", str(out)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("where", ["a file", "under a file", "in /proc"])
def test_an_unusable_out_is_a_one_line_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    out = {
        "a file": a_file,
        "under a file": a_file / "out",
        "in /proc": Path("/proc/meshwatch-out"),
    }[where]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _generate(out, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"meshwatch generate: --out {out if where == 'a file' else ''}")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert a_file.read_text() == "not a directory"


def test_missing_parents_created_for_a_failed_write_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_tree([GeneratedFile("a.txt", "x")], tmp_path / "new" / "deeper" / "out")
    assert not (tmp_path / "new").exists()
