"""The audit database's file format: its marks, its table, and opening it safely.

**Never someone else's file.** The database carries an ``application_id`` and a
schema version (``user_version``) and a ``meta`` table. Opening a file that is
not SQLite, is another application's SQLite database, or comes from a newer
meshwatch raises :class:`AuditDatabaseError` naming the file, *before* anything
is written to it; the file is never modified or replaced.

Rows carry the time (integer microseconds since the epoch), agent, event type,
session and trace id (32 hex, the OpenTelemetry form, so a trace id from Tempo
or a log line finds its events), each with a ``(column, time)`` index so that
"newest first, filtered by one of them" walks an index backwards
(:mod:`~meshwatch.instrumentation.audit.query`).

**Schema versions.** Version 2 adds ``parent_event_id`` (the event a row
follows from: a killed agent's handoffs name the kill), with a partial index
over the rows that have one. A version 1 file is read as it is by a reader (its
rows have no parent), and upgraded in place when a writer opens it: one
transaction adds the column and the index and sets the version, so a crash
leaves either the old file or the upgraded one, never half of each. SQLite adds
a column without rewriting the table, so the upgrade takes the same moment
for a file of any size; old rows read back with no parent.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from meshwatch.instrumentation.events import HypervisorEvent, event_microseconds, trace_of
from meshwatch.instrumentation.logs import json_safe

# "MSHW": marks the file as ours in the SQLite header (PRAGMA application_id).
APPLICATION_ID = 0x4D534857
SCHEMA_VERSION = 2
FORMAT_NAME = "meshwatch-audit"

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_WRITER_CACHE_KIB = 16 * 1024
_CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL between checkpoints
_WAL_LIMIT_BYTES = 64 * 1024 * 1024

_SCHEMA = f"""
BEGIN;
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('format', '{FORMAT_NAME}');
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    ts_us INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    agent_did TEXT,
    session_id TEXT,
    trace_id TEXT,
    causal_trace_id TEXT,
    payload TEXT NOT NULL,
    parent_event_id TEXT
);
CREATE INDEX events_by_time ON events (ts_us);
CREATE INDEX events_by_agent ON events (agent_did, ts_us);
CREATE INDEX events_by_type ON events (event_type, ts_us);
CREATE INDEX events_by_session ON events (session_id, ts_us);
CREATE INDEX events_by_trace ON events (trace_id, ts_us);
{{parent_index}};
COMMIT;
"""
# Only the few events that follow from another are indexed: writing the others costs nothing.
_PARENT_INDEX = (
    "CREATE INDEX events_by_parent ON events (parent_event_id, ts_us)"
    " WHERE parent_event_id IS NOT NULL"
)
_SCHEMA = _SCHEMA.replace("{parent_index}", _PARENT_INDEX)
# Version 1 to 2, in one transaction (BEGIN IMMEDIATE: no other writer in between).
_UPGRADE_FROM_1 = f"""
BEGIN IMMEDIATE;
ALTER TABLE events ADD COLUMN parent_event_id TEXT;
{_PARENT_INDEX};
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""
INSERT = (
    "INSERT INTO events (ts_us, event_id, event_type, agent_did, session_id, trace_id,"
    " causal_trace_id, payload, parent_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
COLUMNS = (
    "seq, ts_us, event_id, event_type, agent_did, session_id, trace_id, causal_trace_id, payload,"
    " parent_event_id"
)
# What a reader selects from a version 1 file, which it reads as it is: no parents.
COLUMNS_V1 = COLUMNS.replace("parent_event_id", "NULL AS parent_event_id")

Row = tuple[int, str, str, str | None, str | None, str | None, str | None, str, str | None]


class AuditDatabaseError(Exception):
    """The audit database cannot be used: corrupt, foreign, too new, or unreachable.

    The message names the file and says why, in one line; ``path`` holds it.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored event, as read back from the trail."""

    seq: int
    event_id: str
    event_type: str
    timestamp: datetime
    agent_did: str | None
    session_id: str | None
    trace_id: str | None
    causal_trace_id: str | None
    payload: Mapping[str, Any]
    parent_event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible, with the same keys as ``HypervisorEvent.to_dict`` plus trace_id.

        ``parent_event_id`` is there only when the event has one, as in
        ``HypervisorEvent.to_dict``.
        """
        data = {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "timestamp": self.timestamp.isoformat(),
            "session_id": self.session_id,
            "agent_did": self.agent_did,
            "causal_trace_id": self.causal_trace_id,
            "trace_id": self.trace_id,
            "payload": dict(self.payload),
        }
        if self.parent_event_id is not None:
            data["parent_event_id"] = self.parent_event_id
        return data

    def to_event(self) -> HypervisorEvent:
        """The event again (for replay). Raises ValueError for an event type this version lacks."""
        return HypervisorEvent.from_dict(self.to_dict())


def to_us(moment: datetime) -> int:
    """Integer microseconds since the epoch: how rows store time (exact, index-friendly)."""
    return (moment - EPOCH) // _MICROSECOND


_VALUE_KEEP_BYTES = 1024  # a truncated payload keeps its values up to this size


def _json(payload: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(payload), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(json_safe(payload), ensure_ascii=False)


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _truncated(payload: Mapping[str, Any], size: int, max_bytes: int) -> str:
    """The payload with its large values replaced by a marker; only its size if still too big."""
    kept: dict[str, Any] = {"_truncated_bytes": size}
    for key, value in payload.items():
        text = _json({"v": value})
        length = _utf8_size(text) - 7  # minus the 7 bytes of {"v": }
        kept[str(key)] = (
            json.loads(text)["v"] if length <= _VALUE_KEEP_BYTES else f"<truncated: {length} bytes>"
        )
    result = _json(kept)
    if _utf8_size(result) > max_bytes:
        result = json.dumps({"_truncated_bytes": size})
    return result


def encode(event: HypervisorEvent, max_payload_bytes: int | None = None) -> tuple[Row, bool]:
    """The row the writer inserts for ``event``, and whether its payload was truncated.

    The payload is stored as JSON (what JSON cannot hold, as text). One longer
    than ``max_payload_bytes`` keeps only its values of up to 1 KiB, the others
    replaced by ``"<truncated: N bytes>"``, and ``_truncated_bytes`` says how
    big it was; so the ids and small fields an auditor filters on survive.
    """
    trace = trace_of(event)
    text = _json(event.payload)
    truncated = False
    if max_payload_bytes is not None and len(text) * 4 > max_payload_bytes:
        size = _utf8_size(text)
        if size > max_payload_bytes:
            text, truncated = _truncated(event.payload, size, max_payload_bytes), True
    row = (
        event_microseconds(event),  # the stored time itself, no datetime built
        event.event_id,
        event.event_type.value,
        event.agent_did,
        event.session_id,
        None if trace is None else trace.trace_id_hex32,
        event.causal_trace_id,
        text,
        event.parent_event_id,
    )
    return row, truncated


def decode(row: tuple[Any, ...]) -> AuditRecord:
    """An :class:`AuditRecord` from a row selected as :data:`COLUMNS` (or :data:`COLUMNS_V1`)."""
    seq, ts_us, event_id, event_type, agent, session, trace_id, causal, payload, parent = row
    try:
        decoded = json.loads(payload)
    except ValueError:
        decoded = {"_unparsed": payload}
    return AuditRecord(
        seq=seq,
        event_id=event_id,
        event_type=event_type,
        timestamp=EPOCH + timedelta(microseconds=ts_us),
        agent_did=agent,
        session_id=session,
        trace_id=trace_id,
        causal_trace_id=causal,
        payload=decoded if isinstance(decoded, dict) else {"_value": decoded},
        parent_event_id=parent,
    )


# --- opening and checking the file ---------------------------------------------------


def _leaves_no_files(path: Path) -> bool:
    """True when no writer has ``path`` open: no ``-wal`` or ``-shm`` file beside it.

    Then a read-only open can be ``immutable``: SQLite takes no locks and
    creates no ``-wal``/``-shm`` files, so a copy on read-only media (archived
    evidence) can be read, and the directory is left exactly as it was.
    """
    return not any(path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-shm"))


def _connect(path: Path, *, read_only: bool, immutable: bool = False) -> sqlite3.Connection:
    try:
        if read_only:
            uri = f"file:{quote(str(path.resolve()))}?mode=ro"
            if immutable:
                uri += "&immutable=1"
            return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise AuditDatabaseError(path, f"cannot open the audit database ({exc})") from None


def _check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise AuditDatabaseError unless ``conn`` is a meshwatch audit database we can read."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        fmt = None
        if "meta" in tables:
            row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
            fmt = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise AuditDatabaseError(
            path, f"not a meshwatch audit database (corrupt or not SQLite: {exc}); left untouched"
        ) from None
    if app_id != APPLICATION_ID:
        raise AuditDatabaseError(
            path,
            f"not a meshwatch audit database (SQLite application_id {app_id:#x}, "
            f"expected {APPLICATION_ID:#x}); left untouched",
        )
    if version > SCHEMA_VERSION:
        raise AuditDatabaseError(
            path,
            f"written by a newer meshwatch (audit schema {version}; this version reads "
            f"up to {SCHEMA_VERSION}); left untouched",
        )
    if fmt != FORMAT_NAME or "events" not in tables:
        raise AuditDatabaseError(path, "damaged meshwatch audit database (tables missing)")


def _check_pages(conn: sqlite3.Connection, path: Path) -> None:
    """Raise AuditDatabaseError if SQLite's quick_check finds damage (a write would fail)."""
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.DatabaseError as exc:
        rows = [(str(exc),)]
    problem = str(rows[0][0]) if rows else "no answer"
    if problem != "ok":
        raise AuditDatabaseError(
            path, f"corrupt meshwatch audit database (quick_check: {problem}); left untouched"
        )


def open_database(path: Path | str, *, create: bool) -> sqlite3.Connection:
    """A checked connection to the audit database at ``path`` (autocommit mode).

    With ``create``, a missing or empty file becomes a new audit database, and
    an existing one must pass ``quick_check``; without, the file must exist and
    is opened read-only, creating nothing beside it when no writer has it open.
    Raises :class:`AuditDatabaseError` for anything unusable, before writing a
    byte.
    """
    path = Path(path)
    is_new = not path.exists() or (path.is_file() and path.stat().st_size == 0)
    if is_new and not create:
        raise AuditDatabaseError(path, "no audit database at this path")
    if path.exists() and not path.is_file():
        raise AuditDatabaseError(path, "not a file")
    if not is_new and not create:
        conn = _connect(path, read_only=True, immutable=_leaves_no_files(path))
        try:
            _check(conn, path)
        except AuditDatabaseError:
            conn.close()
            raise
        return conn
    if not is_new:
        # Check through a read-only connection first: nothing is written to a
        # file until we know it is ours, and none of what will be written to
        # is damaged (quick_check reads every page, but not the index contents).
        probe = _connect(path, read_only=True, immutable=_leaves_no_files(path))
        try:
            _check(probe, path)
            _check_pages(probe, path)
        finally:
            probe.close()
    conn = _connect(path, read_only=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        if is_new:
            conn.executescript(_SCHEMA)
        _check(conn, path)
        if schema_version(conn) == 1:
            _upgrade_from_1(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise AuditDatabaseError(path, f"cannot initialise the audit database ({exc})") from None
    except AuditDatabaseError:
        conn.close()
        raise
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the audit database behind ``conn`` (checked by ``open_database``)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def columns_for(conn: sqlite3.Connection) -> str:
    """What to select from ``conn``'s events for :func:`decode`: a version 1 file has no parents."""
    return COLUMNS_V1 if schema_version(conn) == 1 else COLUMNS


def _upgrade_from_1(conn: sqlite3.Connection, path: Path) -> None:
    """Add version 2's column and index in one transaction; on any error the file stays v1."""
    try:
        conn.executescript(_UPGRADE_FROM_1)
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise AuditDatabaseError(
            path, f"cannot upgrade the audit database from schema 1 ({exc}); left at schema 1"
        ) from None


def connect_reader(path: Path | str) -> sqlite3.Connection:
    """A read-only connection to ``path`` for a process that also writes it (no checks)."""
    return _connect(Path(path), read_only=True)


def tune_writer(conn: sqlite3.Connection, synchronous: str = "NORMAL") -> None:
    """The writer connection's settings (also used by the benchmark's raw-SQLite baseline).

    Five indexes with random keys dirty many pages per batch: a larger page
    cache and rarer checkpoints (each one fsyncs) roughly triple throughput.
    """
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KIB}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")


__all__ = [
    "APPLICATION_ID",
    "COLUMNS",
    "COLUMNS_V1",
    "FORMAT_NAME",
    "INSERT",
    "SCHEMA_VERSION",
    "AuditDatabaseError",
    "AuditRecord",
    "Row",
    "columns_for",
    "connect_reader",
    "decode",
    "encode",
    "open_database",
    "schema_version",
    "to_us",
    "tune_writer",
]
