"""Settings: defaults that work, and errors that name the file and the key."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshwatch.cli import main
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
        ("alerts: [\n", "", "YAML"),
        (
            "alerts:\n  ring_breach_rate:\n    threshold: .nan\n",
            "alerts.ring_breach_rate.threshold",
            "must be a finite number",
        ),
        (
            "alerts:\n  ring_breach_rate:\n    threshold: -.inf\n",
            "alerts.ring_breach_rate.threshold",
            "must be a finite number",
        ),
        (
            "alerts:\n  ring_breach_rate:\n    threshold: 1e400\n",
            "alerts.ring_breach_rate.threshold",
            "must be a finite number",
        ),
        (
            "alerts:\n  ring_breach_rate: {threshold: 1, threshold: 2}\n",
            "",
            "duplicate key 'threshold'",
        ),
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


# --- every settings error is one line naming the file ------------------------------------


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text("alerts:\n  ring_breach_rate:\n    threshold: [1, 2\n  other: 3\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4:")
    assert "not valid YAML" in message and "\n" not in message


def test_duplicate_keys_are_rejected_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text("alerts:\n  ring_breach_rate:\n    threshold: 1\n    threshold: 2\n")
    with pytest.raises(
        SettingsError,
        match=r":4:5: not valid YAML: duplicate key 'threshold' "
        r"\(first at line 3\)",
    ):
        load_settings(path)


def test_a_merge_key_may_be_overridden_without_counting_as_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(
        "alerts:\n  ring_breach_rate:\n    <<: {threshold: 1.5, for: 5m}\n    threshold: 1\n"
    )
    alert = load_settings(path).alerts.ring_breach_rate
    assert (alert.threshold, alert.for_) == (1.0, "5m")


@pytest.mark.parametrize("spelling", ["5e-2", "5E-2", "+5e-2", "0.5e-1", "5_0e-3"])
def test_an_exponent_without_a_dot_is_the_number_it_looks_like(
    tmp_path: Path, spelling: str
) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(f"alerts:\n  task_error_rate:\n    threshold: {spelling}\n")
    assert load_settings(path).alerts.task_error_rate.threshold == pytest.approx(0.05)


def test_files_that_cannot_be_settings_are_one_line_errors(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("alerts: {}\n# caf\xe9\n".encode("latin-1"))
    cases = {
        latin1: "not UTF-8 text (at byte offset 16)",
        tmp_path: "not a regular file",
        Path("/dev/null"): "not a regular file",
        Path("/proc/self"): "not a regular file",
        tmp_path / "absent.yaml": "no such settings file",
    }
    for path, fragment in cases.items():
        with pytest.raises(SettingsError) as info:
            load_settings(path)
        assert str(info.value) == f"{path}: {fragment}"


def test_a_threshold_above_the_default_critical_tier_says_the_limit_is_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cross-field error found while rendering still names the file; nothing is written."""
    path = tmp_path / "meshwatch.yaml"
    path.write_text("alerts:\n  ring_breach_rate:\n    threshold: 3\n")
    out = tmp_path / "out"
    assert main(["generate", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"meshwatch: invalid settings: {path}: alerts.ring_breach_rate.threshold: 3 is not below"
        " the default critical_threshold (2): set critical_threshold above it too, or to null"
        " for no critical tier"
    )
    assert not out.exists()
    path.write_text(
        "alerts:\n  ring_breach_rate:\n    threshold: 3\n    critical_threshold: null\n"
    )
    assert main(["generate", "--config", str(path), "--out", str(out)]) == 0
    path.write_text("alerts:\n  ring_breach_rate:\n    threshold: 3\n    critical_threshold: 2.5\n")
    assert main(["generate", "--config", str(path), "--out", str(tmp_path / "o2")]) == 2
    assert "critical_threshold: must be above threshold (3), got 2.5" in capsys.readouterr().err


# --- fuzzing: any YAML is accepted or refused in one line ----------------------------------

_KEYS = st.sampled_from(
    [
        "alerts",
        "dashboards",
        "stack",
        "ring_breach_rate",
        "task_error_rate",
        "threshold",
        "critical_threshold",
        "for",
        "severity",
        "min_events",
        "ports",
        "grafana",
        "prometheus",
        "images",
        "bind_address",
        "receivers",
        "agent_targets",
        "rate_window",
        "unknown",
        "<<",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["5m", "1h30m", "warning", "critical", "page", "127.0.0.1", "5e-2", "~"])
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


def _assert_accepted_or_one_line(path: Path) -> None:
    try:
        load_settings(path)
    except SettingsError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(str(path)), message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_DOCUMENTS)
def test_any_yaml_document_is_accepted_or_one_settings_error(document: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meshwatch.yaml"
        path.write_text(
            yaml.safe_dump(
                {"alerts": document} if isinstance(document, dict) else document, allow_unicode=True
            )
        )
        _assert_accepted_or_one_line(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_as_a_settings_file_are_accepted_or_one_settings_error(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "meshwatch.yaml"
        path.write_bytes(raw)
        _assert_accepted_or_one_line(path)
