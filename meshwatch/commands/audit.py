"""``meshwatch audit query --db PATH [filters]``: read the durable audit trail.

Opens the database read-only: it never writes, so it is safe on a live trail
and on a file that turns out not to be ours, and a closed trail's file is read
without creating anything beside it, so a copy on read-only media can be
queried. Prints a table by default and one JSON object per line with
``--json``, newest first. When a shown event follows from another (a killed
agent's saga handoffs follow from the kill), the table adds each event's ID
and its PARENT; ``--parent ID`` lists the events that follow from one. ``--remediation`` shows the remediation receiver's
decisions instead: when, which alert, which agent, what was done (or would
have been, in a dry run, or why not), and by whom.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta

from meshwatch.commands.shared import CommandError
from meshwatch.instrumentation import EventType
from meshwatch.instrumentation.audit import (
    AuditDatabaseError,
    AuditFilter,
    AuditReader,
    AuditRecord,
)

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PAYLOAD_WIDTH = 80
_EVENT_TYPES = frozenset(t.value for t in EventType)


def parse_time(text: str, flag: str, *, now: datetime | None = None) -> datetime:
    """``--since``/``--until`` values: ISO 8601 (naive = UTC) or a duration ago (``15m``, ``2h``)."""
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
        except OverflowError:
            raise CommandError(f"{flag} {text!r}: that is too long ago", exit_code=2) from None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"{flag} {text!r}: expected an ISO 8601 time or a duration such as 15m, 2h, 7d",
            exit_code=2,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _row(record: AuditRecord, links: bool) -> tuple[str, ...]:
    payload = json.dumps(record.payload, ensure_ascii=False, default=str)
    if len(payload) > _PAYLOAD_WIDTH:
        payload = payload[: _PAYLOAD_WIDTH - 3] + "..."
    ids = (record.event_id, record.parent_event_id or "-") if links else ()
    return (
        record.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        *ids,
        record.event_type,
        record.agent_did or "-",
        record.session_id or "-",
        record.trace_id or "-",
        payload,
    )


def _table(records: list[AuditRecord]) -> str:
    # The ID and PARENT columns only when some shown event follows from another.
    links = any(r.parent_event_id is not None for r in records)
    header = ("TIME", *(("ID", "PARENT") if links else ()), "TYPE", "AGENT", "SESSION", "TRACE")
    rows = [(*header, "PAYLOAD"), *(_row(r, links) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )


def _decision_row(record: AuditRecord) -> tuple[str, ...]:
    p = record.payload
    result = str(p.get("result", "?"))
    if p.get("dry_run") and result == "dry_run":
        result = "dry_run (would)"
    return (
        record.timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        str(p.get("alertname") or "-"),
        record.agent_did or "-",
        str(p.get("action") or "-"),
        result,
        str(p.get("actor") or "-"),
        str(p.get("reason") or p.get("detail") or "-"),
    )


def _decisions(records: list[AuditRecord]) -> str:
    header = ("TIME", "ALERT", "AGENT", "ACTION", "RESULT", "BY", "WHY / WHAT")
    rows = [header, *map(_decision_row, records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )


def run(args: argparse.Namespace) -> int:
    """Query the audit trail, newest first."""
    if args.type is not None and args.type not in _EVENT_TYPES:
        raise CommandError(
            f"--type {args.type!r}: not an event type (e.g. ring.breach_detected;"
            " `meshwatch audit query --help` lists them)",
            exit_code=2,
        )
    since = None if args.since is None else parse_time(args.since, "--since")
    until = None if args.until is None else parse_time(args.until, "--until")
    event_type = args.type
    if args.remediation:
        if args.type is not None and args.type != EventType.REMEDIATION_DECIDED.value:
            raise CommandError(
                "--remediation shows remediation decisions: leave out --type", exit_code=2
            )
        event_type = EventType.REMEDIATION_DECIDED.value
    try:
        where = AuditFilter(
            agent_did=args.agent,
            event_type=event_type,
            session_id=args.session,
            trace_id=args.trace,
            since=since,
            until=until,
            parent_event_id=args.parent,
        )
        with AuditReader(args.db) as reader:
            records = reader.query(where, limit=args.limit, offset=args.offset)
    except AuditDatabaseError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    except ValueError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    if args.json:
        for record in records:
            print(json.dumps(record.to_dict(), ensure_ascii=False, default=str))
    elif records:
        print(_decisions(records) if args.remediation else _table(records))
    else:
        print("no stored events match", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="query the durable audit trail (SQLite)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    actions.required = True
    query = actions.add_parser(
        "query", help="stored events matching every filter, newest first", description=run.__doc__
    )
    query.add_argument("--db", required=True, help="the audit database file")
    query.add_argument("--agent", help="agent DID")
    query.add_argument(
        "--type",
        help="event type, one of: " + ", ".join(sorted(_EVENT_TYPES)),
    )
    query.add_argument("--session", help="session id")
    query.add_argument("--trace", help="trace id (32 or 12 hex, causal id, or traceparent)")
    query.add_argument("--parent", help="only the events that follow from this event id")
    query.add_argument("--since", help="from this time on (ISO 8601, or 15m / 2h / 7d ago)")
    query.add_argument("--until", help="before this time (same forms as --since)")
    query.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    query.add_argument("--offset", type=int, default=0, help="skip this many newest matches")
    query.add_argument("--json", action="store_true", help="one JSON object per line")
    query.add_argument(
        "--remediation",
        action="store_true",
        help="the remediation receiver's decisions: alert, agent, action, result, by whom",
    )
    query.set_defaults(func=run)
