"""Compose mode: the generated docker-compose.yml under one compose project.

``up`` is ``docker compose up --detach --wait``: compose shows its own
progress (pulls, builds, each container going healthy) on the terminal and
returns when every healthcheck passes, or fails naming the one that did not.
``down`` removes exactly the project's containers (and, when asked, its
volumes). The project name comes from settings, so a second ``up`` finds and
updates the same containers instead of starting new ones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from meshwatch.settings import Settings
from meshwatch.stack import compose
from meshwatch.stack.ports import DEMO_SERVICE, endpoints
from meshwatch.stack.runner.health import ComponentStatus, probe
from meshwatch.stack.runner.workdir import Renderer, StackError, Workdir, given

# `--wait-timeout` arrived in compose 2.20 (and `dockerfile_inline` in 2.17).
MIN_COMPOSE_VERSION = (2, 20)
ENGINE_PROBE_TIMEOUT = 5.0

Run = Callable[..., "subprocess.CompletedProcess[str]"]


def docker_available(docker: str = "docker", timeout: float = ENGINE_PROBE_TIMEOUT) -> bool:
    """True when a Docker engine answers ``docker info`` within ``timeout`` seconds."""
    path = shutil.which(docker)
    if path is None:
        return False
    try:
        result = subprocess.run(
            [path, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (subprocess.TimeoutExpired, OSError):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def parse_compose_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` from ``docker compose version --short`` output (``2.29.1``, ``v2.20.0``)."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


class ComposeStack:
    """The generated compose project: build the commands, run them, read readiness.

    ``run`` executes a command (default :func:`subprocess.run`); tests pass a
    recorder to check the exact command lines without a Docker engine.
    """

    def __init__(
        self,
        settings: Settings,
        workdir: str | Path | None = None,
        *,
        renderer: Renderer | None = None,
        docker: str = "docker",
        run: Run = subprocess.run,
        services: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        self.workdir = Workdir.for_settings(settings, workdir)
        self._renderer = renderer
        self._docker = docker
        self._run = run
        self._services = list(services) if services is not None else self.default_services()

    def default_services(self) -> list[str]:
        names = compose.server_services(self.settings)
        if self.settings.stack.demo.enabled:
            names.append(DEMO_SERVICE)
        if self.settings.stack.runs_alert_sink:
            names.append(compose.ALERT_SINK_SERVICE)
        return names

    @property
    def services(self) -> list[str]:
        return list(self._services)

    @property
    def compose_file(self) -> Path:
        return self.workdir.stack / compose.PATH

    def base_command(self) -> list[str]:
        return [
            self._docker,
            "compose",
            "--project-name",
            self.settings.stack.project,
            "--project-directory",
            str(self.workdir.stack),
            "--file",
            str(self.compose_file),
        ]

    def up_command(self, *, recreate: bool, timeout: float) -> list[str]:
        command = [
            *self.base_command(),
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            str(int(timeout)),
            "--build",
            "--remove-orphans",
        ]
        if recreate:
            # Bind-mounted config directories were replaced by a new generation:
            # recreate so every container mounts the new files.
            command.append("--force-recreate")
        return [*command, *self._services]

    def down_command(self, *, volumes: bool = False) -> list[str]:
        command = [*self.base_command(), "down", "--remove-orphans"]
        return [*command, "--volumes"] if volumes else command

    def check_compose(self) -> None:
        """Fail with what to install unless ``docker compose`` (v2.20 or later) is present."""
        try:
            result = self._run(
                [self._docker, "compose", "version", "--short"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"cannot run docker compose: {exc}") from None
        version = parse_compose_version(result.stdout) if result.returncode == 0 else None
        if version is None or version < MIN_COMPOSE_VERSION:
            found = result.stdout.strip() or "not installed"
            raise StackError(
                "compose mode needs the Docker Compose plugin 2.20 or later "
                f"(`docker compose version` says: {found}); install docker-compose-plugin, "
                "or run `meshwatch up --mode native`"
            )

    def start(self, timeout: float = 300.0) -> list[ComponentStatus]:
        """Generate, then bring the project up and wait for every healthcheck."""
        self.check_compose()
        self.workdir.ensure()
        changed = self.workdir.generate(self.settings, given(self._renderer))
        result = self._run(self.up_command(recreate=changed, timeout=timeout), check=False)
        if result.returncode != 0:
            raise StackError(
                f"docker compose up failed (exit {result.returncode}); see its output above, "
                f"and `docker compose -p {self.settings.stack.project} logs` for the containers"
            )
        self.workdir.write_mode(
            "compose", project=self.settings.stack.project, services=self.services
        )
        return self.status()

    def stop(self, *, volumes: bool = False) -> None:
        """Remove the project's containers (and its volumes with ``volumes``)."""
        if not self.compose_file.is_file():
            raise StackError(f"no compose file at {self.compose_file}: nothing to stop")
        result = self._run(self.down_command(volumes=volumes), check=False)
        if result.returncode != 0:
            raise StackError(f"docker compose down failed (exit {result.returncode})")
        self.workdir.clear_mode()

    def status(self) -> list[ComponentStatus]:
        """Readiness of each service from its own health endpoint on the host."""
        stack = self.settings.stack
        result = []
        for name, endpoint in endpoints(stack).items():
            if name not in self._services:
                continue
            ok, detail = probe(endpoint.health_url(stack))
            result.append(ComponentStatus(name, endpoint.host_url(stack), ok, detail))
        return result
