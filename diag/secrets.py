"""Reading a secret (a device password) from ``env:NAME`` or ``file:/path``, failing with a word.

What can go wrong is said as one of a few fixed reasons (``REASONS``), never as an exception's
text: a decode error quotes the offending byte and its position (a byte of the password), an
``OSError`` quotes the path and more. The value itself only ever goes to the code that hashes it
into a login.

Files are opened without blocking (``O_NONBLOCK``: opening a FIFO for reading with no writer
blocked forever, on the event loop, out of the deadline's reach) and read only when ``fstat``
says they are regular files: a FIFO, a character device (``/dev/zero`` would be read forever)
or a directory is ``not-regular``. At most ``MAX_SECRET_BYTES`` are read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Literal

Reason = Literal[
    "missing",
    "not-regular",
    "unreadable",
    "not-utf8",
    "too-large",
    "empty",
    "env-unset",
    "bad-reference",
]
REASONS: tuple[Reason, ...] = (
    "missing",
    "not-regular",
    "unreadable",
    "not-utf8",
    "too-large",
    "empty",
    "env-unset",
    "bad-reference",
)
# A password file larger than this is not a password file, bytes (a key file, a log, a mistake).
MAX_SECRET_BYTES = 4096
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_OPEN_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


@dataclass(frozen=True)
class Secret:
    """The outcome of reading one reference: ``value`` or ``error`` (a reason word).

    ``repr`` never shows the value.
    """

    value: str | None = None
    error: Reason | None = None

    def __repr__(self) -> str:
        return f"Secret(error={self.error!r})" if self.error else "Secret(…)"

    __str__ = __repr__


def read_secret(ref: str) -> Secret:
    """The secret ``ref`` names, or why it cannot be read; never raises."""
    scheme, _, rest = ref.partition(":")
    if scheme == "env" and rest:
        value = os.environ.get(rest)
        if value is None:
            return Secret(error="env-unset")
        return _checked(value)
    if scheme == "file" and rest:
        return _read_file(rest)
    return Secret(error="bad-reference")


def _checked(value: str) -> Secret:
    value = value.strip()
    return Secret(value) if value else Secret(error="empty")


def _read_file(path: str) -> Secret:
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return Secret(error="missing")
    except OSError:
        # Permission, a loop of symlinks, a name too long, a dangling mount: unreadable.
        return Secret(error="unreadable")
    try:
        try:
            info = os.fstat(fd)
        except OSError:
            return Secret(error="unreadable")
        if not stat.S_ISREG(info.st_mode):
            return Secret(error="not-regular")
        if info.st_size > MAX_SECRET_BYTES:
            return Secret(error="too-large")
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= MAX_SECRET_BYTES:
                chunk = os.read(fd, MAX_SECRET_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError:
            return Secret(error="unreadable")
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_SECRET_BYTES:
        return Secret(error="too-large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Not the exception: its text names the byte and its position, part of the password.
        return Secret(error="not-utf8")
    # Notepad writes a byte-order mark before the password: it is not part of it.
    return _checked(text.removeprefix("\ufeff"))


def is_regular_file(path: str) -> bool | None:
    """Whether ``path`` is a regular file (None: it does not exist or cannot be looked at);
    looked at without opening it, so a FIFO never blocks."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return None
