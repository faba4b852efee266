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
import logging
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from meshwatch.instrumentation import HypervisorEventBus
from meshwatch.instrumentation.stores import MetricFamilySnapshot
from meshwatch.remediation.actions import Action
from meshwatch.remediation.engine import Remediator
from meshwatch.remediation.payload import PayloadError, parse
from meshwatch.settings.remediation import RemediationSettings
from meshwatch.webhook.server import BodyRefused, WebhookHandler, WebhookServer

logger = logging.getLogger("meshwatch.remediation")

ALERTS_PATH = "/alerts"
READY_PATH = "/-/ready"


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

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        """The URL Alertmanager posts to (``…/alerts``)."""
        return self._server.base_url + ALERTS_PATH

    def start(self) -> RemediationReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests in flight finish first."""
        self._server.stop()

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


class _Server(WebhookServer):
    def __init__(self, address: tuple[str, int], receiver: RemediationReceiver) -> None:
        self.receiver = receiver
        super().__init__(
            address,
            _Handler,
            request_timeout=receiver._timeout,
            thread_name="meshwatch-remediation",
        )


class _Handler(WebhookHandler):
    server: _Server
    server_version = "meshwatch-remediation"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: %s", self.client_address[0], format % args)

    def _reply(self, code: int, body: Any) -> None:
        self.server.receiver.remediator.count_request(code)
        self.log_request(code)
        self.send_json(code, body)

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
        try:
            notification = parse(self.read_body(receiver._max_body))
        except BodyRefused as refused:
            self._reply(refused.code, {"error": refused.reason})
            return
        except PayloadError as exc:
            self._reply(400, {"error": str(exc)})
            return
        decisions = receiver.remediator.handle(notification)
        self._reply(200, {"decisions": [d.to_dict() for d in decisions]})
