"""Settings: defaults that work, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.settings import Duration, SettingsError, load_settings, settings_from_mapping


def test_defaults_load_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    assert settings.alerts.ring_breach_rate.threshold == 0.5
    assert settings.alerts.elevation_too_long.for_ == "1m"
    assert settings.stack.bind_address == "127.0.0.1"


def test_a_partial_override_keeps_sibling_defaults(tmp_path: Path) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text("alerts:\n  ring_breach_rate:\n    threshold: 1.5\n")
    settings = load_settings(path)
    assert settings.alerts.ring_breach_rate.threshold == 1.5
    assert settings.alerts.ring_breach_rate.for_ == "2m"
    assert settings.alerts.ring_breach_rate.critical_threshold == 2.0


def test_meshwatch_yaml_in_the_working_directory_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "meshwatch.yaml").write_text("stack:\n  ports:\n    grafana: 3300\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings(None).stack.ports.grafana == 3300


@pytest.mark.parametrize(
    ("yaml_text", "key", "fragment"),
    [
        (
            "alerts:\n  ring_breach_rate:\n    threshold: -1\n",
            "alerts.ring_breach_rate.threshold",
            "negative",
        ),
        (
            "alerts:\n  elevation_too_long:\n    for: banana\n",
            "alerts.elevation_too_long.for",
            "duration",
        ),
        (
            "alerts:\n  ring_breach_rate:\n    threshold: high\n",
            "alerts.ring_breach_rate.threshold",
            "number",
        ),
        ("alerts:\n  bogus: 1\n", "alerts.bogus", "unknown key"),
        (
            "alerts:\n  task_error_rate:\n    severity: page\n",
            "alerts.task_error_rate.severity",
            "one of",
        ),
        ("stack:\n  ports:\n    grafana: 70000\n", "stack.ports.grafana", "TCP port"),
        ("stack:\n  bind_address: localhost-ish\n", "stack.bind_address", "IP address"),
        (
            "stack:\n  images:\n    grafana: grafana/grafana:latest\n",
            "stack.images.grafana",
            "pinned",
        ),
        (
            "stack:\n  grafana_admin_password: admin\n",
            "stack.grafana_admin_password",
            "12 characters",
        ),
        ("stack:\n  agent_targets: [agents]\n", "stack.agent_targets[0]", "host:port"),
        ("[1, 2]\n", "<top>", "mapping"),
        ("alerts: [\n", "<file>", "YAML"),
    ],
)
def test_bad_values_name_the_file_and_key(
    tmp_path: Path, yaml_text: str, key: str, fragment: str
) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert info.value.key == key
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_a_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such settings file"):
        load_settings(tmp_path / "absent.yaml")


def test_settings_are_frozen() -> None:
    settings = settings_from_mapping({})
    with pytest.raises(AttributeError):
        settings.alerts = None  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("0s", 0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert Duration(text).seconds == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "banana", "-1m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="Prometheus duration"):
        Duration(text)
