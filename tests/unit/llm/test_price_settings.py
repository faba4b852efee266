"""Prices from meshwatch.yaml: validated with the file and key named, none shipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.instrumentation.genai import GenAISpanMetrics
from meshwatch.settings import SettingsError, load_settings

YAML = """\
genai:
  prices:
    model-a: {input: 2.5, output: 10, cache_read: 1.25}
    model-b: {output: 4}
"""


def test_prices_from_the_settings_file_price_the_calls(tmp_path: Path) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(YAML)
    table = load_settings(path).genai.price_table()
    assert table == {
        "model-a": {"input": 2.5, "output": 10.0, "cache_read": 1.25},
        "model-b": {"output": 4.0},
    }
    genai = GenAISpanMetrics(prices=table)
    genai.record_call("model-b", provider="p", agent="x", input_tokens=100, output_tokens=1000)
    genai.flush()
    assert genai.cost.get(("chat", "p", "model-b", "x")) == pytest.approx(1000 * 4 / 1e6)
    assert genai.unpriced_tokens.get(("chat", "p", "model-b", "x", "input")) == 100


def test_no_price_is_shipped() -> None:
    assert load_settings(None).genai.prices == {}


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ("{input: -1}", "genai.prices.model-a.input"),
        ("{inptu: 1}", "genai.prices.model-a.inptu"),
        ("{input: cheap}", "genai.prices.model-a.input"),
        ("{input: .inf}", "genai.prices.model-a.input"),
    ],
)
def test_a_wrong_price_names_the_file_and_key(tmp_path: Path, entry: str, key: str) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(f"genai:\n  prices:\n    model-a: {entry}\n")
    with pytest.raises(SettingsError, match=rf"{path}: {key}:"):
        load_settings(path)
