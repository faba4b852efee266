"""``alertmanager/alertmanager.yml``: routing by severity, inhibition, and receivers.

* Critical alerts go to the ``critical`` receiver; warning and info alerts to
  ``warning`` (an info alert is never worth a page of its own).
* Notifications are grouped per alert and per agent. Ring, saga and work
  metrics name an agent ``agent_did``; governance metrics name it ``agent_id``.
  Grouping (and inhibition) on both works because a label missing from an
  alert counts as the empty value, so governance alerts group by ``agent_id``
  and the rest by ``agent_did`` without either getting in the other's way.
* A critical alert inhibits the warning (and info) alert of the same name and
  the same subject: the two-level alerts (``critical_threshold`` in the alert
  settings) then notify once, at the level that holds. The subject is the agent
  and also the tool (``tool_name``) or scrape target (``job``, ``instance``) an
  alert is about, so a critical for one tool or target never mutes a warning
  for another.
* A webhook receiver without a URL (the default) posts to the built-in alert
  sink, the ``alert-sink`` service of the compose file (see
  :func:`meshwatch.stack.ports.alert_sink_url`), so a fresh stack's
  notifications are delivered and readable instead of failing.
* With ``remediation.enabled``, the alerts that have a remediation policy
  also go to the ``remediation`` receiver first (see
  :mod:`meshwatch.stack.remediation_config`).
* Secrets are never written here. A receiver's secret is read by Alertmanager
  from a file (``*_file`` fields). In compose that file is mounted as a docker
  secret under :data:`SECRETS_DIR`; native mode points at the host path.
"""

from __future__ import annotations

from typing import Any

from meshwatch.generated import GeneratedFile
from meshwatch.settings import Receiver, Settings, StackSettings
from meshwatch.settings.stack import SECRET_FILE_FIELDS
from meshwatch.stack import remediation_config
from meshwatch.stack.ports import alert_sink_url, in_container_url
from meshwatch.stack.yamlfile import yaml_file

PATH = "alertmanager/alertmanager.yml"
SECRETS_DIR = "/run/secrets"
GROUP_BY = ("alertname", "agent_did", "agent_id", "slo")
INHIBIT_EQUAL = (*GROUP_BY, "tool_name", "job", "instance")
RECEIVER_CRITICAL = "critical"
RECEIVER_WARNING = "warning"

_SLACK_TITLE = (
    "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})"
)
_SLACK_TEXT = (
    "{{ range .Alerts }}*{{ .Annotations.summary }}*\n{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n{{ end }}"
)


def secret_name(severity: str, field_name: str) -> str:
    """The docker secret (and file under /run/secrets) for one receiver field."""
    return f"meshwatch_{severity}_{SECRET_FILE_FIELDS[field_name]}"


def secret_files(settings: Settings) -> dict[str, str]:
    """Docker secret name -> host file, for every secret a receiver reads."""
    files: dict[str, str] = {}
    for severity, receiver in settings.stack.receivers.by_severity().items():
        for field_name, host_path in receiver.secret_files().items():
            files[secret_name(severity, field_name)] = host_path
    return {**files, **remediation_config.secret_files(settings)}


def _receiver(
    stack: StackSettings, name: str, r: Receiver, secrets_dir: str, sink_base: str | None
) -> dict[str, Any]:
    def secret(field_name: str) -> str:
        return f"{secrets_dir}/{secret_name(name, field_name)}"

    config: dict[str, Any] = {"send_resolved": r.send_resolved}
    if r.kind == "webhook":
        if r.posts_to_sink:
            config["url"] = (
                alert_sink_url(stack, name, in_compose=True)
                if sink_base is None
                else f"{sink_base}/{name}"
            )
        elif r.url is not None:
            config["url"] = in_container_url(r.url) if sink_base is None else r.url
        else:
            config["url_file"] = secret("url_file")
        return {"name": name, "webhook_configs": [config]}
    if r.kind == "slack":
        config.update(
            api_url_file=secret("url_file"),
            channel=r.channel,
            title=_SLACK_TITLE,
            text=_SLACK_TEXT,
        )
        return {"name": name, "slack_configs": [config]}
    if r.kind == "email":
        config.update(to=r.to, **{"from": r.from_}, smarthost=r.smarthost, require_tls=True)
        if r.username is not None:
            config["auth_username"] = r.username
        if r.password_file is not None:
            config["auth_password_file"] = secret("password_file")
        return {"name": name, "email_configs": [config]}
    config.update(routing_key_file=secret("routing_key_file"), severity=name)
    return {"name": name, "pagerduty_configs": [config]}


def alertmanager_config(
    settings: Settings, *, secrets_dir: str = SECRETS_DIR, sink_base: str | None = None
) -> dict[str, Any]:
    """The alertmanager.yml document.

    By default it is written for compose (secrets under :data:`SECRETS_DIR`,
    the sink and loopback URLs as the compose network sees them). The
    Kubernetes target passes where its Secret is mounted and the alert sink
    Service's base URL; user URLs are then kept as written.
    """
    receivers = settings.stack.receivers
    equal = list(INHIBIT_EQUAL)
    remediation = remediation_config.enabled(settings)
    routes = [
        {"matchers": ['severity="critical"'], "receiver": RECEIVER_CRITICAL},
        {"matchers": ['severity=~"warning|info"'], "receiver": RECEIVER_WARNING},
    ]
    extra_receivers = []
    if remediation:
        routes.insert(0, remediation_config.alertmanager_route(settings))
        extra_receivers.append(remediation_config.alertmanager_receiver(settings, secrets_dir))
    return {
        "route": {
            "receiver": RECEIVER_WARNING,
            "group_by": list(GROUP_BY),
            "group_wait": str(receivers.group_wait),
            "group_interval": str(receivers.group_interval),
            "repeat_interval": str(receivers.repeat_interval),
            "routes": routes,
        },
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity=~"warning|info"'],
                "equal": equal,
            },
            {
                "source_matchers": ['severity="warning"'],
                "target_matchers": ['severity="info"'],
                "equal": equal,
            },
        ],
        "receivers": [
            *(
                _receiver(settings.stack, name, receiver, secrets_dir, sink_base)
                for name, receiver in receivers.by_severity().items()
            ),
            *extra_receivers,
        ],
    }


def render(settings: Settings) -> list[GeneratedFile]:
    return [yaml_file(PATH, alertmanager_config(settings))]
