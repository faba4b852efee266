"""Native mode: real Prometheus and Alertmanager binaries, the alert sink and the demo, on the host.

>>> with NativeStack(settings, workdir) as stack:      # doctest: +SKIP
...     for part in stack.status():
...         print(part.name, part.url, part.ready)

Each process starts in its own session (``start_new_session``), so its pid is
its process group id, and stopping sends SIGTERM to the whole group, then
SIGKILL after a timeout: nothing a component spawned survives it. Pid files
(with the kernel's start time, see :mod:`.state`) make ``start`` idempotent
(a running component is left alone, reloaded if its config changed, restarted
if its command line did, e.g. a new port) and
let ``meshwatch down`` in another process stop exactly what ``up`` started.
A failed start stops everything that start launched before raising.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from meshwatch.demo import command_line as demo_command_line
from meshwatch.generated import write_tree
from meshwatch.settings import Settings
from meshwatch.stack import alert_sink_command_line, prometheus_config, remediation_config
from meshwatch.stack.ports import ALERT_SINK, connect_host, endpoints, url_host
from meshwatch.stack.replicas import (
    ALERTMANAGER_PEERS,
    PROMETHEUS_REPLICAS,
    AlertmanagerPeer,
    PrometheusReplica,
    alertmanager_peers,
    host_port,
    prometheus_replicas,
)
from meshwatch.stack.runner.health import ComponentStatus, probe, wait_for
from meshwatch.stack.runner.native_config import (
    ALERTMANAGER,
    DEMO_REMEDIATION,
    native_config_name,
    native_configs,
)
from meshwatch.stack.runner.state import (
    ProcessRecord,
    group_members,
    is_ours,
    pid_alive,
    start_ticks,
)
from meshwatch.stack.runner.workdir import Renderer, StackError, Workdir, given, read_tree

# Start order (stop is the reverse): the alert sink listens before Alertmanager can notify.
# The second Prometheus and Alertmanager run only with stack.ha.
NATIVE_COMPONENTS = (
    *(r.name for r in PROMETHEUS_REPLICAS),
    ALERT_SINK,
    *(p.name for p in ALERTMANAGER_PEERS),
    "demo",
)
# Components with a config file and a /-/reload endpoint.
RELOADABLE = (*(r.name for r in PROMETHEUS_REPLICAS), *(p.name for p in ALERTMANAGER_PEERS))
_BINARIES = {
    "prometheus": (("prometheus",), "prometheus"),
    "alertmanager": (("prometheus-alertmanager", "alertmanager"), "prometheus-alertmanager"),
}

# Every process this Python process started, by pid, so it can be reaped after
# it exits (a zombie would otherwise look alive to kill(pid, 0)), whichever
# NativeStack instance stops it.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def find_binary(component: str) -> str:
    """Path of ``component``'s server binary, or a StackError naming the package to install."""
    names, package = _BINARIES[component]
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise StackError(
        f"native mode needs the {component} binary ({' or '.join(names)}), which is not on PATH: "
        f"install the Debian/Ubuntu package '{package}' (scripts/system-deps.sh does it as root), "
        "or start a Docker engine to run the stack in containers"
    )


