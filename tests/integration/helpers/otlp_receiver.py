"""An OTLP/HTTP trace receiver that decodes the real protobuf, and can be made slow or broken.

The demo exports spans with the OpenTelemetry SDK's OTLP/HTTP exporter. This
server accepts ``POST /v1/traces``, parses the body as
``ExportTraceServiceRequest`` from the ``opentelemetry-proto`` package (the
same message a collector or Tempo would parse), and keeps every span in a
flat, easy-to-assert form. Fault tests flip :attr:`mode` to make the export
path slow or failing while the demo runs.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.integration.helpers.net import LOOPBACK
from tests.integration.helpers.poll import wait_until

Mode = Literal["ok", "slow", "error"]


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span. Ids are lowercase hex; the root's ``parent_span_id`` is ""."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    attributes: Mapping[str, Any]
    resource: Mapping[str, Any]
    scope: str


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue`` (arrays as tuples, kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: list[KeyValue] | Any) -> dict[str, Any]:
    """A repeated ``KeyValue`` field as a dict."""
    return {kv.key: any_value(kv.value) for kv in pairs}


def decode_spans(body: bytes) -> list[ReceivedSpan]:
    """Every span of one ``ExportTraceServiceRequest`` body (raises on a malformed body)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=int(span.kind),
                        start_ns=int(span.start_time_unix_nano),
                        end_ns=int(span.end_time_unix_nano),
                        status_code=int(span.status.code),
                        attributes=attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


class OtlpReceiver:
    """A threaded OTLP/HTTP server on 127.0.0.1 collecting spans.

    ``mode`` may be changed at any time: ``"ok"`` answers at once, ``"slow"``
    holds each request for ``delay`` seconds before answering, ``"error"``
    answers 503 (which the SDK exporter treats as retryable, then gives up).
    A receiver that is *down* is one that was never started or was stopped:
    connections to its port are refused.
    """

    def __init__(self, port: int = 0, *, mode: Mode = "ok", delay: float = 5.0) -> None:
        self.mode: Mode = mode
        self.delay = delay
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._requests = 0
        self._rejected = 0
        self._server = ThreadingHTTPServer((LOOPBACK, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The base URL to give an OTLP/HTTP exporter (it appends /v1/traces)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def traces_url(self) -> str:
        return f"{self.endpoint}/v1/traces"

    def start(self) -> OtlpReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; a slow handler still sleeping is woken so shutdown is prompt."""
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def request_count(self) -> int:
        """Export requests received, whatever the mode answered."""
        with self._lock:
            return self._requests

    def spans(self) -> list[ReceivedSpan]:
        """Every span accepted so far (not those answered with an error), in arrival order."""
        with self._lock:
            return list(self._spans)

    def traces(self) -> dict[str, list[ReceivedSpan]]:
        """Accepted spans grouped by trace id."""
        grouped: dict[str, list[ReceivedSpan]] = {}
        for span in self.spans():
            grouped.setdefault(span.trace_id, []).append(span)
        return grouped

    def _accept(self, body: bytes) -> int:
        """Store the spans of one request; returns the HTTP status to answer with."""
        with self._lock:
            self._requests += 1
        mode = self.mode
        if mode == "slow":
            self._stopping.wait(self.delay)
        if mode == "error":
            return 503
        try:
            spans = decode_spans(body)
        except Exception:  # protobuf raises DecodeError; any failure means "not OTLP"
            return 400
        with self._lock:
            self._spans.extend(spans)
        return 200

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                if self.path.split("?")[0] != "/v1/traces":
                    self._answer(404, b"")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                status = receiver._accept(body)
                payload = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
                self._answer(status, payload)

            def _answer(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    # A slow answer outlived the exporter's timeout: the client hung up,
                    # which is the behaviour under test, not an error of the receiver.
                    self.close_connection = True

            def log_message(self, format: str, *args: object) -> None:
                """Silence per-request logging: pytest shows failures, not traffic."""

        return Handler


def wait_for_spans(receiver: OtlpReceiver, count: int, timeout: float) -> list[ReceivedSpan]:
    """At least ``count`` spans, waiting up to ``timeout`` seconds (raises AssertionError)."""
    wait_until(lambda: len(receiver.spans()) >= count, timeout=timeout, what=f"{count} spans")
    return receiver.spans()
