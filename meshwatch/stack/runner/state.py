"""Pid files, and whether the process (group) a pid file names is still ours and alive.

Every native process runs in its own session, so its pid is also its process
group id and stopping the group stops anything it spawned. A pid file alone
is not proof of identity (pids are reused), so it also records the kernel's
start time of the process: a live process with that pid but another start
time is someone else's and is never signalled.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from meshwatch.stack.runner.workdir import write_json

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessRecord:
    """What ``up`` wrote about one process it started."""

    name: str
    pid: int
    pgid: int
    argv: tuple[str, ...]
    start_ticks: int | None
    log: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {**asdict(self), "argv": list(self.argv)})

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        """The record in ``path``; None when it is missing or not a record (a stale file)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                name=str(data["name"]),
                pid=int(data["pid"]),
                pgid=int(data["pgid"]),
                argv=tuple(str(a) for a in data["argv"]),
                start_ticks=None if data["start_ticks"] is None else int(data["start_ticks"]),
                log=str(data["log"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0]); None if absent."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot); None where /proc is absent."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None else None


def pid_alive(pid: int) -> bool:
    """True for an existing process that is not a zombie."""
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] not in ("Z", "X")
    if _PROC.is_dir():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_ours(record: ProcessRecord) -> bool:
    """True when ``record.pid`` is alive and is the very process ``up`` started."""
    if not pid_alive(record.pid):
        return False
    return record.start_ticks is None or start_ticks(record.pid) == record.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``.

    A process group id cannot be handed to a new process while any member of
    the group exists, so members found here are the ones we started.
    """
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            return [pgid]
        return [pgid]
    members = []
    for entry in os.listdir(_PROC):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                members.append(int(entry))
    return members
