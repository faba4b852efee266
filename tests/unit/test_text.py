"""safe_str: the one str() with a fallback that labels, attributes and log fields go through."""

from __future__ import annotations

from meshwatch.instrumentation.text import safe_str


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_text_is_str_and_a_raising_str_is_named_not_raised() -> None:
    assert safe_str("s") == "s"
    assert safe_str(7) == "7"
    assert safe_str(Unprintable()) == "<unprintable Unprintable>"
