"""Pinned upstream files the Kubernetes output is checked against, read from repository snapshots.

The prometheus-operator CRD schemas and the Helm charts' ``values.yaml`` are
read with ``git show <commit>:<path>`` from local snapshots of the upstream
repositories (bare git directories, ``<owner>+<name>/repo`` under
``$MESHWATCH_UPSTREAM_SNAPSHOTS``, default ``/work/.mirror``), at the commits
pinned here, so the versions are exact and nothing upstream is copied into
this repository. A test whose snapshot is absent skips and says which.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

SNAPSHOTS = Path(os.environ.get("MESHWATCH_UPSTREAM_SNAPSHOTS", "/work/.mirror"))


@dataclass(frozen=True)
class Pin:
    """One upstream file at one commit."""

    repo: str
    commit: str
    path: str
    what: str

    @property
    def git_dir(self) -> Path:
        return SNAPSHOTS / self.repo.replace("/", "+") / "repo"


OPERATOR = "prometheus-operator/prometheus-operator"
OPERATOR_V0_93_0 = "f8fafd475f3d132e239432ae6172de60a6cb6516"  # tag v0.93.0
CRD_DIR = "example/prometheus-operator-crd"
CRDS = {
    kind: Pin(
        OPERATOR,
        OPERATOR_V0_93_0,
        f"{CRD_DIR}/monitoring.coreos.com_{plural}.yaml",
        f"{kind} CRD v0.93.0",
    )
    for kind, plural in {
        "PrometheusRule": "prometheusrules",
        "ServiceMonitor": "servicemonitors",
        "PodMonitor": "podmonitors",
        "AlertmanagerConfig": "alertmanagerconfigs",
        "Prometheus": "prometheuses",
        "Alertmanager": "alertmanagers",
    }.items()
}
# The commits that set each chart's version (its Chart.yaml's last change).
KUBE_PROMETHEUS_STACK_VALUES = Pin(
    "prometheus-community/helm-charts",
    "ea930baeebeba39f56d6b44e351f23b2a072a600",
    "charts/kube-prometheus-stack",
    "kube-prometheus-stack 88.5.3",
)
GRAFANA_VALUES = Pin(
    "grafana-community/helm-charts",
    "864f7794683680e5100a38670e103c4fa6e37e29",
    "charts/grafana",
    "grafana 12.11.1",
)
TEMPO_DISTRIBUTED_VALUES = Pin(
    "grafana-community/helm-charts",
    "2785d07ea9c6d47cb2ed7d7768f47d8394ffd208",
    "charts/tempo-distributed",
    "tempo-distributed 3.3.0",
)


def _git(pin: Pin, *args: str) -> str:
    if not pin.git_dir.is_dir():
        pytest.skip(
            f"no snapshot of {pin.repo} under {SNAPSHOTS} (needed for the {pin.what}); "
            "set MESHWATCH_UPSTREAM_SNAPSHOTS to a directory holding it"
        )
    done = subprocess.run(
        ["git", "--git-dir", str(pin.git_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{pin.repo} snapshot lacks {pin.commit}: {done.stderr.strip()}")
    return done.stdout


@functools.cache
def read(pin: Pin, relative: str = "") -> str:
    """The pinned file (or ``relative`` below a pinned directory) as text."""
    path = f"{pin.path}/{relative}" if relative else pin.path
    return _git(pin, "show", f"{pin.commit}:{path}")


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe loader that reads a bare ``=`` (an enum value in the CRDs) as the string it is.

    YAML 1.1 resolves a plain ``=`` to its "value" type, which no safe loader constructs.
    """


_CrdLoader.add_constructor(
    "tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node)
)


@functools.cache
def crd_schema(kind: str, version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``kind`` at API ``version`` in the pinned operator release."""
    crd = yaml.load(read(CRDS[kind]), Loader=_CrdLoader)
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"the {kind} CRD serves no version {version}")


@functools.cache
def chart_values(pin: Pin) -> dict[str, Any]:
    values = yaml.safe_load(read(pin, "values.yaml"))
    assert isinstance(values, dict)
    return values


@functools.cache
def chart_templates(pin: Pin) -> str:
    """Every template of the chart, concatenated (to find keys read but commented out in values)."""
    names = _git(pin, "ls-tree", "-r", "--name-only", pin.commit, f"{pin.path}/templates").split()
    return "\n".join(
        read(pin, name.removeprefix(f"{pin.path}/"))
        for name in names
        if name.endswith((".yaml", ".tpl"))
    )


def chart_version(pin: Pin) -> str:
    return str(yaml.safe_load(read(pin, "Chart.yaml"))["version"])
