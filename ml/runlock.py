"""One run at a time per warehouse: an exclusive lock on `<warehouse>.lock`.

DuckDB allows one writer per file, and a Teal run writes for many minutes; two runs that
interleave corrupt nothing only by luck. Every run holds this lock from its first step to its
last (the Dagster code location takes it when a run starts, see orchestration/defs/resources.py),
and a run that finds it held stops at once, saying which run holds it and since when.

The lock is an advisory `flock` on a small file beside the warehouse, so the operating system
releases it when the holding process ends, however it ends: a crashed run never leaves a stale
lock behind. The file's text names the holder (run id, process, start time) for the message.
Within one process the lock is re-entrant: the run command and the run's own resources may
both ask for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_HELD: dict[Path, list] = {}  # lock path -> [open file, depth], for this process
_GUARD = threading.Lock()


@dataclass(frozen=True)
class Holder:
    """Who holds a warehouse's lock."""

    run_id: str
    pid: int
    started_at: str

    def describe(self) -> str:
        return f"run {self.run_id} (process {self.pid}, started {self.started_at} UTC)"


class RunInProgress(RuntimeError):
    """Another run holds the warehouse; the message names it and says what to do."""

    def __init__(self, warehouse: Path, holder: Holder | None):
        self.warehouse = warehouse
        self.holder = holder
        who = holder.describe() if holder else "another run"
        super().__init__(
            f"{who} is using the warehouse {warehouse}; this run stopped before doing "
            "anything. Wait for that run to finish (the Dagster UI, `make dev`, shows it) "
            "and start again; runs started from the UI, the schedule or the sensor wait in "
            "Dagster's queue on their own."
        )


def lock_path(warehouse: Path) -> Path:
    return Path(warehouse).with_name(Path(warehouse).name + ".lock")


def holder_of(warehouse: Path) -> Holder | None:
    """The holder written in the lock file, if any (it may be stale: only `flock` is authority)."""
    try:
        data = json.loads(lock_path(warehouse).read_text(encoding="utf-8") or "{}")
        return Holder(str(data["run_id"]), int(data["pid"]), str(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def warehouse_lock(warehouse: Path, run_id: str) -> Iterator[Path]:
    """Hold the warehouse's run lock for the duration of the block, or raise RunInProgress."""
    path = lock_path(Path(warehouse).resolve())
    with _GUARD:
        entry = _HELD.get(path)
        if entry is not None:
            entry[1] += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held across the block)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                raise RunInProgress(Path(warehouse), holder_of(Path(warehouse))) from None
            handle.seek(0)
            handle.truncate()
            started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            handle.write(json.dumps({"run_id": run_id, "pid": os.getpid(), "started_at": started}))
            handle.flush()
            _HELD[path] = [handle, 1]
    try:
        yield path
    finally:
        with _GUARD:
            entry = _HELD[path]
            entry[1] -= 1
            if entry[1] == 0:
                handle = entry[0]
                handle.seek(0)
                handle.truncate()
                handle.flush()
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
                del _HELD[path]
