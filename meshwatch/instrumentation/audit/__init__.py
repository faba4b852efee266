"""A durable audit trail: bus events persisted to SQLite, queryable after restarts.

::

    trail = AuditTrail("audit.db", max_age=30 * 86400).attach(bus)
    ...
    trail.reader.query(AuditFilter(agent_did="did:mesh:analyst"), limit=20)
    trail.close()  # flushes what is queued

Three modules, one job each: :mod:`.schema` is the file format (its marks, the
table, opening a file safely, encoding rows); :mod:`.query` reads it (one
frozen :class:`AuditFilter`, a read-only :class:`AuditReader`); :mod:`.writer`
persists bus events on a thread of its own (:class:`AuditTrail`, which holds a
reader rather than being one).

Standard library only (``sqlite3``); no prometheus_client, no opentelemetry.
"""

from meshwatch.instrumentation.audit.query import AuditFilter, AuditReader, normalise_trace_id
from meshwatch.instrumentation.audit.schema import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    AuditDatabaseError,
    AuditRecord,
    open_database,
    tune_writer,
)
from meshwatch.instrumentation.audit.writer import AuditTrail

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "AuditDatabaseError",
    "AuditFilter",
    "AuditReader",
    "AuditRecord",
    "AuditTrail",
    "normalise_trace_id",
    "open_database",
    "tune_writer",
]
