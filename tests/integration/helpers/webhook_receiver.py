"""A webhook receiver for Alertmanager: records every notification, one URL path per receiver.

The generated Alertmanager config routes critical alerts to one webhook URL and
warnings to another. Pointing both at this server, with paths ``/critical`` and
``/warning``, lets a test see which receiver each notification reached, which
is exactly what routing and inhibition tests need.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.integration.helpers.net import LOOPBACK


@dataclass(frozen=True)
class DeliveredAlert:
    """One alert inside one webhook notification, with the path it was delivered to."""

    path: str
    status: str  # "firing" or "resolved", per alert (a group can mix both)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    received_at: float

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that stores Alertmanager webhook payloads.

    >>> with WebhookReceiver() as hooks:                # doctest: +SKIP
    ...     url = hooks.url("critical")                 # put this in the settings
    ...     hooks.alerts(path="/critical", alertname="HighRingBreachRate")
    """

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._payloads: list[tuple[str, dict[str, Any], float]] = []
        self._server = ThreadingHTTPServer((LOOPBACK, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, path: str) -> str:
        """The webhook URL a receiver config should use for ``path`` (e.g. "critical")."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def payloads(self, path: str | None = None) -> list[dict[str, Any]]:
        """Raw notification bodies, oldest first, optionally only those sent to ``path``."""
        with self._lock:
            return [p for (pth, p, _) in self._payloads if path is None or pth == path]

    def alerts(
        self,
        *,
        path: str | None = None,
        alertname: str | None = None,
        status: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[DeliveredAlert]:
        """Every alert of every notification that matches all the given filters."""
        with self._lock:
            received = list(self._payloads)
        found = []
        for pth, payload, at in received:
            if path is not None and pth != path:
                continue
            for alert in payload.get("alerts", []):
                item = DeliveredAlert(
                    path=pth,
                    status=str(alert.get("status", "")),
                    labels=dict(alert.get("labels", {})),
                    annotations=dict(alert.get("annotations", {})),
                    received_at=at,
                )
                if alertname is not None and item.alertname != alertname:
                    continue
                if status is not None and item.status != status:
                    continue
                if labels and any(item.labels.get(k) != v for k, v in labels.items()):
                    continue
                found.append(item)
        return found

    def clear(self) -> None:
        """Forget everything received so far (between scenarios in one session)."""
        with self._lock:
            self._payloads.clear()

    def _record(self, path: str, payload: dict[str, Any]) -> None:
        with self._lock:
            self._payloads.append((path, payload, time.time()))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                try:
                    payload = json.loads(body)
                except ValueError:
                    self.send_error(400, "body is not JSON")
                    return
                if not isinstance(payload, dict):
                    self.send_error(400, "body is not a JSON object")
                    return
                receiver._record(self.path, payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Silence per-request logging: pytest shows failures, not traffic."""

        return Handler
