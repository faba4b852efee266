"""The remediation receiver's HTTP side: Alertmanager's webhook, authenticated and bounded.

``POST /alerts`` takes a webhook notification (payload version 4) with
``Authorization: Bearer <token>``. The token is read once from a file and
compared in constant time (:func:`hmac.compare_digest`); a missing or wrong
one is answered 401 and counted, and the body is never read. The body must
declare its length, at most ``max_body_bytes``, and arrive whole within
``request_timeout_seconds`` (a client that trickles bytes is cut off), so no
request can hold a thread or memory for long. A body that is not a
notification is answered 400 and nothing happens. Otherwise every alert gets
a decision (:class:`~meshwatch.remediation.engine.Remediator`) and the answer
is 200 with the decisions, even when an action failed: the failure is
recorded, and a retry by Alertmanager would only be refused as a duplicate.

It listens on 127.0.0.1 unless the settings name another address.
``GET /-/ready`` answers 200 for health checks.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from meshwatch.instrumentation import HypervisorEventBus
from meshwatch.instrumentation.stores import MetricFamilySnapshot
from meshwatch.remediation.actions import Action
from meshwatch.remediation.engine import Remediator
from meshwatch.remediation.payload import PayloadError, parse
from meshwatch.settings.remediation import RemediationSettings

logger = logging.getLogger("meshwatch.remediation")

ALERTS_PATH = "/alerts"
READY_PATH = "/-/ready"
# How often the serving loop looks for stop(): the most a stop waits for it.
_POLL = 0.1
_CHUNK = 65536


class RemediationError(Exception):
    """The receiver cannot start as configured; the message says what to fix."""


def read_token(path: str | Path) -> bytes:
    """The bearer token in ``path`` (surrounding whitespace removed); never empty."""
    if not str(path):
        raise RemediationError("remediation.token_file is not set: the receiver needs a token")
    try:
        token = Path(path).read_bytes().strip()
    except OSError as exc:
        raise RemediationError(
            f"cannot read remediation token file {path}: {exc.strerror}"
        ) from None
    if not token:
        raise RemediationError(f"remediation token file {path} is empty")
    return token


class RemediationReceiver:
    """The webhook server around a :class:`Remediator`; a MetricSource and a context manager.

    Port 0 picks a free port (see :attr:`url`). ``start()`` serves in a
    background thread; ``stop()`` lets requests in flight finish.
    """

    def __init__(self, remediator: Remediator, token: bytes, *, port: int | None = None) -> None:
        settings = remediator.settings
        unknown = remediator.unknown_actions()
        if unknown:
            raise RemediationError(
                f"remediation policies name actions that are not registered: {', '.join(unknown)}"
            )
        self.remediator = remediator
        self._token = b"Bearer " + token
        self._timeout = settings.request_timeout_seconds
        self._max_body = settings.max_body_bytes
        address = (settings.listen_address.strip("[]"), settings.port if port is None else port)
        try:
            self._server = _Server(address, self)
        except OSError as exc:
            raise RemediationError(
                f"cannot listen on {address[0]}:{address[1]} for remediation: {exc.strerror}"
            ) from None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL Alertmanager posts to (``…/alerts``)."""
        host = str(self._server.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{ALERTS_PATH}"

    def start(self) -> RemediationReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL},
            name="meshwatch-remediation",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=self._timeout)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> RemediationReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def authorised(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the token (constant time)."""
        return hmac.compare_digest(self._token, (header or "").encode("utf-8", "replace"))

    def metric_families(self) -> Iterator[MetricFamilySnapshot]:
        return self.remediator.metric_families()


def start_remediation(
    settings: RemediationSettings,
    actions: list[Action] | tuple[Action, ...],
    *,
    bus: HypervisorEventBus | None = None,
    port: int | None = None,
) -> RemediationReceiver:
    """Start the receiver next to the instrumentation: one call, serving until ``stop()``.

    ``bus`` receives one ``security.remediation_decided`` event per decision;
    attach an :class:`~meshwatch.instrumentation.AuditTrail` to it to keep them.
    Serve the returned receiver with the other sources (``serve_metrics(...,
    sources=[..., receiver])``) for its counters.
    """
    remediator = Remediator(settings, actions, bus=bus)
    return RemediationReceiver(remediator, read_token(settings.token_file), port=port).start()


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], receiver: RemediationReceiver) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.receiver = receiver
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "meshwatch-remediation"

    def setup(self) -> None:
        super().setup()
        # Every read of the request (its line and headers too) is bounded.
        self.connection.settimeout(self.server.receiver._timeout)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: %s", self.client_address[0], format % args)

    def _reply(self, code: int, body: Any) -> None:
        self.server.receiver.remediator.count_request(code)
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        if code >= 400:
            self.close_connection = True  # the body may be unread
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == READY_PATH:
            self._reply(200, {"status": "ready"})
        else:
            self._reply(404, {"error": f"no such page; POST {ALERTS_PATH} or GET {READY_PATH}"})

    def do_POST(self) -> None:
        receiver = self.server.receiver
        if self.path != ALERTS_PATH:
            self._reply(404, {"error": f"post Alertmanager notifications to {ALERTS_PATH}"})
            return
        if not receiver.authorised(self.headers.get("Authorization")):
            logger.warning(
                "remediation: refused a request from %s: bad or missing token",
                self.client_address[0],
            )
            self._reply(401, {"error": "a valid bearer token is required"})
            return
        body = self._body()
        if body is None:
            return
        try:
            notification = parse(body)
        except PayloadError as exc:
            self._reply(400, {"error": str(exc)})
            return
        decisions = receiver.remediator.handle(notification)
        self._reply(200, {"decisions": [d.to_dict() for d in decisions]})

    def _body(self) -> bytes | None:
        """The whole body within the deadline, or None after answering why not."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reply(411, {"error": "send Content-Length, not a chunked body"})
            return None
        header = self.headers.get("Content-Length")
        try:
            length = int(header) if header is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self._reply(
                411 if header is None else 400, {"error": "a valid Content-Length is required"}
            )
            return None
        limit = self.server.receiver._max_body
        if length > limit:
            self._reply(413, {"error": f"body of {length} bytes is over {limit}"})
            return None
        deadline = time.monotonic() + self.server.receiver._timeout
        parts: list[bytes] = []
        remaining = length
        try:
            while remaining > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                part = self.rfile.read1(min(remaining, _CHUNK))
                if not part:
                    break
                parts.append(part)
                remaining -= len(part)
        except (TimeoutError, OSError):
            self._reply(408, {"error": "the body did not arrive in time"})
            return None
        if remaining:
            self._reply(400, {"error": f"body ended after {length - remaining} of {length} bytes"})
            return None
        return b"".join(parts)
