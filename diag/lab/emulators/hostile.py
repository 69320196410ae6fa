"""Hostile device answers: a camera's web server that is broken or malicious, one mode per device.

The device emulator (``device.py``) hands each HTTP request here first when its config names a
``hostile`` mode; ``None`` back means "answer as the normal device would". The same answers
serve the loopback unit tests through ``serve()``. Modes:

- ``digest-empty-nonce``, ``digest-bare-token``, ``digest-algorithm``, ``digest-auth-int``,
  ``digest-non-ascii-realm``: every request gets a 401 with that malformed Digest challenge
  (``nonce=""``; a bare ``stale``; ``algorithm=FOO``; ``qop="auth-int"`` only; a realm with
  non-ASCII letters);
- ``trickle-headers``: the status line and headers at 1 byte/s, forever;
- ``trickle-body``: headers at once, then a declared 64 kB body at 1 byte/s;
- ``malformed-xml``: 200 with a truncated XML document and an undefined entity;
- ``control-chars``: 200 with ISAPI device info whose name and model carry C1 CSI, NEL and bidi
  overrides (text from outside that every output must escape).

Nothing here knows the password: the answers are the same whoever asks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from diag.lab.emulators import Request, discard_body, http_connection, response_head, send

DIGEST_CHALLENGES: dict[str, str] = {
    "digest-empty-nonce": 'Digest realm="hostile", nonce="", qop="auth"',
    "digest-bare-token": 'Digest realm="hostile", nonce="abc123", qop="auth", stale',
    "digest-algorithm": 'Digest realm="hostile", nonce="abc123", qop="auth", algorithm=FOO',
    "digest-auth-int": 'Digest realm="hostile", nonce="abc123", qop="auth-int"',
    "digest-non-ascii-realm": 'Digest realm="kamera-wejście-łąka", nonce="abc123", qop="auth"',
}
# What a control-characters device says its name and model are: C1 controls (CSI clears the
# screen on terminals that honour 8-bit controls, NEL breaks the line) and bidi overrides (U+202E
# turns the rest of the line around). XML 1.0 allows these, so a parser passes them on; C0
# controls (ESC, BEL) would make the document unparseable (the site-file set covers those).
HOSTILE_NAME = "cam\x9b2J\x85red\u202egnp.exe"
HOSTILE_MODEL = "DS\u2066-LAB\u2069-X\u200f"
CONTROL_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<DeviceInfo xmlns="http://www.hikvision.com/ver20/XMLSchema">'
    f"<deviceName>{HOSTILE_NAME}</deviceName>"
    f"<model>{HOSTILE_MODEL}</model>"
    "<serialNumber>HOSTILE0001</serialNumber>"
    "</DeviceInfo>"
)
MALFORMED_XML = '<?xml version="1.0"?><DeviceInfo><deviceName>&nope;</deviceName><model>DS'
# Trickle: one byte this often, s. Far below any client's per-read timeout (3 s in diag), so
# only a bound on the whole request ends it.
TRICKLE_INTERVAL_S = 1.0
# The body a trickling device promises, bytes: at 1 byte/s it would take 18 hours.
TRICKLE_BODY_BYTES = 64 * 1024
MODES: tuple[str, ...] = (
    *DIGEST_CHALLENGES,
    "trickle-headers",
    "trickle-body",
    "malformed-xml",
    "control-chars",
)


async def _trickle(writer: asyncio.StreamWriter, data: bytes) -> None:
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        await writer.drain()
        await asyncio.sleep(TRICKLE_INTERVAL_S)


async def answer(
    mode: str, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> bool | None:
    """Answers ``req`` the ``mode`` way; returns keep-alive, or None to let the device answer."""
    if mode not in MODES:
        return None
    await discard_body(reader, req)
    challenge = DIGEST_CHALLENGES.get(mode)
    if challenge is not None:
        # Encoded as UTF-8 on the wire (a non-ASCII realm is the point of one mode).
        head = response_head(401, {"Content-Type": "text/plain"}, 13, close=True)
        head = head.replace(b"\r\n\r\n", f"\r\nWWW-Authenticate: {challenge}\r\n\r\n".encode(), 1)
        writer.write(head + b"unauthorized\n")
        await writer.drain()
        return False
    if mode == "trickle-headers":
        await _trickle(writer, response_head(200, {"Content-Type": "application/xml"}, 10))
        return False
    if mode == "trickle-body":
        writer.write(response_head(200, {"Content-Type": "application/xml"}, TRICKLE_BODY_BYTES))
        await writer.drain()
        await _trickle(writer, b"<" * TRICKLE_BODY_BYTES)
        return False
    body = (MALFORMED_XML if mode == "malformed-xml" else CONTROL_XML).encode("utf-8")
    ctype = {"Content-Type": "application/xml; charset=UTF-8"}
    await send(writer, 200, body, ctype, close=not req.keep_alive)
    return req.keep_alive


Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


def handler(mode: str) -> Handler:
    """A handler for ``http_connection`` that answers every request the ``mode`` way."""

    async def handle(
        req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        kept = await answer(mode, req, reader, writer)
        if kept is None:
            await send(writer, 404, b"not found\n", close=True)
            return False
        return kept

    return handle


@contextlib.asynccontextmanager
async def serve(mode: str, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """A hostile device web server on ``host`` (loopback by default) for the loopback tests;
    yields its port."""
    server = await asyncio.start_server(http_connection("hostile", handler(mode)), host, port)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
