"""One monitor run at a time per history database: an advisory lock file next to it.

``filelock`` takes the OS's own lock: ``flock`` on Linux and macOS, ``msvcrt.locking`` on
Windows (which has no ``fcntl``). Both are released by the OS when the process dies (even by
``kill -9``), so a crashed run never leaves a stale lock behind, unlike a PID file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

# How often a waiting run retries the lock, s: short next to a run's duration (~1 s).
POLL_S = 0.05


class LockBusy(RuntimeError):
    """Another run holds the lock; the message is the lock file's path."""


@contextmanager
def run_lock(db_path: Path, wait_s: float | None = None) -> Iterator[None]:
    """Holds ``<db>.lock`` for the block; raises ``LockBusy`` (at once, or after ``wait_s``)."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # Not a per-path singleton: two runs in one process must exclude each other too. Never a soft
    # (file-exists) lock: that one would outlive a killed run. The file stays, as flock wants.
    lock = filelock.FileLock(
        lock_path, is_singleton=False, fallback_to_soft=False, preserve_lock_file=True
    )
    try:
        lock.acquire(timeout=wait_s or 0.0, poll_interval=POLL_S)
    except filelock.Timeout:
        raise LockBusy(str(lock_path)) from None
    try:
        yield
    finally:
        lock.release()
