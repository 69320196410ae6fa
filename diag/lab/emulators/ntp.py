"""Lab NTP server (SNTP, RFC 4330): answers a client's request with its own clock, plus the broken
and hostile answers a real site's NTP server can give (one mode per server).

In the lab it runs in the router's namespace on the LAN gateway address, the NTP server every lab
device names (home and small-business routers serve NTP to their LAN). Modes: ``ok`` (stratum 2,
the namespace's clock plus ``offset_s``), ``kiss`` (stratum 0, kiss code RATE), ``unsynchronized``
(leap indicator 3, stratum 16), ``wrong-origin`` (an answer to another request), ``short`` (a
20-byte datagram), ``garbage`` (48 random bytes), ``silent`` (no answer). The unit tests run the
same ``NtpServer`` on loopback.

Usage: ``python -m diag.lab.emulators.ntp --bind 198.18.0.1 [--port 123] [--mode ok]
[--offset-s 0]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import time
from collections.abc import Callable
from typing import cast

from diag.net.sntp import MODE_SERVER, PACKET_LEN, to_ntp

MODES = ("ok", "kiss", "unsynchronized", "wrong-origin", "short", "garbage", "silent")
STRATUM = 2
# 2^-20 s (~1 us): what a Linux host's clock reads to.
PRECISION = -20


def answer(
    request: bytes, mode: str = "ok", offset_s: float = 0.0, now: Callable[[], float] = time.time
) -> bytes | None:
    """The server's reply to ``request`` in ``mode``; None: no reply (pure but for ``now``)."""
    if len(request) < PACKET_LEN or request[0] & 7 != 3 or mode == "silent":
        return None
    if mode == "short":
        return bytes(20)
    if mode == "garbage":
        return os.urandom(PACKET_LEN)
    version = (request[0] >> 3) & 7 or 4
    li, stratum, refid = 0, STRATUM, b"LAB\0"
    if mode == "kiss":
        stratum, refid = 0, b"RATE"
    elif mode == "unsynchronized":
        li, stratum = 3, 16
    origin = os.urandom(8) if mode == "wrong-origin" else request[40:48]
    t = now() + offset_s
    head = struct.pack(
        "!BBbbII4s",
        (li << 6) | (version << 3) | MODE_SERVER,
        stratum,
        request[2],  # poll: the client's
        PRECISION,
        0x0000_0100,  # root delay 1/256 s (16.16 fixed point)
        0x0000_0100,  # root dispersion
        refid,
    )
    return head + to_ntp(t - 16) + origin + to_ntp(t) + to_ntp(now() + offset_s)


class NtpServer(asyncio.DatagramProtocol):
    def __init__(self, mode: str = "ok", offset_s: float = 0.0) -> None:
        self.mode, self.offset_s = mode, offset_s
        self.transport: asyncio.DatagramTransport | None = None
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport is not a registered DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.requests += 1
        reply = answer(data, self.mode, self.offset_s)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve(bind: str, port: int, mode: str, offset_s: float) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: NtpServer(mode, offset_s), local_addr=(bind, port))
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description="lab SNTP server")
    ap.add_argument("--bind", required=True)
    ap.add_argument("--port", type=int, default=123)
    ap.add_argument("--mode", choices=MODES, default="ok")
    ap.add_argument("--offset-s", type=float, default=0.0)
    args = ap.parse_args()
    asyncio.run(serve(args.bind, args.port, args.mode, args.offset_s))


if __name__ == "__main__":
    main()
