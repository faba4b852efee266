"""The unit tier refuses processes and IP sockets (tests/unit/guard.py), and says where to go."""

from __future__ import annotations

import _posixsubprocess
import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

from tests.unit.guard import Guard, UnitTierViolation, fail_on


def test_binding_a_port_is_refused_with_where_the_test_belongs(unit_guard: Guard) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock,
        pytest.raises(UnitTierViolation, match="move this test to tests/integration"),
    ):
        sock.bind(("127.0.0.1", 0))
    assert unit_guard.take() == ["uses the network (socket.bind ('127.0.0.1', 0))"]


def test_connecting_over_ipv4_or_ipv6_is_refused(unit_guard: Guard) -> None:
    with pytest.raises(UnitTierViolation):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
    with (
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock,
        pytest.raises(UnitTierViolation),
    ):
        sock.sendto(b"x", ("::1", 9))
    taken = unit_guard.take()
    assert [v.split(" (")[1].split()[0] for v in taken] == ["socket.connect", "socket.sendto"]


def test_a_violation_the_code_under_test_swallows_is_still_recorded(unit_guard: Guard) -> None:
    """Exporters catch every exception; the record is what makes the test fail anyway."""
    try:
        with socket.socket() as sock:
            sock.connect(("127.0.0.1", 9))
    except Exception:  # what tolerant code does
        pass
    assert len(unit_guard.take()) == 1


@pytest.mark.parametrize(
    "spawn",
    [
        pytest.param(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), id="run"),
        pytest.param(lambda: subprocess.Popen(["true"]), id="Popen"),
        pytest.param(lambda: os.fork(), id="fork"),
        pytest.param(lambda: os.system("true"), id="system"),
        pytest.param(
            lambda: multiprocessing.get_context("spawn").Process(target=print).start(),
            id="multiprocessing-spawn",
        ),
        pytest.param(
            lambda: multiprocessing.get_context("fork").Process(target=print).start(),
            id="multiprocessing-fork",
        ),
    ],
)
def test_spawning_a_process_is_refused(unit_guard: Guard, spawn: object) -> None:
    assert callable(spawn)
    with pytest.raises(UnitTierViolation, match="spawns a process"):
        spawn()
    assert unit_guard.take()


def test_in_process_plumbing_stays_allowed(unit_guard: Guard) -> None:
    """socketpair (asyncio's self-pipe) and Unix-domain sockets are not ports."""
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
    assert unit_guard.take() == []


def test_a_phase_with_violations_fails_and_one_without_passes() -> None:
    fail_on([], "tests/unit/test_x.py::test_pure")
    with pytest.raises(pytest.fail.Exception, match=r"test_x.py::test_net uses the network"):
        fail_on(
            ["uses the network (socket.bind ('127.0.0.1', 0))"], "tests/unit/test_x.py::test_net"
        )


def test_the_guard_restores_every_entry_point_it_replaced(unit_guard: Guard) -> None:
    # The tier's own guard is installed while this test runs: lift it, then put it back.
    unit_guard.uninstall()
    try:
        originals = (os.fork, subprocess._fork_exec, _posixsubprocess.fork_exec, socket.socket.bind)
        guard = Guard()
        guard.install()
        assert os.fork is not originals[0] and socket.socket.bind is not originals[3]
        guard.uninstall()
        assert (
            os.fork,
            subprocess._fork_exec,
            _posixsubprocess.fork_exec,
            socket.socket.bind,
        ) == originals
    finally:
        unit_guard.install()
