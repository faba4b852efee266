"""Loopback networking helpers: free ports and readiness by TCP connect."""

from __future__ import annotations

import dataclasses
import socket

from meshwatch.settings.stack import Ports

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it from the ephemeral range).

    The port is released before it is returned, so another process could take it
    in between; on a test machine that window is negligible and far less
    flaky than fixed port numbers.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports, held open together so none is handed out twice."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def free_stack_ports() -> dict[str, int]:
    """A distinct free port for every entry of ``stack.ports``, named as ``Ports`` names them."""
    names = [f.name for f in dataclasses.fields(Ports)]
    return dict(zip(names, free_ports(len(names)), strict=True))


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
