"""A second, real Prometheus that only receives remote writes: the store a stack writes to.

It runs Debian's ``prometheus`` with ``--web.enable-remote-write-receiver``
(the protocol Mimir, Thanos Receive and Cortex accept too), scrapes nothing
and evaluates nothing, so every series it holds arrived by remote write. It
can be stopped and started again on the same port and data directory, the
way a store goes down for maintenance and comes back.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.integration.helpers.net import LOOPBACK, free_port
from tests.integration.helpers.poll import wait_until
from tests.integration.helpers.prom import PrometheusAPI

START_TIMEOUT = 60.0


class RemoteWriteReceiver:
    """Start, stop and restart a receiving Prometheus on a fixed loopback port."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.api = PrometheusAPI(f"http://{LOOPBACK}:{self.port}")
        self._process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")

    @property
    def write_url(self) -> str:
        return f"{self.api.base_url}/api/v1/write"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        argv = [
            self.binary,
            f"--config.file={self.directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-remote-write-receiver",
        ]
        with open(self.directory / "receiver.log", "ab") as log:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until(self.api.ready, timeout=START_TIMEOUT, what="the remote-write receiver ready")

    def stop(self) -> None:
        """SIGTERM the receiver's process group, SIGKILL if it lingers; always reaped."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
