"""``--help`` of every command reads as plain text: the docstrings' markup is not shown."""

from __future__ import annotations

import re

import pytest

from meshwatch.cli import build_parser, main, plain_text

COMMANDS = [
    [],
    ["generate"],
    ["check"],
    ["audit"],
    ["audit", "query"],
    ["up"],
    ["down"],
    ["status"],
    ["demo"],
    ["alert-sink"],
]
MARKUP = re.compile(r"``|:(?:mod|class|func|meth|attr|data|exc):`|::$", re.MULTILINE)


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "meshwatch")
def test_help_has_no_sphinx_markup(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.strip()
    assert not MARKUP.search(text), MARKUP.search(text)


def test_plain_text_keeps_the_words() -> None:
    assert plain_text("see :mod:`meshwatch.demo.scenario` and ``--since``::") == (
        "see meshwatch.demo.scenario and --since:"
    )
    assert plain_text(":class:`~meshwatch.x.AuditTrail`") == "AuditTrail"
    assert plain_text(":meth:`close <AuditTrail.close>`") == "AuditTrail.close"


def test_a_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["audit", "query", "--limit", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--limit" in err and "--help" in err
