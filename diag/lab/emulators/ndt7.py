"""The lab's ndt7 server: M-Lab's speed-test protocol (spec/ndt7-protocol.md of m-lab/ndt-server).

CLI::

    python -m diag.lab.emulators.ndt7 --bind IP [--port 8080] [--cc bbr]

- ``GET /ndt/v7/download`` and ``GET /ndt/v7/upload`` upgrade to WebSocket with the subprotocol
  ``net.measurementlab.ndt.v7``; a request without it, another path or a query string over 4096
  bytes gets ``400``;
- download: binary messages of random bytes, 8 KiB at first, doubled whenever a message is at
  most 1/16 of what was sent so far, up to 16 MiB (the spec's scaling); upload: the client's
  binary messages are counted and dropped;
- every 250 ms (the spec's minimum interval) a textual measurement message with ``AppInfo``
  (``NumBytes``, ``ElapsedTime`` in µs), ``ConnectionInfo`` (first message only), ``Origin``
  ``server``, ``Test``, the kernel's ``TCPInfo`` and, when the connection runs BBR, ``BBRInfo``;
- the sender stops after 10 s (the spec's expected transfer time) and closes the channel; any
  subtest is cut at 15 s (the spec's limit for the receiver).

Only the lab runs it (and the tests, on loopback); the users' default is M-Lab's own servers.
This emulator imports ``websockets`` (the one non-stdlib emulator): the protocol is WebSocket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
import uuid
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from diag.lab.emulators import fmt_addr, log, run
from diag.net import tcpinfo

COMPONENT = "ndt7"
SUBPROTOCOL = "net.measurementlab.ndt.v7"
DOWNLOAD_PATH, UPLOAD_PATH = "/ndt/v7/download", "/ndt/v7/upload"
# The spec: each subtest is expected to last 10 s; a receiver may give up at 15 s.
TRANSFER_S = 10.0
MAX_RUNTIME_S = 15.0
# The spec: measurement messages no more often than every 250 ms.
MEASURE_INTERVAL_S = 0.25
# The spec's message size scaling (bytes): start at 1 << 13, grow to at most 1 << 24, doubling
# when a message is no larger than 1/16 of the bytes sent so far.
INITIAL_MESSAGE = 1 << 13
MAX_MESSAGE = 1 << 24
SCALING_FRACTION = 16
# The spec: a peer may limit messages, but not below 1 << 17; we accept what we send.
MAX_RECEIVE = 1 << 24
MAX_QUERY = 4096
# Unsent bytes the kernel holds per connection (TCP_NOTSENT_LOWAT), bytes: keeps a measurement
# message from queueing behind seconds of payload on a 64 kbit/s link.
NOTSENT_LOWAT = 16 * 1024
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)

_PAYLOAD = memoryview(os.urandom(MAX_MESSAGE))


def check_request(conn: ServerConnection, request: Request) -> Response | None:
    """400 for anything that is not an ndt7 upgrade (the spec's MUST)."""
    path, _, query = request.path.partition("?")
    offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
    protocols = [p.strip() for p in offered.split(",")]
    if path not in (DOWNLOAD_PATH, UPLOAD_PATH):
        return conn.respond(HTTPStatus.BAD_REQUEST, "not an ndt7 subtest\n")
    if SUBPROTOCOL not in protocols:
        return conn.respond(HTTPStatus.BAD_REQUEST, f"subprotocol {SUBPROTOCOL} required\n")
    if len(query) > MAX_QUERY:
        return conn.respond(HTTPStatus.BAD_REQUEST, "query string too long\n")
    return None


class Subtest:
    """One connection's counters and its measurement messages."""

    def __init__(self, ws: ServerConnection, test: str, cc: str | None) -> None:
        self.ws = ws
        self.test = test
        self.start = time.monotonic()
        self.num_bytes = 0
        self.sent_info = False
        self.sock: Any = ws.transport.get_extra_info("socket")
        self.uuid = str(uuid.uuid4())
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
            if cc:
                with contextlib.suppress(OSError):
                    self.sock.setsockopt(socket.IPPROTO_TCP, tcpinfo.TCP_CONGESTION, cc.encode())

    def elapsed_us(self) -> int:
        return int((time.monotonic() - self.start) * 1e6)

    def measurement(self) -> dict[str, Any]:
        elapsed = self.elapsed_us()
        m: dict[str, Any] = {
            "AppInfo": {"ElapsedTime": elapsed, "NumBytes": self.num_bytes},
            "Origin": "server",
            "Test": self.test,
        }
        if not self.sent_info:
            # The spec: ConnectionInfo is sent at least once (we send it with the first one).
            m["ConnectionInfo"] = {
                "Client": fmt_addr(self.ws.remote_address),
                "Server": fmt_addr(self.ws.local_address),
                "UUID": self.uuid,
            }
            self.sent_info = True
        info = tcpinfo.read(self.sock)
        if info is not None:
            m["TCPInfo"] = info.to_ndt7(elapsed)
        bbr = tcpinfo.read_bbr(self.sock)
        if bbr is not None:
            m["BBRInfo"] = {**bbr, "ElapsedTime": elapsed}
        return m

    async def measure_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), MEASURE_INTERVAL_S)
            if stop.is_set():
                return
            try:
                await self.ws.send(json.dumps(self.measurement()))
            except ConnectionClosed:
                return


