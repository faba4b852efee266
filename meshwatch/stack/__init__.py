"""The generated deployment: compose file and the configs of Prometheus, Alertmanager,
Tempo and Grafana, all from the one settings object.

>>> from meshwatch.settings import Settings
>>> from meshwatch.stack import render
>>> sorted(f.path for f in render(Settings()))[:3]
['.env', 'alertmanager/alertmanager.yml', 'docker-compose.yml']

:func:`render` returns files; it never writes (``meshwatch generate`` and
``meshwatch up`` write them atomically). The runner that starts the stack,
natively or with docker compose, lives in :mod:`meshwatch.stack.runner`.
"""

from __future__ import annotations

from pathlib import Path

from meshwatch.generated import GeneratedFile, check_unique
from meshwatch.settings import Settings


def render(settings: Settings, previous: Path | None = None) -> list[GeneratedFile]:
    """Every stack file, sorted by path.

    ``previous`` is the directory of an earlier generation, if any: its
    ``.env`` supplies the Grafana admin password so regenerating keeps it.
    """
    from meshwatch.stack import (
        alertmanager_config,
        compose,
        grafana_provisioning,
        prometheus_config,
        remediation_config,
        secrets,
        tempo_config,
    )

    return check_unique(
        [
            *compose.render(settings),
            *prometheus_config.render(settings),
            *alertmanager_config.render(settings),
            *tempo_config.render(settings),
            *grafana_provisioning.render(settings),
            *secrets.render(settings, previous),
            *remediation_config.render(settings),
        ]
    )


__all__ = ["render"]
