"""A bounded HTTP server for Alertmanager's webhook: its lifecycle and its request bodies.

No request can hold a handler thread or memory for long: every read of a
request (its line and headers too) times out after ``request_timeout``
seconds, a body must declare its length, at most the receiver's limit, and
must arrive whole within ``request_timeout`` of the first byte being awaited
(a client that trickles bytes is cut off). ``stop()`` lets requests in flight
finish, so a notification being handled when the stop arrives is handled whole.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How often the serving loop looks for stop(): the most a stop waits for it.
SHUTDOWN_POLL = 0.1
_CHUNK = 65536


class BodyRefused(Exception):
    """A request body that cannot be read: the HTTP status to answer and why."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WebhookServer(ThreadingHTTPServer):
    """A threaded HTTP server with its own serving thread; ``start()`` and ``stop()``.

    An IPv6 listen address (``::``, ``::1``) gets an IPv6 socket. Port 0 picks
    a free port (see :attr:`port`). Binding happens in the constructor, so a
    port in use fails there, with the OSError.
    """

    # Handler threads are joined by server_close(), so a request being handled
    # when a stop arrives is finished before the receiver closes what it holds.
    daemon_threads = False
    block_on_close = True
    # socketserver's default backlog of 5 refuses part of a burst of notifications
    # on a loaded host (the client then waits out SYN retries); 128 takes it.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[WebhookHandler],
        *,
        request_timeout: float,
        thread_name: str,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.request_timeout = request_timeout
        self._thread_name = thread_name
        self._thread: threading.Thread | None = None
        super().__init__(address, handler)

    @property
    def port(self) -> int:
        """The bound port (the real one when the address gave port 0)."""
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port``, with an IPv6 host in brackets."""
        host = str(self.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL},
            name=self._thread_name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, let requests in flight finish, and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=self.request_timeout)
            self._thread = None
        self.server_close()


class WebhookHandler(BaseHTTPRequestHandler):
    """A request handler of a :class:`WebhookServer`: JSON answers, bounded bodies."""

    server: WebhookServer

    def setup(self) -> None:
        super().setup()
        # Every read of the request (its line and headers too) is bounded.
        self.connection.settimeout(self.server.request_timeout)

    def send_json(self, code: int, body: Any) -> None:
        """Answer ``body`` as JSON, without ``log_request`` (each receiver logs its own way).

        After an error the connection is closed: its body may be unread.
        """
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        if code >= 400:
            self.close_connection = True
        self.send_response_only(code)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self, max_bytes: int) -> bytes:
        """The whole body, within the deadline; :class:`BodyRefused` when it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise BodyRefused(411, "chunked bodies are not accepted: send Content-Length")
        header = self.headers.get("Content-Length")
        if header is None:
            raise BodyRefused(411, "Content-Length is required")
        try:
            length = int(header)
        except ValueError:
            length = -1
        if length < 0:
            raise BodyRefused(400, f"bad Content-Length {header!r}")
        if length > max_bytes:
            raise BodyRefused(413, f"body of {length} bytes is over {max_bytes}")
        deadline = time.monotonic() + self.server.request_timeout
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
            raise BodyRefused(408, "the body did not arrive in time") from None
        finally:
            self.connection.settimeout(self.server.request_timeout)  # for the next request
        if remaining:
            raise BodyRefused(400, f"body ended after {length - remaining} of {length} bytes")
        return b"".join(parts)


__all__ = ["SHUTDOWN_POLL", "BodyRefused", "WebhookHandler", "WebhookServer"]
