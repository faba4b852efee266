"""Prometheus alert and recording rules as Python values, rendered to rule files.

Rules are built from the metric catalogue and the alert settings; see
:mod:`meshwatch.alerts.recording` for the recorded series dashboards read and
:mod:`meshwatch.alerts.external_metrics` for the stack's own metrics.
"""
