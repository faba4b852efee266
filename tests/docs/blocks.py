"""The code blocks of the documentation, and the markers that say how each one is proven.

A fenced block may be preceded (on the nearest non-blank line) by a marker, an
HTML comment GitHub does not render::

    <!-- doc-test: no-run reason="needs a Docker engine" covered-by="tests/x.py::test_y" -->

Kinds:

``run``
    The default for ``sh`` and ``python`` blocks, so a new block cannot escape
    the tests by forgetting its marker. ``sh`` runs under ``bash -euo pipefail``
    in the page's working directory with the virtualenv's ``bin`` first on
    ``PATH``; ``python`` runs in a fresh interpreter (a fresh namespace, and no
    process-wide setting such as the tracer provider leaks into the tests).
``output``
    A ``text`` block that must equal what the previous ``run`` block printed.
``file``
    Written to ``path`` in the page's working directory before the blocks
    after it run (the ``meshwatch.yaml`` a later command reads).
    ``settings="yes"`` also loads it as meshwatch settings;
    ``workflow="yes"`` marks a GitHub Actions workflow whose ``run:`` steps
    the tests execute.
``no-run``
    Not run here; ``reason`` says why. Its commands are still checked: every
    ``meshwatch`` command line is parsed by the real argument parser, every
    ``make`` target must exist, Python must compile and its ``meshwatch``
    imports must resolve. ``covered-by`` names the test (``path::name``) or
    file that runs the same thing; the reference must exist.

Any ``yaml`` or ``json`` block, marked or not, must parse. A region between
``<!-- doc-test: generated name="..." -->`` and ``<!-- doc-test: end -->`` is
text a test regenerates and compares.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

KINDS = frozenset({"run", "output", "file", "no-run"})
RUNNABLE_LANGUAGES = frozenset({"sh", "python"})
_ATTRIBUTES = {
    "run": frozenset(),
    "output": frozenset(),
    "file": frozenset({"path", "settings", "workflow"}),
    "no-run": frozenset({"reason", "covered-by"}),
}

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
_ATTR = re.compile(r'(?P<key>[a-z-]+)="(?P<value>[^"]*)"')


class DocFormatError(ValueError):
    """A marker or block the tests cannot interpret (a test failure, with file and line)."""


@dataclass(frozen=True)
class Block:
    """One fenced code block and the marker before it."""

    page: Path
    line: int  # 1-based line of the first line of code
    language: str
    code: str
    kind: str
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.kind == "run"


def _marker(line: str, page: Path, number: int) -> tuple[str, dict[str, str]] | None:
    match = _MARKER.match(line)
    if match is None:
        return None
    body = match.group("body")
    kind, _, rest = body.partition(" ")
    attributes = {m.group("key"): m.group("value") for m in _ATTR.finditer(rest)}
    leftover = _ATTR.sub("", rest).strip()
    if kind in ("generated", "end"):
        return kind, attributes
    if kind not in KINDS or leftover:
        raise DocFormatError(f"{page}:{number}: cannot read marker {body!r}")
    unknown = set(attributes) - _ATTRIBUTES[kind]
    if unknown:
        raise DocFormatError(f"{page}:{number}: {kind} takes no {sorted(unknown)}")
    return kind, attributes


def blocks_of(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with its marker (or its language's default)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[str, dict[str, str], int] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _marker(line, page, i + 1)
        if marker is not None and marker[0] in KINDS:
            pending = (marker[0], marker[1], i + 1)
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and pending is not None:
                raise DocFormatError(f"{page}:{pending[2]}: marker not followed by a code block")
            i += 1
            continue
        indent, delimiter = fence.group("indent"), fence.group("fence")
        language = (fence.group("info").split() or [""])[0]
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(delimiter):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise DocFormatError(f"{page}: code block opened on line {len(lines)} never closed")
        start = i - len(body) + 1
        i += 1
        if pending is not None:
            kind, attributes, _ = pending
        else:
            kind, attributes = ("run" if language in RUNNABLE_LANGUAGES else "plain"), {}
        if kind in ("run", "no-run") and language not in RUNNABLE_LANGUAGES:
            raise DocFormatError(f"{page}:{start}: only sh and python blocks run, not {language!r}")
        if kind == "no-run" and not attributes.get("reason"):
            raise DocFormatError(f"{page}:{start}: a no-run block must say why (reason=...)")
        if kind == "file" and not attributes.get("path"):
            raise DocFormatError(f"{page}:{start}: a file block needs path=...")
        blocks.append(Block(page, start, language, "\n".join(body) + "\n", kind, attributes))
        pending = None
    return blocks


@dataclass(frozen=True)
class Generated:
    """A region of a page that a test regenerates: its name and current text."""

    page: Path
    name: str
    text: str
    start: int  # offset of the text in the page
    end: int


_REGION = re.compile(
    r'<!-- doc-test: generated name="(?P<name>[^"]+)" -->\n(?P<text>.*?)<!-- doc-test: end -->',
    re.DOTALL,
)


def generated_regions(page: Path) -> list[Generated]:
    source = page.read_text(encoding="utf-8")
    return [
        Generated(page, m.group("name"), m.group("text"), m.start("text"), m.end("text"))
        for m in _REGION.finditer(source)
    ]


def replace_region(region: Generated, text: str) -> None:
    """Rewrite a generated region of its page (MESHWATCH_UPDATE_GOLDEN=1)."""
    source = region.page.read_text(encoding="utf-8")
    region.page.write_text(source[: region.start] + text + source[region.end :], encoding="utf-8")


# --- commands in shell blocks ---------------------------------------------------------

_SEPARATORS = frozenset({"&&", "||", ";", "|"})


def commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script: argv lists, split at ``&&``, ``||``, ``;``, ``|``.

    Backslash continuations are joined and comments dropped. Good enough for
    the one-command-a-line scripts of a guide, which is all it is used for.
    """
    text = script.replace("\\\n", " ")
    result: list[list[str]] = []
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in lexer:
            if token in _SEPARATORS:
                if current:
                    result.append(current)
                current = []
            else:
                current.append(token)
        if current:
            result.append(current)
    return result


def program(argv: list[str]) -> tuple[str, list[str]]:
    """The program a command runs and its arguments, past ``VAR=value`` prefixes and paths."""
    i = 0
    while i < len(argv) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[i]):
        i += 1
    if i == len(argv):
        return "", []
    return Path(argv[i]).name, argv[i + 1 :]


def make_targets(makefile: Path = REPO / "Makefile") -> frozenset[str]:
    """The targets the Makefile defines (rule lines ``name: ...``)."""
    names = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", line)
        if match:
            names.add(match.group(1))
    return frozenset(names)


def pages() -> list[Path]:
    """Every documentation page the doc tests own: the guide, the architecture page, the index."""
    fixed = [DOCS / "index.md", DOCS / "architecture.md"]
    return sorted([*(p for p in fixed if p.is_file()), *(DOCS / "guide").glob("*.md")])