async def download(st: Subtest) -> None:
    size = INITIAL_MESSAGE
    end = st.start + TRANSFER_S
    while time.monotonic() < end:
        await st.ws.send(_PAYLOAD[:size])
        st.num_bytes += size
        if size < MAX_MESSAGE and size <= st.num_bytes // SCALING_FRACTION:
            size *= 2


async def upload(st: Subtest) -> None:
    end = st.start + TRANSFER_S
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        try:
            msg = await asyncio.wait_for(st.ws.recv(), left)
        except TimeoutError:
            return
        if isinstance(msg, bytes | bytearray | memoryview):
            st.num_bytes += len(msg)
        # A client's own measurement (textual) is allowed and ignored.


async def handler(ws: ServerConnection, cc: str | None) -> None:
    path = (ws.request.path if ws.request else "").partition("?")[0]
    test = "download" if path == DOWNLOAD_PATH else "upload"
    st = Subtest(ws, test, cc)
    log(COMPONENT, "start", test=test, peer=fmt_addr(ws.remote_address))
    stop = asyncio.Event()
    meter = asyncio.create_task(st.measure_loop(stop))
    why = "done"
    try:
        work = download(st) if test == "download" else upload(st)
        await asyncio.wait_for(work, MAX_RUNTIME_S)
    except ConnectionClosed:
        why = "client-closed"
    except TimeoutError:
        why = "max-runtime"
    finally:
        stop.set()
        await meter
    with contextlib.suppress(ConnectionClosed):
        await ws.close()
    secs = time.monotonic() - st.start
    log(COMPONENT, "end", test=test, bytes=st.num_bytes, seconds=f"{secs:.3f}", why=why)


async def serve_ndt7(bind: str, port: int, cc: str | None, stop: asyncio.Event) -> None:
    async with serve(
        lambda ws: handler(ws, cc),
        bind,
        port,
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        process_request=check_request,
        max_size=MAX_RECEIVE,
        compression=None,
        # Control frames only: keepalive pings would cost nothing but are not in the spec.
        ping_interval=None,
        close_timeout=2,
    ):
        log(COMPONENT, "ready", bind=bind, port=port, cc=cc or "default")
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m diag.lab.emulators.ndt7", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    ap.add_argument("--port", type=int, default=8080, help="TCP port (ws://)")
    ap.add_argument(
        "--cc", default="bbr", help="congestion control for the connections ('' = default)"
    )
    args = ap.parse_args(argv)
    return run(COMPONENT, lambda stop: serve_ndt7(args.bind, args.port, args.cc or None, stop))


if __name__ == "__main__":
    sys.exit(main())
