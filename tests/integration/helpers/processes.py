"""Finding processes from /proc, so a test can prove it left none behind.

An integration run starts Prometheus, Alertmanager and the demo. "No orphans"
is checked two ways: by the pids the runner reported, and by scanning every
live process for a marker only our processes carry (the per-session working
directory or a port in their command line), which also catches a process the
runner forgot to record.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    state: str
    cmdline: str


def process_info(pid: int) -> ProcessInfo | None:
    """What /proc says about ``pid``, or None when it does not exist (or is unreadable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Field 2 (comm) is parenthesised and may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return ProcessInfo(pid=pid, ppid=int(fields[1]), state=fields[0], cmdline=cmdline)


def alive(pid: int) -> bool:
    """True for a process that exists and is not a zombie waiting to be reaped."""
    info = process_info(pid)
    return info is not None and info.state not in ("Z", "X")


def all_processes() -> list[ProcessInfo]:
    infos = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = process_info(int(entry))
            if info is not None:
                infos.append(info)
    return infos


def live_processes_mentioning(*needles: str) -> list[ProcessInfo]:
    """Live processes (not this one) whose command line contains any of ``needles``."""
    me = os.getpid()
    return [
        p
        for p in all_processes()
        if p.pid != me
        and p.state not in ("Z", "X")
        and any(needle and needle in p.cmdline for needle in needles)
    ]


def kill_leftovers(pids: list[int]) -> list[int]:
    """SIGKILL each pid still alive and return those that were: a safety net, not the cleanup.

    Teardown relies on the runner's own stop; this only runs afterwards, so a
    leak is both reported (the caller fails the test) and cleaned up (the next
    run is not disturbed).
    """
    survivors = [pid for pid in pids if alive(pid)]
    for pid in survivors:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    return survivors
