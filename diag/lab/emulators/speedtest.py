"""The lab's speed-test endpoint: HTTP download and upload of N bytes, ping, and a 204 probe URL.

CLI::

    python -m diag.lab.emulators.speedtest --bind IP [--port 80]

- ``GET /download?bytes=N`` streams N bytes (at most 1 GiB) of incompressible data;
- ``POST /upload`` reads the body (Content-Length or chunked) and answers
  ``{"bytes": n, "seconds": t}``, t measured from the end of the request head to the last byte;
- ``GET /ping`` and ``GET /generate_204`` answer 204 at once (latency under load; the
  captive-portal probe URL);
- ``GET /v2/nearest/ndt/ndt7`` (with ``--ndt7 ws://host:port``): the lab's stand-in for M-Lab's
  Locate API v2, naming the lab's own ndt7 server (``diag.lab.emulators.ndt7``) in the answer's
  shape (``{"results": [{"machine", "location", "urls": {"ws:///ndt/v7/download": ...}}]}``).

One preallocated random buffer is written again and again, so the server costs little CPU and
sustains well over 1 Gbit/s on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from diag.lab.emulators import (
    BadRequest,
    Request,
    content_length,
    discard_body,
    fmt_addr,
    http_connection,
    log,
    read_line,
    response_head,
    run,
    send,
)

COMPONENT = "speedtest"
# Largest download served (bytes): a test of a site's link never needs more, and a typo in a
# client must not keep the lab busy for minutes.
MAX_DOWNLOAD = 1 << 30
# Size of the preallocated random buffer and of each write (bytes): large writes keep the number
# of system calls, and so the CPU per byte, low.
CHUNK = 1 << 20
# The transport buffers up to this much before the writer waits for the socket (bytes).
WRITE_HIGH_WATER = 4 << 20
# Stream reader buffer (bytes): big reads of an upload with few wake-ups.
READ_LIMIT = 1 << 20
# A chunked upload's chunk-size line longer than this is not a chunk size (bytes).
MAX_CHUNK_LINE = 1024

_BUF = memoryview(os.urandom(CHUNK))


def _query_int(req: Request, name: str) -> int | None:
    values = req.query.get(name)
    if not values or not values[0].isdigit() or len(values[0]) > 12:
        return None
    return int(values[0])


async def download(req: Request, writer: asyncio.StreamWriter) -> bool:
    n = _query_int(req, "bytes")
    if n is None or n > MAX_DOWNLOAD:
        why = f"bytes must be an integer 0..{MAX_DOWNLOAD}\n".encode()
        await send(writer, 400, why, {"Content-Type": "text/plain"})
        return req.keep_alive
    keep = req.keep_alive
    headers = {"Content-Type": "application/octet-stream", "Cache-Control": "no-store"}
    writer.write(response_head(200, headers, n, close=not keep))
    start = time.monotonic()
    if req.method == "GET":
        left = n
        while left > 0:
            k = min(left, CHUNK)
            writer.write(_BUF[:k])
            left -= k
            await writer.drain()
    await writer.drain()
    secs = time.monotonic() - start
    log(COMPONENT, "download", peer=fmt_addr(req.peer), bytes=n, seconds=f"{secs:.3f}")
    return keep


async def _read_chunked(reader: asyncio.StreamReader) -> int:
    total = 0
    while True:
        line = await read_line(reader)
        size_text = line.split(b";", 1)[0].strip()
        if len(line) > MAX_CHUNK_LINE or not size_text:
            raise BadRequest("bad chunk size")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while (await read_line(reader)) not in (b"\r\n", b"\n"):
                pass  # trailer fields are read and dropped
            return total
        left = size
        while left:
            data = await reader.read(min(left, READ_LIMIT))
            if not data:
                raise EOFError
            left -= len(data)
        total += size
        if (await read_line(reader)) not in (b"\r\n", b"\n"):
            raise BadRequest("chunk not followed by CRLF")


async def upload(req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    chunked = "chunked" in req.header("transfer-encoding").lower()
    if req.header("transfer-encoding") and not chunked:
        raise BadRequest("unsupported transfer coding")
    if not chunked and not req.header("content-length"):
        await send(writer, 411, b"length required\n", {"Content-Type": "text/plain"}, close=True)
        return False
    if req.header("expect").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    start = time.monotonic()
    if chunked:
        total = await _read_chunked(reader)
    else:
        total = left = content_length(req)
        while left:
            data = await reader.read(min(left, READ_LIMIT))
            if not data:
                raise EOFError  # the client gave up: nobody to answer
            left -= len(data)
    secs = time.monotonic() - start
    log(COMPONENT, "upload", peer=fmt_addr(req.peer), bytes=total, seconds=f"{secs:.3f}")
    body = json.dumps({"bytes": total, "seconds": round(secs, 6)}).encode() + b"\n"
    keep = req.keep_alive
    await send(writer, 200, body, {"Content-Type": "application/json"}, close=not keep)
    return keep


LOCATE_PATH = "/v2/nearest/ndt/ndt7"


def locate_answer(ndt7_base: str | None) -> bytes:
    """The Locate API v2 answer naming the lab's ndt7 server; no server: ``{}`` (no capacity)."""
    if not ndt7_base:
        return b"{}\n"
    scheme, _, hostport = ndt7_base.partition("://")
    urls = {
        f"{scheme}:///ndt/v7/{test}": f"{scheme}://{hostport}/ndt/v7/{test}?access_token=lab"
        for test in ("download", "upload")
    }
    result = {"machine": hostport.split(":")[0], "location": {"city": "Lab"}, "urls": urls}
    return json.dumps({"results": [result]}).encode() + b"\n"


NDT7_BASE: list[str] = []


async def handle(req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    transport = writer.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
    path = req.path
    if path == "/upload":
        if req.method != "POST":
            await discard_body(reader, req)
            await send(writer, 405, b"POST only\n", {"Allow": "POST"}, close=not req.keep_alive)
            return req.keep_alive
        return await upload(req, reader, writer)
    await discard_body(reader, req)
    if req.method not in ("GET", "HEAD"):
        await send(writer, 405, b"GET only\n", {"Allow": "GET, HEAD"}, close=not req.keep_alive)
        return req.keep_alive
    if path == "/download":
        return await download(req, writer)
    if path == LOCATE_PATH:
        body = locate_answer(NDT7_BASE[0] if NDT7_BASE else None)
        headers = {"Content-Type": "application/json", "Cache-Control": "no-cache"}
        await send(writer, 200, body, headers, close=not req.keep_alive)
        return req.keep_alive
    if path in ("/ping", "/generate_204"):
        await send(writer, 204, b"", {"Cache-Control": "no-store"}, close=not req.keep_alive)
        return req.keep_alive
    await send(
        writer, 404, b"not found\n", {"Content-Type": "text/plain"}, close=not req.keep_alive
    )
    return req.keep_alive


async def serve(bind: str, port: int, stop: asyncio.Event) -> None:
    server = await asyncio.start_server(
        http_connection(COMPONENT, handle), bind, port, limit=READ_LIMIT
    )
    log(COMPONENT, "ready", bind=bind, port=port)
    try:
        await stop.wait()
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m diag.lab.emulators.speedtest", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    ap.add_argument("--port", type=int, default=80, help="TCP port")
    ap.add_argument("--ndt7", help="the lab's ndt7 server named by the locate answer, ws://IP:PORT")
    args = ap.parse_args(argv)
    if args.ndt7:
        NDT7_BASE.append(args.ndt7)
    return run(COMPONENT, lambda stop: serve(args.bind, args.port, stop))


if __name__ == "__main__":
    sys.exit(main())
