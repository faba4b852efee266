"""The built-in alert sink: somewhere real for Alertmanager's notifications to go.

A fresh ``make up`` has no Slack, e-mail or PagerDuty to send to. Without a
listener every notification would fail, and the first alert a new user saw
would be ``AlertmanagerNotificationsFailing`` paging about the stack itself.
So receivers without a URL post to this small server, which ``meshwatch up``
runs beside Alertmanager:

* ``POST /<receiver>`` (``/critical``, ``/warning``) takes an Alertmanager
  webhook notification (JSON, ``"version": "4"``), appends one JSON line per
  notification to a file and prints one human line per alert to stdout (the
  component's log). A body that is not such a notification is answered 400
  and logged; a body over :data:`MAX_BODY_BYTES` is refused (413) unread.
* ``GET /notifications?limit=N`` answers the newest N notifications (oldest
  first, as in the file), so a user or a test can read them over HTTP.
* ``GET /-/ready`` answers 200 once it serves: ``meshwatch status`` asks it.

Standard library only: it runs wherever meshwatch is installed, including the
compose service built from the demo's image.

>>> with AlertSink("notifications.jsonl", port=0) as sink:   # doctest: +SKIP
...     print(sink.url)
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from meshwatch.webhook.payload import PayloadError, alert_object, envelope, string_map
from meshwatch.webhook.server import BodyRefused, WebhookHandler, WebhookServer

# The file's name where meshwatch keeps it (the working directory's logs/, the compose volume).
NOTIFICATIONS_FILE = "alert-notifications.jsonl"
READY_PATH = "/-/ready"
NOTIFICATIONS_PATH = "/notifications"
# Alertmanager sends every alert of a group in one body (about 1-2 KiB each,
# with no cap by default): 4 MiB holds groups of thousands of alerts while
# bounding what one request can make the sink hold in memory.
MAX_BODY_BYTES = 4 * 1024 * 1024
# How many notifications /notifications can answer from memory (read back
# from the file's tail at start, so a restart keeps them).
KEEP = 1000
DEFAULT_LIMIT = 20
# Seconds a client may take over one request before its connection is dropped,
# so a stalled client cannot hold a handler thread forever.
REQUEST_TIMEOUT = 10.0
_RECEIVER_PATH = re.compile(r"^/(?P<receiver>[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _alert(index: int, value: Any) -> dict[str, Any]:
    alert = alert_object(index, value)
    where = f"alerts[{index}]"
    labels = string_map(alert.get("labels"), f"{where}.labels")
    annotations = string_map(alert.get("annotations"), f"{where}.annotations")
    return {
        "alertname": labels.get("alertname", ""),
        "severity": labels.get("severity", ""),
        "status": alert["status"],
        "labels": labels,
        "summary": annotations.get("summary", ""),
        "runbook_url": annotations.get("runbook_url", ""),
        "startsAt": str(alert.get("startsAt", "")),
        "endsAt": str(alert.get("endsAt", "")),
    }


def parse_notification(receiver: str, body: bytes, received_at: str) -> dict[str, Any]:
    """The record kept for one webhook body; :class:`PayloadError` if it is not a notification."""
    payload, alerts = envelope(body)
    truncated = payload.get("truncatedAlerts", 0)
    return {
        "received_at": received_at,
        "receiver": receiver,
        "status": payload["status"],
        "groupKey": str(payload.get("groupKey", "")),
        "truncatedAlerts": truncated if isinstance(truncated, int) else 0,
        "alerts": [_alert(i, alert) for i, alert in enumerate(alerts)],
    }


def _loggable(line: str) -> str:
    """``line`` as one line any log can take: control characters escaped, lone surrogates too.

    Labels and annotations come from the request: a newline in one must not
    split the alert's line, and a lone surrogate (valid in JSON, not in UTF-8)
    must not make writing to stdout fail after the notification was stored.
    """
    if line.isprintable() and line.isascii():
        return line
    return "".join(
        c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else repr(c)[1:-1] for c in line
    )


def alert_line(notification: Mapping[str, Any], alert: Mapping[str, Any]) -> str:
    """One alert of a notification as a log line a person reads."""
    subject = " ".join(
        f"{key}={value}"
        for key, value in sorted(alert["labels"].items())
        if key not in ("alertname", "severity")
    )
    text = (
        f"{notification['received_at']} /{notification['receiver']} "
        f"{alert['status'].upper()} {alert['alertname'] or '(no alertname)'} "
        f"[{alert['severity'] or 'no severity'}]"
    )
    if subject:
        text += f" {subject}"
    if alert["summary"]:
        text += f": {alert['summary']}"
    return text


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_tail(path: Path, count: int, block: int = 65536) -> list[dict[str, Any]]:
    """The last ``count`` notifications recorded in ``path`` (oldest first); [] without a file.

    Reads backwards from the end, so a long history costs only its tail.
    Lines that do not parse (a write cut short by a crash) are skipped.
    """
    if count <= 0:
        return []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        position = handle.seek(0, 2)
        data = b""
        while True:
            if position == 0 or data.count(b"\n") > count:
                lines = data.split(b"\n")
                # Unless the file's start was reached, the first line is cut by the block edge.
                complete = lines if position == 0 else lines[1:]
                records = [r for r in map(_record, complete) if r is not None]
                if len(records) >= count or position == 0:
                    return records[-count:]
            step = min(block, position)
            position -= step
            handle.seek(position)
            data = handle.read(step) + data


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


class AlertSink:
    """A threaded HTTP server that records Alertmanager notifications to ``log_path``.

    ``out`` receives the human lines (default: stdout). ``start()`` serves in
    a background thread; ``stop()`` (or leaving the ``with`` block) stops
    serving and closes the file. Port 0 picks a free port (see :attr:`url`).
    """

    def __init__(
        self,
        log_path: str | Path,
        *,
        addr: str = "127.0.0.1",
        port: int = 9099,
        max_body: int = MAX_BODY_BYTES,
        keep: int = KEEP,
        out: TextIO | None = None,
    ) -> None:
        self.log_path = Path(log_path)
        self.max_body = max_body
        self.keep = keep
        self._out = out if out is not None else sys.stdout
        self._lock = threading.Lock()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._recent: deque[dict[str, Any]] = deque(read_tail(self.log_path, keep), maxlen=keep)
        self._file = self.log_path.open("a", encoding="utf-8")
        if self._file.tell() > 0 and not _ends_with_newline(self.log_path):
            self._file.write("\n")  # a line cut short by a crash must not swallow the next one
        try:
            self._server = _Server((addr, port), self)
        except BaseException:
            self._file.close()
            raise

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.base_url

    def start(self) -> AlertSink:
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving, let requests in flight finish (each bounded by
        :data:`REQUEST_TIMEOUT`), then close the file."""
        self._server.stop()
        with self._lock:
            self._file.close()

    def __enter__(self) -> AlertSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the handler calls --------------------------------------------------

    def say(self, line: str) -> None:
        """Write one line to the sink's log (stdout), whole, even from concurrent handlers."""
        with self._lock:
            print(_loggable(line), file=self._out, flush=True)

    def record(self, notification: dict[str, Any]) -> None:
        """Append ``notification`` to the file and the in-memory tail, and log its alerts."""
        line = json.dumps(notification, sort_keys=True, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
            self._recent.append(notification)
            for alert in notification["alerts"]:
                print(_loggable(alert_line(notification, alert)), file=self._out)
            self._out.flush()

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` notifications, oldest first."""
        with self._lock:
            recent = list(self._recent)
        return recent[-limit:] if limit > 0 else []


class _Server(WebhookServer):
    def __init__(self, address: tuple[str, int], sink: AlertSink) -> None:
        self.sink = sink
        super().__init__(
            address, _Handler, request_timeout=REQUEST_TIMEOUT, thread_name="alert-sink"
        )


class _Handler(WebhookHandler):
    server: _Server
    server_version = "meshwatch-alert-sink"

    # -- responses (send_json logs nothing per request: readiness polls would
    # drown the alerts, and rejections log their own line) ----------------------

    def _reject(self, code: int, reason: str) -> None:
        self.server.sink.say(
            f"{_now()} rejected {self.command} {self.path} from {self.client_address[0]}: "
            f"HTTP {code}: {reason}"
        )
        self.send_json(
            code, {"error": reason}
        )  # which closes the connection: the body may be unread

    def log_message(self, format: str, *args: Any) -> None:
        """Protocol errors the base class reports (a garbled request line) go to the sink's log."""
        self.server.sink.say(f"{_now()} {self.client_address[0]}: {format % args}")

    # -- methods -----------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == READY_PATH:
            self.send_json(200, {"status": "ready"})
        elif url.path == NOTIFICATIONS_PATH:
            self._notifications(url.query)
        else:
            self._reject(404, f"no such page; GET {NOTIFICATIONS_PATH} or {READY_PATH}")

    def _notifications(self, query: str) -> None:
        values = parse_qs(query).get("limit", [str(DEFAULT_LIMIT)])
        keep = self.server.sink.keep
        try:
            limit = int(values[-1])
        except ValueError:
            limit = -1
        if not 1 <= limit <= keep:
            self._reject(400, f"limit must be a whole number from 1 to {keep}")
            return
        self.send_json(200, {"notifications": self.server.sink.newest(limit)})

    def do_POST(self) -> None:
        match = _RECEIVER_PATH.match(urlsplit(self.path).path)
        if match is None:
            self._reject(404, "post notifications to /<receiver>, e.g. /critical")
            return
        sink = self.server.sink
        try:
            notification = parse_notification(
                match["receiver"], self.read_body(sink.max_body), _now()
            )
        except BodyRefused as refused:
            self._reject(refused.code, refused.reason)
            return
        except PayloadError as exc:
            self._reject(400, str(exc))
            return
        try:
            sink.record(notification)
        except OSError as exc:
            # Not stored: a 5xx makes Alertmanager retry, and count the failure.
            self._reject(500, f"cannot write {sink.log_path}: {exc}")
            return
        self.send_json(200, {"status": "recorded", "alerts": len(notification["alerts"])})


__all__ = [
    "MAX_BODY_BYTES",
    "NOTIFICATIONS_FILE",
    "NOTIFICATIONS_PATH",
    "READY_PATH",
    "AlertSink",
    "PayloadError",
    "alert_line",
    "parse_notification",
    "read_tail",
]
