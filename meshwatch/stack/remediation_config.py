"""The stack's side of remediation: Alertmanager's route to the receiver, and the demo's receiver.

With ``remediation.enabled`` and at least one policy, the generated
``alertmanager.yml`` gets a ``remediation`` webhook receiver and a first route
for exactly the alerts that have a policy:

* ``continue: true``, so those alerts still reach their people as well;
* ``send_resolved: false``: the receiver never acts on a resolved alert, so
  there is nothing to send it;
* the bearer token by file (``http_config.authorization.credentials_file``),
  never inlined; in compose it is a docker secret, natively the host file;
* ``group_wait: 0s`` and grouping per alert and agent, so each agent's alert
  is posted as soon as it fires, on its own.

The receiver runs in the process that holds the runtime. In the generated
stack that is the demo: :data:`PATH` holds its ``remediation:`` settings, and
the demo serves the receiver (``--remediation-config``). Where Alertmanager
reaches it: ``remediation.url`` if set, else the demo's service (compose) or
``listen_address:port`` on the host (native).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from meshwatch.generated import GeneratedFile
from meshwatch.settings import Settings
from meshwatch.settings.remediation import RemediationSettings
from meshwatch.stack.ports import DEMO_SERVICE, connect_host, in_container_url, url_host
from meshwatch.stack.yamlfile import yaml_file

PATH = "demo/remediation.yaml"
# Where the demo's container finds it (a read-only bind mount of PATH).
CONTAINER_PATH = "/etc/meshwatch/remediation.yaml"
RECEIVER = "remediation"
TOKEN_SECRET = "meshwatch_remediation_token"
SECRETS_DIR = "/run/secrets"
ALERTS_PATH = "/alerts"
# Labels that tell one agent's alert from another's (as the other routes group).
GROUP_BY = ("alertname", "agent_did", "agent_id")


def enabled(settings: Settings) -> bool:
    """Whether the stack routes any alert to a remediation receiver."""
    return settings.remediation.enabled and bool(settings.remediation.policies)


def token_path(settings: Settings) -> str:
    """The token file on the host, absolute (compose resolves relative paths elsewhere)."""
    return str(Path(settings.remediation.token_file).absolute())


def receiver_url(settings: Settings, *, in_compose: bool) -> str:
    """Where Alertmanager posts the alerts that have a policy."""
    r = settings.remediation
    if r.url:
        return in_container_url(r.receiver_url) if in_compose else r.receiver_url
    if in_compose and settings.stack.demo.enabled:
        return f"http://{DEMO_SERVICE}:{r.port}{ALERTS_PATH}"
    host_url = f"http://{url_host(connect_host(r.listen_address))}:{r.port}{ALERTS_PATH}"
    return in_container_url(host_url) if in_compose else host_url


def secret_files(settings: Settings) -> dict[str, str]:
    """Docker secret name -> host file, for the token Alertmanager and the demo read."""
    return {TOKEN_SECRET: token_path(settings)} if enabled(settings) else {}


def alertmanager_receiver(settings: Settings, secrets_dir: str = SECRETS_DIR) -> dict[str, Any]:
    """The ``remediation`` receiver of alertmanager.yml, its token under ``secrets_dir``."""
    return {
        "name": RECEIVER,
        "webhook_configs": [
            {
                "url": receiver_url(settings, in_compose=True),
                "send_resolved": False,
                "http_config": {
                    "authorization": {
                        "type": "Bearer",
                        "credentials_file": f"{secrets_dir}/{TOKEN_SECRET}",
                    }
                },
            }
        ],
    }


def alertmanager_route(settings: Settings) -> dict[str, Any]:
    """The first route: the alerts that have a policy, to the receiver, and on to people."""
    names = "|".join(sorted(p.alert for p in settings.remediation.policies))
    return {
        "matchers": [f'alertname=~"{names}"'],
        "receiver": RECEIVER,
        "continue": True,
        "group_by": list(GROUP_BY),
        "group_wait": "0s",
    }


def _settings_document(
    r: RemediationSettings, *, token_file: str, listen_address: str
) -> dict[str, Any]:
    fields = {
        f.name: getattr(r, f.name)
        for f in dataclasses.fields(r)
        if f.name not in ("policies", "token_file", "listen_address", "url")
    }
    return {
        "remediation": {
            **{k: str(v) if isinstance(v, str) else v for k, v in fields.items()},
            "token_file": token_file,
            "listen_address": listen_address,
            "policies": [
                {
                    "alert": p.alert,
                    "action": p.action,
                    "agents": list(p.agents),
                    "params": dict(p.params),
                }
                for p in r.policies
            ],
        }
    }


def demo_settings(settings: Settings, *, in_compose: bool) -> dict[str, Any]:
    """The demo's ``remediation:`` settings: the compose copy, or native mode's."""
    r = settings.remediation
    if in_compose:
        return _settings_document(
            r, token_file=f"{SECRETS_DIR}/{TOKEN_SECRET}", listen_address="0.0.0.0"
        )
    return _settings_document(r, token_file=token_path(settings), listen_address=r.listen_address)


def render(settings: Settings) -> list[GeneratedFile]:
    if not (enabled(settings) and settings.stack.demo.enabled):
        return []
    return [
        yaml_file(
            PATH,
            demo_settings(settings, in_compose=True),
            comment="The demo's remediation receiver (meshwatch demo --remediation-config).",
        )
    ]
