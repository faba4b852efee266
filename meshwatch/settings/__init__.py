"""The one settings object every generator reads, loaded from an optional meshwatch.yaml.

>>> from meshwatch.settings import load_settings
>>> settings = load_settings(None)          # defaults that work
>>> settings.alerts.ring_breach_rate.threshold
0.5

Data flows one way: settings -> catalogue -> rules, dashboards and stack files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from meshwatch.settings.alerts import (
    SEVERITIES,
    AlertsSettings,
    AnomalyAlert,
    EventAlert,
    PredictiveAlert,
    Severity,
    ThresholdAlert,
)
from meshwatch.settings.dashboards import DashboardSettings
from meshwatch.settings.genai import GenAISettings, ModelPrice
from meshwatch.settings.kubernetes import AgentMonitor, GrafanaSidecar, KubernetesSettings
from meshwatch.settings.loader import Duration, SettingsError, build, load_yaml_mapping
from meshwatch.settings.remediation import RemediationPolicy, RemediationSettings
from meshwatch.settings.slos import SLI_KINDS, BurnRateAlert, SliKind, Slo, SloSettings
from meshwatch.settings.stack import (
    DemoSettings,
    Images,
    Ports,
    Receiver,
    Receivers,
    StackSettings,
)

DEFAULT_FILE = "meshwatch.yaml"


@dataclass(frozen=True)
class Settings:
    """Everything a deployment can change. Frozen: pass it around, never mutate it."""

    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    dashboards: DashboardSettings = field(default_factory=DashboardSettings)
    stack: StackSettings = field(default_factory=StackSettings)
    genai: GenAISettings = field(default_factory=GenAISettings)
    remediation: RemediationSettings = field(default_factory=RemediationSettings)
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    slos: SloSettings = field(default_factory=SloSettings)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load settings from ``path``; with None, from ./meshwatch.yaml if present, else defaults.

    Raises :class:`SettingsError` naming the file and key of the first problem.
    """
    resolved = settings_path(path)
    if resolved is None:
        return Settings()
    if not resolved.exists():
        raise SettingsError("", "no such settings file", str(resolved))
    return build(Settings, load_yaml_mapping(resolved), source=str(resolved))


def settings_path(path: str | Path | None) -> Path | None:
    """The file :func:`load_settings` reads for ``path``: it, ./meshwatch.yaml if present, or None.

    Also what names the file in an error found after loading (a cross-field
    check made while rendering the rules).
    """
    if path is not None:
        return Path(path)
    candidate = Path(DEFAULT_FILE)
    return candidate if candidate.exists() else None


def settings_from_mapping(data: object, source: str | None = None) -> Settings:
    """Build settings from already-parsed data (tests, programmatic use)."""
    return build(Settings, data, source=source)


__all__ = [
    "DEFAULT_FILE",
    "SEVERITIES",
    "SLI_KINDS",
    "AgentMonitor",
    "AlertsSettings",
    "AnomalyAlert",
    "BurnRateAlert",
    "DashboardSettings",
    "DemoSettings",
    "Duration",
    "EventAlert",
    "GenAISettings",
    "GrafanaSidecar",
    "Images",
    "KubernetesSettings",
    "ModelPrice",
    "Ports",
    "PredictiveAlert",
    "Receiver",
    "Receivers",
    "RemediationPolicy",
    "RemediationSettings",
    "Settings",
    "SettingsError",
    "Severity",
    "SliKind",
    "Slo",
    "SloSettings",
    "StackSettings",
    "ThresholdAlert",
    "load_settings",
    "settings_from_mapping",
    "settings_path",
]
