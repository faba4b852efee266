"""The container tier: the generated compose stack, started by testcontainers.

These tests need a Docker engine. Where none answers (``docker info`` fails or
times out) they skip and say so, unless ``MESHWATCH_REQUIRE_DOCKER`` is set
(the GitHub Actions workflow sets it), in which case a missing engine fails
the run: the tier must not silently skip where it is supposed to run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from meshwatch.generated import write_tree
from meshwatch.rendering import render_all
from meshwatch.settings import Ports, Settings, load_settings
from meshwatch.stack.secrets import ADMIN_USER, PASSWORD_VAR, read_env_file
from tests.integration.helpers.net import LOOPBACK, free_ports

DOCKER_INFO_TIMEOUT = 20.0


def docker_unavailable_reason() -> str | None:
    """Why no Docker engine can be used here, or None when one answers."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=DOCKER_INFO_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {DOCKER_INFO_TIMEOUT:.0f}s"
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        return f"no Docker engine answers (`docker info`: {lines[-1]})"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    reason = docker_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("MESHWATCH_REQUIRE_DOCKER"):
        pytest.fail(f"MESHWATCH_REQUIRE_DOCKER is set but {reason}")
    pytest.skip(f"container tier needs a Docker engine: {reason}")


@dataclass(frozen=True)
class RunningCompose:
    """A running generated compose stack and how to reach it from the host."""

    settings: Settings
    out_dir: Path
    grafana_password: str

    def url(self, component: str) -> str:
        return f"http://{LOOPBACK}:{getattr(self.settings.stack.ports, component)}"

    @property
    def grafana_auth(self) -> tuple[str, str]:
        return ADMIN_USER, self.grafana_password


def container_settings_file(directory: Path) -> Path:
    """Settings for the container tier: random loopback ports, a unique project, fast scrapes."""
    # Every port the settings know of, so a new component never falls back to a fixed one.
    names = [f.name for f in dataclasses.fields(Ports)]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    data = {
        "stack": {
            "bind_address": LOOPBACK,
            "project": f"meshwatch-it-{uuid.uuid4().hex[:8]}",
            "ports": ports,
            "scrape_interval": "2s",
            "evaluation_interval": "2s",
            "workdir": str(directory / "work"),
            "demo": {"enabled": True, "seed": 11, "scenario": "steady"},
        }
    }
    path = directory / "meshwatch.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def compose_stack(
    docker_engine: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCompose]:
    """The generated stack (Prometheus, Alertmanager, Tempo, Grafana and the demo) under compose.

    ``docker compose up --wait`` returns once every healthcheck passes; the
    stack is always taken down with its volumes, even when a test fails.
    """
    from testcontainers.compose import DockerCompose

    directory = tmp_path_factory.mktemp("compose")
    settings = load_settings(container_settings_file(directory))
    out_dir = directory / "stack"
    write_tree(render_all(settings, None), out_dir)
    password = read_env_file(out_dir / ".env")[PASSWORD_VAR]
    compose = DockerCompose(out_dir, compose_file_name="docker-compose.yml", build=True, wait=True)
    try:
        try:
            compose.start()
        except Exception:
            # The failing healthcheck's container log is the explanation; pytest shows it.
            stdout, stderr = compose.get_logs()
            print(f"docker compose logs:\n{stdout}\n{stderr}", file=sys.stderr)
            raise
        yield RunningCompose(settings, out_dir, password)
    finally:
        compose.stop(down=True)
