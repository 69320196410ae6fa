"""Writing a file so that a reader sees the old content or the new one, never half of it.

Reports are mailed, the Prometheus textfile is scraped, the learnt-MAC state and the lab's
state are read by the next run: each is written to a temp file beside the target (same file
system, so the rename is atomic), flushed to disk, then renamed over the target. A run killed
mid-write (cron's timeout, kill -9, a full disk) leaves the old file whole.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

# Permissions of a fixed-name temp file before the umask (as ``open()`` would create it).
_MODE = 0o666


def write_atomic(path: str | Path, data: bytes, *, tmp_name: str | None = None) -> None:
    """Writes ``data`` to ``path`` atomically.

    ``tmp_name``: a fixed hidden name beside the target, so that a killed run leaves at most that
    one file, which the next run overwrites (the file gets the usual permissions). Without it a
    unique name (``.<name>.<random>.tmp``, readable by the owner only): two writers at once
    never share a temp file. On an error the temp file is removed and the error raised; the
    target is untouched.
    """
    target = Path(path)
    if tmp_name is not None:
        tmp = target.with_name(tmp_name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), _MODE)
    else:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
