"""Generated files and their atomic installation into an output directory.

Every generator (alerts, dashboards, stack) returns :class:`GeneratedFile`
values instead of writing to disk; :func:`write_tree` writes them all to a
temporary directory beside the target and swaps it into place only when every
file was written, so a failure never leaves half a deployment behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    """One output file: a relative POSIX path, its text (or bytes, for images), and its mode."""

    path: str
    content: str | bytes
    mode: int = 0o644

    def __post_init__(self) -> None:
        p = PurePosixPath(self.path)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise ValueError(
                f"generated file path must be relative and inside the output: {self.path!r}"
            )


def check_unique(files: Iterable[GeneratedFile]) -> list[GeneratedFile]:
    """The files as a list, sorted by path; two generators claiming one path is a bug."""
    by_path: dict[str, GeneratedFile] = {}
    for f in files:
        if f.path in by_path:
            raise ValueError(f"two generators produced {f.path}")
        by_path[f.path] = f
    return [by_path[p] for p in sorted(by_path)]


def _make_parents(out_dir: Path) -> Path | None:
    """Create ``out_dir``'s missing parents; the topmost one created (to undo), or None."""
    missing = [p for p in out_dir.parents if not p.exists()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return missing[-1] if missing else None


def _remove(created: Path | None) -> None:
    """Undo :func:`_make_parents` after a failure: a failed write leaves nothing behind."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


def write_tree(files: Iterable[GeneratedFile], out_dir: Path) -> list[Path]:
    """Replace ``out_dir``'s contents with ``files``, atomically from a reader's view.

    The files are written into a fresh temporary directory next to ``out_dir``
    (same filesystem, so the final rename is atomic); the old directory is
    renamed aside, the new one renamed into place, and the old one removed.
    On any error the temporary directory is removed and ``out_dir`` is untouched.
    """
    files = check_unique(files)
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory", str(out_dir))
    created = _make_parents(out_dir)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except BaseException:
        _remove(created)
        raise
    old: Path | None = None
    try:
        written = []
        for f in files:
            target = tmp / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, f.mode)
            if isinstance(f.content, bytes):
                with os.fdopen(fd, "wb") as binary:
                    binary.write(f.content)
            else:
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(f.content)
            os.chmod(target, f.mode)
            written.append(out_dir / f.path)
        os.chmod(tmp, 0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, old / "tree")
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove(created)
        if old is not None:
            # The old tree was moved aside but the new one never took its place.
            if (old / "tree").exists() and not out_dir.exists():
                os.rename(old / "tree", out_dir)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return written
