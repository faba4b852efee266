"""Shared fixtures: real binaries from Debian's packages, found or explained."""

from __future__ import annotations

import os
import shutil

import pytest


def _binary(name: str, package: str) -> str:
    """Path of a required binary; in CI its absence is a failure, locally a stated skip."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install Debian package '{package}' (scripts/system-deps.sh)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool", "prometheus")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _binary("prometheus", "prometheus")


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    return _binary("prometheus-alertmanager", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def amtool() -> str:
    return _binary("amtool", "prometheus-alertmanager")