def _reap_exited() -> None:
    """Collect the exit status of every child that has ended.

    A child can end outside :meth:`NativeStack.stop` (killed by a fault test,
    or a demo that ran its ``--duration``); polling them all, not only the one
    being stopped, keeps none of them as a zombie until this process exits.
    """
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            del _CHILDREN[pid]


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class NativeStack:
    """Prometheus, Alertmanager, the alert sink and the demo as host processes under one workdir.

    ``settings`` gives the ports (``stack.ports``) and everything generated;
    ``workdir`` defaults to ``settings.stack.workdir``. ``renderer`` produces
    the generated files (``meshwatch.rendering.render_all`` for everything
    ``meshwatch generate`` writes); without one the runner can stop, signal
    and report on what runs, but not start.
    ``say`` receives one-line progress messages (default: silent).
    """

    def __init__(
        self,
        settings: Settings,
        workdir: str | Path | None = None,
        *,
        renderer: Renderer | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.workdir = Workdir.for_settings(settings, workdir)
        self._renderer = renderer
        self._say = say or (lambda message: None)
        self._endpoints = endpoints(settings.stack)
        self._listen_host = settings.stack.bind_address
        self._connect_host = connect_host(settings.stack.bind_address)

    # -- what runs -------------------------------------------------------------

    def components(self) -> list[str]:
        """The components this stack runs, in start order."""
        stack = self.settings.stack
        names = [r.name for r in prometheus_replicas(stack)]
        if stack.runs_alert_sink:
            names.append(ALERT_SINK)
        names.extend(p.name for p in alertmanager_peers(stack))
        if stack.demo.enabled:
            names.append("demo")
        return names

    def url(self, name: str) -> str:
        """The base URL of component ``name`` on the host."""
        return self._endpoints[name].host_url(self.settings.stack)

    def records(self) -> dict[str, ProcessRecord]:
        """Pid-file records of the components, whether or not their process still runs."""
        found = {}
        for name in NATIVE_COMPONENTS:
            record = ProcessRecord.load(self.workdir.pid_file(name))
            if record is not None:
                found[name] = record
        return found

    def running(self, name: str) -> ProcessRecord | None:
        """The record of ``name`` if its process is alive and is the one we started."""
        record = ProcessRecord.load(self.workdir.pid_file(name))
        if record is None:
            return None
        _reap_exited()
        return record if is_ours(record) else None

    def _prometheus_argv(self, replica: PrometheusReplica) -> list[str]:
        wd, stack = self.workdir, self.settings.stack
        listen = url_host(self._listen_host)
        return [
            find_binary("prometheus"),
            f"--config.file={wd.native / native_config_name(replica)}",
            f"--storage.tsdb.path={wd.data / replica.name}",
            f"--web.listen-address={listen}:{host_port(stack, replica.host_port_key)}",
            f"--web.external-url={self.url(replica.name)}",
            *prometheus_config.prometheus_flags(self.settings),
        ]

    def _alertmanager_argv(self, peer: AlertmanagerPeer) -> list[str]:
        wd, stack = self.workdir, self.settings.stack
        listen = url_host(self._listen_host)
        peers = alertmanager_peers(stack)
        if len(peers) == 1:
            cluster = ["--cluster.listen-address="]
        else:
            # Gossip on the host's loopback (or bind address): the advertised
            # address is given, since Alertmanager refuses to guess one that is
            # not a private IP.
            connect = url_host(self._connect_host)
            cluster = [
                f"--cluster.listen-address={listen}:{host_port(stack, peer.gossip_port_key)}",
                f"--cluster.advertise-address={connect}:{host_port(stack, peer.gossip_port_key)}",
                *(
                    f"--cluster.peer={connect}:{host_port(stack, other.gossip_port_key)}"
                    for other in peers
                    if other != peer
                ),
            ]
        return [
            find_binary("alertmanager"),
            f"--config.file={wd.native / ALERTMANAGER}",
            f"--storage.path={wd.data / peer.name}",
            f"--web.listen-address={listen}:{host_port(stack, peer.host_port_key)}",
            f"--web.external-url={self.url(peer.name)}",
            *cluster,
        ]

    def _argv(self, name: str) -> list[str]:
        wd, ports = self.workdir, self.settings.stack.ports
        for replica in PROMETHEUS_REPLICAS:
            if name == replica.name:
                return self._prometheus_argv(replica)
        for peer in ALERTMANAGER_PEERS:
            if name == peer.name:
                return self._alertmanager_argv(peer)
        if name == ALERT_SINK:
            return [
                sys.executable,
                "-m",
                "meshwatch",
                *alert_sink_command_line.argv(
                    port=ports.alert_sink, addr=self._listen_host, log=wd.notifications_file
                ),
            ]
        demo = self.settings.stack.demo
        return [
            sys.executable,
            "-m",
            "meshwatch",
            *demo_command_line.argv(
                demo,
                metrics_port=ports.demo_metrics,
                addr=self._listen_host,
                otlp_endpoint=demo.otlp_endpoint,
                audit_dir=str(wd.data / "demo-audit"),
                remediation_config=(
                    str(wd.native / DEMO_REMEDIATION)
                    if remediation_config.enabled(self.settings)
                    else None
                ),
            ),
        ]

    # -- start -----------------------------------------------------------------

    def prepare(self) -> bool:
        """Generate the stack and the native configs, and validate them; True if anything changed."""
        self.workdir.ensure()
        changed = self.workdir.generate(self.settings, given(self._renderer))
        native = native_configs(self.settings, self.workdir.stack)
        current = read_tree(self.workdir.native) if self.workdir.native.is_dir() else None
        if current != {f.path: (f.content, f.mode) for f in native}:
            write_tree(native, self.workdir.native)
            changed = True
        self._validate()
        return changed

    def _validate(self) -> None:
        """Check the native configs with promtool and amtool, when installed, before starting."""
        native = self.workdir.native
        checks = [
            *(
                ("promtool", ["check", "config", str(native / native_config_name(replica))])
                for replica in prometheus_replicas(self.settings.stack)
            ),
            ("amtool", ["check-config", str(native / ALERTMANAGER)]),
        ]
        for tool, args in checks:
            path = shutil.which(tool)
            if path is None:
                continue
            result = subprocess.run(
                [path, *args], capture_output=True, text=True, timeout=60, check=False
            )
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                raise StackError(f"{tool} rejected the generated configuration:\n{output}")

    def start(self, timeout: float = 60.0) -> list[ComponentStatus]:
        """Generate, then start every component not already running and wait until all are ready.

        A component already running is left alone; if the configuration
        changed it is told to reload; if its command line changed (a port in
        ``stack.ports``, say) it is restarted, since a reload cannot move a
        listener. On any failure (a port taken, a process
        that exits, readiness not reached within ``timeout`` seconds) every
        process this call started is stopped before StackError is raised.
        """
        changed = self.prepare()
        started: list[str] = []
        try:
            for name in self.components():
                record = self.running(name)
                if record is not None and record.argv != tuple(self._argv(name)):
                    # A port (or another flag) changed: a reload cannot move a listener.
                    self._say(f"{name}'s command line changed (stack settings): restarting it")
                    self.stop([name])
                    record = None
                if record is not None:
                    if changed and name in RELOADABLE:
                        self._reload(name)
                    continue
                self._spawn(name)
                started.append(name)
            deadline = time.monotonic() + timeout
            for name in self.components():
                self._wait_ready(name, deadline)
        except BaseException:
            self.stop(started)
            raise
        self.workdir.write_mode("native")
        return self.status()

    def _ports_of(self, name: str) -> list[int]:
        """The host ports ``name`` listens on: its HTTP port, and its gossip port in HA."""
        ports = [self._endpoints[name].host_port]
        stack = self.settings.stack
        if len(alertmanager_peers(stack)) > 1:
            ports += [
                host_port(stack, p.gossip_port_key) for p in ALERTMANAGER_PEERS if p.name == name
            ]
        return ports

    def _spawn(self, name: str) -> None:
        host = self._listen_host
        for port in self._ports_of(name):
            if not _port_free(host, port):
                raise StackError(
                    f"port {port} on {host}, needed by {name}, is already in use by another "
                    f"program: stop it or set stack.ports in meshwatch.yaml"
                )
        argv = self._argv(name)
        log_path = self.workdir.log_file(name)
        self._say(f"starting {name}: logs in {log_path}")
        with open(log_path, "ab") as log:
            log.write(f"\n--- meshwatch up: {' '.join(argv)}\n".encode())
            log.flush()
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir.root,
                start_new_session=True,
            )
        _reap_exited()
        _CHILDREN[child.pid] = child
        ProcessRecord(
            name=name,
            pid=child.pid,
            pgid=child.pid,
            argv=tuple(argv),
            start_ticks=start_ticks(child.pid),
            log=str(log_path),
        ).save(self.workdir.pid_file(name))

    def _wait_ready(self, name: str, deadline: float) -> None:
        url = self._endpoints[name].health_url(self.settings.stack)

        def check() -> tuple[bool, str]:
            if self.running(name) is None:
                raise StackError(
                    f"{name} exited during start-up; last lines of "
                    f"{self.workdir.log_file(name)}:\n{_log_tail(self.workdir.log_file(name))}"
                )
            return probe(url, timeout=1.0)

        ok, detail = wait_for(check, timeout=max(0.0, deadline - time.monotonic()))
        if not ok:
            raise StackError(
                f"{name} was not ready at {url} in time ({detail}); last lines of "
                f"{self.workdir.log_file(name)}:\n{_log_tail(self.workdir.log_file(name))}"
            )

    def _reload(self, name: str) -> None:
        url = self.url(name) + "/-/reload"
        self._say(f"configuration changed: reloading {name}")
        request = urllib.request.Request(url, method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=10):
                return
        except OSError as exc:
            raise StackError(f"{name} did not accept the new configuration ({exc})") from None

    # -- stop ------------------------------------------------------------------

    def stop(self, names: Iterable[str] | None = None, timeout: float = 10.0) -> list[str]:
        """Stop the named components (default: all), last started first; the names stopped.

        Each process group gets SIGTERM, then SIGKILL if anything in it is
        still alive after ``timeout`` seconds. Pid files are removed. A pid
        file whose pid now belongs to another process is removed without
        signalling anything.
        """
        wanted = list(NATIVE_COMPONENTS if names is None else names)
        stopped = []
        for name in reversed(NATIVE_COMPONENTS):
            if name not in wanted:
                continue
            path = self.workdir.pid_file(name)
            record = ProcessRecord.load(path)
            if record is not None and self._stop_record(record, timeout):
                stopped.append(name)
            path.unlink(missing_ok=True)
        mode = self.workdir.read_mode()
        if names is None and mode is not None and mode["mode"] == "native":
            self.workdir.clear_mode()
        return stopped

    def _stop_record(self, record: ProcessRecord, timeout: float) -> bool:
        _reap_exited()
        if pid_alive(record.pid) and not is_ours(record):
            return False  # the pid, and so the group id, now belongs to another process
        if not group_members(record.pgid):
            return False
        self._say(f"stopping {record.name} (pid {record.pid})")
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pgid, sig)

            def gone() -> tuple[bool, str]:
                _reap_exited()
                return not group_members(record.pgid), ""

            if wait_for(gone, timeout=wait, interval=0.05)[0]:
                return True
        raise StackError(f"{record.name} (process group {record.pgid}) did not stop")

    def signal(self, name: str, sig: int) -> None:
        """Send ``sig`` to component ``name``'s process group (fault injection in tests)."""
        record = self.running(name)
        if record is None:
            raise StackError(f"{name} is not running")
        os.killpg(record.pgid, sig)

    # -- status ----------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        """Readiness of each component from its own health endpoint."""
        result = []
        for name in self.components():
            url = self.url(name)
            record = self.running(name)
            if record is None:
                result.append(ComponentStatus(name, url, False, "not running"))
                continue
            ok, detail = probe(self._endpoints[name].health_url(self.settings.stack))
            result.append(ComponentStatus(name, url, ok, detail, record.pid))
        return result

    def __enter__(self) -> NativeStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["NATIVE_COMPONENTS", "NativeStack", "find_binary"]
