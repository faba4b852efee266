"""Stack settings: receivers, secrets, project name and demo options fail with the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshwatch.settings import SettingsError, load_settings, settings_from_mapping


@pytest.mark.parametrize(
    ("yaml_text", "key", "fragment"),
    [
        pytest.param(
            "stack:\n  receivers:\n    critical: {kind: slack, channel: '#ops'}\n",
            "stack.receivers.critical.url_file",
            "required for a slack receiver",
            id="slack-needs-url-file",
        ),
        pytest.param(
            "stack:\n  receivers:\n    critical:\n      kind: slack\n      channel: '#ops'\n"
            "      url_file: /run/s\n      url: https://hooks.example/x\n",
            "stack.receivers.critical.url",
            "use url_file",
            id="slack-url-is-a-secret",
        ),
        pytest.param(
            "stack:\n  receivers:\n    warning: {kind: pagerduty, routing_key_file: keys/pd}\n",
            "stack.receivers.warning.routing_key_file",
            "absolute path",
            id="relative-secret-file",
        ),
        pytest.param(
            "stack:\n  receivers:\n    warning: {url: 'ftp://x'}\n",
            "stack.receivers.warning.url",
            "http(s) URL",
            id="webhook-url-scheme",
        ),
        pytest.param(
            "stack:\n  receivers:\n    warning: {url: 'http://a/', url_file: /s}\n",
            "stack.receivers.warning.url",
            "one of url or url_file, not both",
            id="webhook-both",
        ),
        pytest.param(
            "stack:\n  receivers:\n    warning:\n      kind: email\n      to: a@example.org\n"
            "      from: b@example.org\n      smarthost: smtp:587\n      password_file: /s\n",
            "stack.receivers.warning.username",
            "required with password_file",
            id="email-password-needs-user",
        ),
        pytest.param(
            "stack:\n  receivers:\n    warning: {kind: sms}\n",
            "stack.receivers.warning.kind",
            "one of",
            id="unknown-kind",
        ),
        pytest.param(
            "stack:\n  project: My Stack\n", "stack.project", "compose project", id="project"
        ),
        pytest.param(
            'stack:\n  grafana_admin_password: "it\'s-long-enough"\n',
            "stack.grafana_admin_password",
            "quotes",
            id="password-quote",
        ),
        pytest.param(
            "stack:\n  demo: {otlp_endpoint: 'tempo:4318'}\n",
            "stack.demo.otlp_endpoint",
            "OTLP/HTTP",
            id="demo-otlp-url",
        ),
        pytest.param(
            "stack:\n  demo: {scenario: chaos}\n", "stack.demo.scenario", "one of", id="scenario"
        ),
        pytest.param(
            "stack:\n  ports: {prometheus: 3000}\n",
            "stack.ports.grafana",
            "already used by prometheus",
            id="port-clash",
        ),
        pytest.param(
            "stack:\n  ports: {alert_sink: 9093}\n",
            "stack.ports.alert_sink",
            "already used by alertmanager",
            id="alert-sink-port-clash",
        ),
        pytest.param(
            "stack:\n  ports: {alert_sink: 70000}\n",
            "stack.ports.alert_sink",
            "TCP port",
            id="alert-sink-port-range",
        ),
        pytest.param(
            "stack:\n  alert_sink: sometimes\n",
            "stack.alert_sink",
            "true or false",
            id="alert-sink-switch",
        ),
        pytest.param(
            "stack:\n  images: {tempo: 'grafana/tempo'}\n", "stack.images.tempo", "pinned", id="pin"
        ),
        pytest.param("stack:\n  workdir: ' '\n", "stack.workdir", "empty", id="workdir"),
    ],
)
def test_bad_stack_values_name_the_file_and_key(
    tmp_path: Path, yaml_text: str, key: str, fragment: str
) -> None:
    path = tmp_path / "meshwatch.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert info.value.key == key
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_every_receiver_kind_loads_with_its_required_fields() -> None:
    settings = settings_from_mapping(
        {
            "stack": {
                "receivers": {
                    "critical": {
                        "kind": "pagerduty",
                        "routing_key_file": "/etc/meshwatch/pd-key",
                    },
                    "warning": {
                        "kind": "email",
                        "to": "ops@example.org",
                        "from": "meshwatch@example.org",
                        "smarthost": "smtp.example.org:587",
                        "username": "meshwatch",
                        "password_file": "/etc/meshwatch/smtp-password",
                    },
                }
            }
        }
    )
    receivers = settings.stack.receivers
    assert receivers.critical.secret_files() == {"routing_key_file": "/etc/meshwatch/pd-key"}
    assert receivers.warning.from_ == "meshwatch@example.org"
    assert receivers.warning.secret_files() == {"password_file": "/etc/meshwatch/smtp-password"}


def test_demo_duration_is_a_duration() -> None:
    settings = settings_from_mapping({"stack": {"demo": {"duration": "90s"}}})
    assert settings.stack.demo.duration is not None
    assert settings.stack.demo.duration.seconds == 90


def test_the_alert_sink_runs_by_default_for_receivers_without_a_url() -> None:
    stack = settings_from_mapping({}).stack
    assert stack.alert_sink is True and stack.ports.alert_sink == 9099
    assert all(r.posts_to_sink for r in stack.receivers.by_severity().values())
    assert stack.runs_alert_sink


@pytest.mark.parametrize(
    ("stack", "runs"),
    [
        pytest.param({"alert_sink": False}, False, id="switched-off"),
        pytest.param(
            {"receivers": {"critical": {"url": "https://hooks.example.org/x"}}},
            True,
            id="warning-still-uses-it",
        ),
        pytest.param(
            {
                "receivers": {
                    "critical": {"kind": "pagerduty", "routing_key_file": "/etc/mw/pd"},
                    "warning": {"url_file": "/etc/mw/hook"},
                }
            },
            False,
            id="every-receiver-has-its-own-target",
        ),
    ],
)
def test_the_alert_sink_runs_only_when_on_and_used(stack: dict[str, object], runs: bool) -> None:
    assert settings_from_mapping({"stack": stack}).stack.runs_alert_sink is runs
