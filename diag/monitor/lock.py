"""One monitor run at a time per history database: an advisory lock file next to it.

``flock`` is released by the kernel when the process dies (even by ``kill -9``), so a crashed run
never leaves a stale lock behind, unlike a PID file.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# How often a waiting run retries the lock, s: short next to a run's duration (~1 s).
POLL_S = 0.05


class LockBusy(RuntimeError):
    """Another run holds the lock; the message is the lock file's path."""


@contextmanager
def run_lock(db_path: Path, wait_s: float | None = None) -> Iterator[None]:
    """Holds ``<db>.lock`` for the block; raises ``LockBusy`` (at once, or after ``wait_s``)."""
    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + (wait_s or 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if wait_s is None or time.monotonic() >= deadline:
                    raise LockBusy(str(lock_path)) from None
                time.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
