"""Alertmanager routing, inhibition and receivers for the operator's Alertmanager.

Two forms, by ``kubernetes.alertmanager_config``:

* ``AlertmanagerConfig`` (monitoring.coreos.com/v1alpha1, the default): the
  operator merges it into the Alertmanager's configuration. Secrets are
  ``SecretKeySelector`` references into ``kubernetes.receiver_secret``, which
  the operator reads itself. The operator normally adds a
  ``namespace="<its namespace>"`` matcher to the route, which would drop
  every alert aggregated across namespaces (all of ours); the Helm overlay
  turns that off (``alertmanagerConfigMatcherStrategy: None``).
* ``Secret``: the whole ``alertmanager.yaml`` as a Secret the Alertmanager
  reads (``alertmanagerSpec.configSecret``). Secrets are ``*_file`` paths under
  :data:`SECRETS_MOUNT`, where the operator mounts ``receiver_secret``.

Both are derived from the compose stack's document
(:func:`meshwatch.stack.alertmanager_config.alertmanager_config`), so routing
and inhibition are defined once.
"""

from __future__ import annotations

import re
from typing import Any

from meshwatch.generated import GeneratedFile
from meshwatch.kubernetes.objects import MONITORING_V1ALPHA1, manifest, metadata
from meshwatch.kubernetes.workloads import sink_base_url
from meshwatch.settings import Receiver, Settings, SettingsError
from meshwatch.settings.stack import SECRET_FILE_FIELDS
from meshwatch.stack.alertmanager_config import alertmanager_config, secret_files, secret_name
from meshwatch.stack.yamlfile import dump_yaml

NAME = "meshwatch"
#: The Secret holding alertmanager.yaml in the ``Secret`` form, and its key.
CONFIG_SECRET = "meshwatch-alertmanager"
CONFIG_KEY = "alertmanager.yaml"
#: Where the operator mounts each Secret listed in ``alertmanagerSpec.secrets``.
SECRETS_MOUNT = "/etc/alertmanager/secrets"
_MATCHER = re.compile(r'^(?P<name>[A-Za-z_]\w*)(?P<op>=~|!~|!=|=)"(?P<value>.*)"$')


def _matcher(text: str) -> dict[str, str]:
    """``severity=~"warning|info"`` as the operator's ``{name, matchType, value}``."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"cannot translate the Alertmanager matcher {text!r}")
    return {"name": found["name"], "matchType": found["op"], "value": found["value"]}


def _secret_ref(settings: Settings, severity: str, field_name: str) -> dict[str, str]:
    return {"name": settings.kubernetes.receiver_secret, "key": secret_name(severity, field_name)}


def _receiver(settings: Settings, severity: str, r: Receiver) -> dict[str, Any]:
    """One receiver in the AlertmanagerConfig schema (camelCase, secret references)."""
    config: dict[str, Any] = {"sendResolved": r.send_resolved}
    if r.kind == "webhook":
        if r.url_file is not None:
            config["urlSecret"] = _secret_ref(settings, severity, "url_file")
        else:
            config["url"] = r.url or f"{sink_base_url(settings)}/{severity}"
        return {"name": severity, "webhookConfigs": [config]}
    compose = {c["name"]: c for c in alertmanager_config(settings)["receivers"]}[severity]
    if r.kind == "slack":
        slack = compose["slack_configs"][0]
        config.update(
            apiURL=_secret_ref(settings, severity, "url_file"),
            channel=r.channel,
            title=slack["title"],
            text=slack["text"],
        )
        return {"name": severity, "slackConfigs": [config]}
    if r.kind == "email":
        config.update(to=r.to, smarthost=r.smarthost, requireTLS=True, **{"from": r.from_})
        if r.username is not None:
            config["authUsername"] = r.username
        if r.password_file is not None:
            config["authPassword"] = _secret_ref(settings, severity, "password_file")
        return {"name": severity, "emailConfigs": [config]}
    config.update(routingKey=_secret_ref(settings, severity, "routing_key_file"), severity=severity)
    return {"name": severity, "pagerdutyConfigs": [config]}


def _require_sink(settings: Settings) -> None:
    """A URL-less webhook needs the alert sink; on a cluster there is no host to fall back to."""
    for severity, receiver in settings.stack.receivers.by_severity().items():
        if receiver.posts_to_sink and not settings.stack.alert_sink:
            raise SettingsError(
                f"stack.receivers.{severity}",
                "a webhook without url or url_file posts to the alert sink, which "
                "stack.alert_sink turns off: give it a URL for the Kubernetes target",
            )


def alertmanager_config_object(settings: Settings) -> dict[str, Any]:
    """The AlertmanagerConfig object."""
    doc = alertmanager_config(settings)
    route = doc["route"]
    spec = {
        "route": {
            "receiver": route["receiver"],
            "groupBy": route["group_by"],
            "groupWait": route["group_wait"],
            "groupInterval": route["group_interval"],
            "repeatInterval": route["repeat_interval"],
            "routes": [
                {"receiver": r["receiver"], "matchers": [_matcher(m) for m in r["matchers"]]}
                for r in route["routes"]
            ],
        },
        "inhibitRules": [
            {
                "sourceMatch": [_matcher(m) for m in rule["source_matchers"]],
                "targetMatch": [_matcher(m) for m in rule["target_matchers"]],
                "equal": rule["equal"],
            }
            for rule in doc["inhibit_rules"]
        ],
        "receivers": [
            _receiver(settings, severity, receiver)
            for severity, receiver in settings.stack.receivers.by_severity().items()
        ],
    }
    k8s = settings.kubernetes
    return {
        "apiVersion": MONITORING_V1ALPHA1,
        "kind": "AlertmanagerConfig",
        "metadata": metadata(k8s, NAME, labels=k8s.operator_labels),
        "spec": spec,
    }


def alertmanager_yaml(settings: Settings) -> dict[str, Any]:
    """The alertmanager.yaml of the ``Secret`` form: secrets read from the mounted Secret."""
    mount = f"{SECRETS_MOUNT}/{settings.kubernetes.receiver_secret}"
    return alertmanager_config(settings, secrets_dir=mount, sink_base=sink_base_url(settings))


def config_secret(settings: Settings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata(settings.kubernetes, CONFIG_SECRET),
        "stringData": {CONFIG_KEY: dump_yaml(alertmanager_yaml(settings))},
    }


def secret_command(settings: Settings) -> str:
    """The kubectl command creating ``receiver_secret`` from the files in the settings."""
    files = " ".join(
        f"--from-file={key}={path}" for key, path in sorted(secret_files(settings).items())
    )
    return (
        f"kubectl -n {settings.kubernetes.namespace} create secret generic "
        f"{settings.kubernetes.receiver_secret} {files}"
    )


def render(settings: Settings) -> list[GeneratedFile]:
    _require_sink(settings)
    comment = ""
    if secret_files(settings):
        fields = ", ".join(sorted(SECRET_FILE_FIELDS))
        comment = (
            f"Receiver secrets ({fields}) are read from the Secret "
            f"{settings.kubernetes.receiver_secret}; create it first:\n{secret_command(settings)}"
        )
    if settings.kubernetes.alertmanager_config == "Secret":
        return [manifest("alertmanager-secret", config_secret(settings), comment=comment)]
    return [manifest("alertmanagerconfig", alertmanager_config_object(settings), comment=comment)]
