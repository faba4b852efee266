"""Links between the pages resolve, the index reaches every page, and README stays short.

A relative link to a missing file or heading is a dead end for a reader; this
checks every relative link of the guide, the architecture page, the index and
README.md, including ``#anchors`` into Markdown pages (GitHub's heading slugs).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.blocks import DOCS, REPO, pages

README = REPO / "README.md"
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)\)")
_FENCED = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$", re.MULTILINE)


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", title.replace("`", "").lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCED.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group("title")) for m in _HEADING.finditer(text)}


def links(page: Path) -> list[str]:
    text = _FENCED.sub("", page.read_text(encoding="utf-8"))
    return [m.group("target") for m in _LINK.finditer(text)]


def test_slugs_follow_github() -> None:
    assert slug("What it costs: `make bench`") == "what-it-costs-make-bench"
    assert slug("Add an alert") == "add-an-alert"
    assert slug("Who may import whom") == "who-may-import-whom"


@pytest.mark.parametrize("page", [*pages(), README], ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: outside this repository
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        assert destination.exists(), f"{page.name}: link to missing {target}"
        if anchor:
            assert destination.suffix == ".md", f"{page.name}: anchor into a non-page {target}"
            assert anchor in anchors(destination), f"{page.name}: no heading for {target}"


def test_the_index_links_every_page() -> None:
    linked = {(DOCS / t.partition("#")[0]).resolve() for t in links(DOCS / "index.md")}
    expected = {
        *(p.resolve() for p in (DOCS / "guide").glob("*.md")),
        (DOCS / "architecture.md").resolve(),
        (DOCS / "stack.md").resolve(),
        (DOCS / "runbooks" / "README.md").resolve(),
    }
    assert expected <= linked, f"not in docs/index.md: {sorted(map(str, expected - linked))}"


def test_readme_opens_with_the_two_commands_and_links_the_guide() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.startswith("# meshwatch\n\n```sh\nmake up "), (
        "make up must stay README's first line"
    )
    assert text.split("```", 2)[1].splitlines()[2].startswith("make test "), (
        "make test must stay README's second command"
    )
    section = text.split("## Documentation", 1)
    assert len(section) == 2, "README needs its Documentation section"
    targets = {t.partition("#")[0] for t in links(README)}
    assert "docs/index.md" in targets
    assert {f"docs/guide/{p.name}" for p in (DOCS / "guide").glob("*.md")} <= targets
