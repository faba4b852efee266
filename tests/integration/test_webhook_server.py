"""The bounded webhook server both Alertmanager endpoints run on, over real loopback sockets.

``meshwatch/webhook/server.py`` is tested here with a handler that only
answers the body's length, so each bound is seen on its own; the alert sink
and the remediation receiver have their own HTTP tests on top.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from meshwatch.webhook.server import BodyRefused, WebhookHandler, WebhookServer

pytestmark = pytest.mark.integration

LIMIT = 1000
TIMEOUT = 1.0


class _Echo(WebhookHandler):
    """Answers how many bytes it read, or why it refused; can hold a request open."""

    release = threading.Event()
    entered = threading.Event()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        try:
            body = self.read_body(LIMIT)
        except BodyRefused as refused:
            self.send_json(refused.code, {"error": refused.reason})
            return
        if self.path == "/hold":
            _Echo.entered.set()
            _Echo.release.wait(timeout=10)
        self.send_json(200, {"read": len(body)})


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    _Echo.release.clear()
    _Echo.entered.clear()
    served = WebhookServer(
        ("127.0.0.1", 0), _Echo, request_timeout=TIMEOUT, thread_name="test-webhook"
    )
    served.start()
    try:
        yield served
    finally:
        _Echo.release.set()
        served.stop()


def _raw(server: WebhookServer, request: bytes, *, end_request: bool = False) -> bytes:
    """Send ``request`` as is (then half-close, with ``end_request``); all the server
    answered until it closed the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        if end_request:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_a_whole_body_is_read_and_answered_as_json(server: WebhookServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/", body=b"x" * LIMIT)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        assert json.loads(response.read()) == {"read": LIMIT}
        # A 200 keeps the connection: a second request on it is read too.
        conn.request("POST", "/", body=b"{}")
        assert json.loads(conn.getresponse().read()) == {"read": 2}
    finally:
        conn.close()
    assert server.base_url == f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        (b"Transfer-Encoding: chunked\r\n", 411),
        (b"", 411),
        (b"Content-Length: many\r\n", 400),
        (b"Content-Length: -3\r\n", 400),
        (f"Content-Length: {LIMIT + 1}\r\n".encode(), 413),
    ],
)
def test_a_body_that_cannot_be_bounded_is_refused_unread_and_the_connection_closed(
    server: WebhookServer, headers: bytes, code: int
) -> None:
    answer = _raw(server, b"POST / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert _status(answer) == code, answer
    assert b'"error"' in answer


def test_a_body_shorter_than_its_length_is_refused(server: WebhookServer) -> None:
    request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
    answer = _raw(server, request, end_request=True)
    assert _status(answer) == 400 and b"body ended after 3 of 10 bytes" in answer


def test_a_client_that_trickles_its_body_is_cut_off_at_the_request_timeout(
    server: WebhookServer,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        # Without the server's 1 s bound this recv would hit the client's own 5 s timeout.
        answer = sock.recv(4096)
    assert _status(answer) == 408, answer


def test_a_silent_client_is_dropped_at_the_request_timeout(server: WebhookServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\n")  # the headers never come
        assert sock.recv(4096) == b""  # closed by the server, before the client's 5 s


def test_stop_lets_a_request_in_flight_finish(server: WebhookServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    answers: list[int] = []

    def post() -> None:
        conn.request("POST", "/hold", body=b"abc")
        answers.append(conn.getresponse().status)

    client = threading.Thread(target=post)
    client.start()
    assert _Echo.entered.wait(timeout=5)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(timeout=0.3)
    assert stopper.is_alive(), "stop() returned with a request still being handled"
    _Echo.release.set()
    stopper.join(timeout=5)
    client.join(timeout=5)
    conn.close()
    assert not stopper.is_alive() and answers == [200]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_an_ipv6_address_gets_an_ipv6_socket() -> None:
    if not socket.has_ipv6:
        pytest.skip("this host has no IPv6 stack")
    try:
        served = WebhookServer(("::1", 0), _Echo, request_timeout=TIMEOUT, thread_name="v6")
    except OSError as error:
        pytest.skip(f"::1 cannot be bound here: {error}")
    try:
        assert served.address_family == socket.AF_INET6
        assert served.base_url == f"http://[::1]:{served.port}"
    finally:
        served.stop()
