"""Threshold alerts with an optional critical tier, from one :class:`ThresholdAlert` setting.

With ``critical_threshold`` set, an alert is two rules with the same name: the
configured severity at ``threshold`` and ``critical`` at ``critical_threshold``.
Both fire past the critical level; Alertmanager's inhibition (same alertname
and identifying labels) mutes the lesser one, so the page carries the right
severity without a second alert name to route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from meshwatch.alerts.catalogue import AlertDef, Direction
from meshwatch.alerts.model import AlertRule
from meshwatch.settings import AlertsSettings, SettingsError


def check_tiers(alert: AlertDef, settings: AlertsSettings) -> None:
    """A critical tier must lie beyond the base threshold, on top of a lesser severity.

    Two rules with one name and the same severity would be duplicates
    (``promtool check rules`` flags them), so a critical tier needs a base
    tier of ``warning`` or ``info``.
    """
    cfg = alert.threshold(settings)
    key, direction = alert.key, alert.direction
    critical = cfg.critical_threshold
    if critical is None:
        return
    if cfg.severity == "critical":
        raise SettingsError(
            f"alerts.{key}.critical_threshold",
            "the alert's severity is already critical: lower its severity or drop "
            "critical_threshold",
        )
    beyond = critical > cfg.threshold if direction == "above" else critical < cfg.threshold
    if not beyond:
        side = "above" if direction == "above" else "below"
        default = getattr(AlertsSettings(), key).critical_threshold
        if critical == default:
            raise SettingsError(
                f"alerts.{key}.threshold",
                f"{cfg.threshold:g} is not {'below' if side == 'above' else 'above'} the default"
                f" critical_threshold ({critical:g}): set critical_threshold {side} it too,"
                " or to null for no critical tier",
            )
        raise SettingsError(
            f"alerts.{key}.critical_threshold",
            f"must be {side} threshold ({cfg.threshold:g}), got {critical:g}",
        )


def tiered(
    alert: AlertDef, settings: AlertsSettings, build: Callable[[float, str], AlertRule]
) -> list[AlertRule]:
    """``alert`` at its threshold and, if configured, its critical tier.

    ``build(threshold, tier_note)`` makes the rule for one threshold;
    ``tier_note`` is empty for the base tier and names the critical level for
    the other, so descriptions say which limit was crossed.
    """
    check_tiers(alert, settings)
    cfg = alert.threshold(settings)
    rules = [build(cfg.threshold, "")]
    if cfg.critical_threshold is not None:
        critical = build(cfg.critical_threshold, " (critical level)")
        rules.append(replace(critical, severity="critical"))
    return rules


def comparison(direction: Direction) -> str:
    """The PromQL comparison operator that alerts in ``direction``."""
    return ">" if direction == "above" else "<"


def percent(ratio: float) -> str:
    """A ratio threshold as people write it in prose: ``0.25`` -> ``25%``."""
    return f"{ratio * 100:g}%"
