"""Asyncio loopback fakes for the ports, wan and bandwidth tests (run in the test's own loop).

They bind to 127.0.0.1 on free ports and answer only the peer that asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

from diag.checks.base import Context, World
from diag.model import Device, Network, P2PServer, Profile, Site, StunServer, Thresholds

LOOPBACK = "127.0.0.1"


class HelloServer(asyncio.DatagramProtocol):
    """The platform hello; ``answer=False`` stays silent, ``garbage`` answers nonsense."""

    def __init__(self, answer: bool = True, garbage: bool = False, seen_as: str | None = None):
        self.answer, self.garbage, self.seen_as = answer, garbage, seen_as
        self.received: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.received.append(data)
        if not self.answer or self.transport is None:
            return
        if self.garbage:
            self.transport.sendto(b"\xff\x00garbage", addr)
            return
        parts = data.decode("ascii", "replace").split()
        if len(parts) == 3 and parts[:2] == ["DIAGP2P1", "HELLO"]:
            seen = self.seen_as or f"{addr[0]}:{addr[1]}"
            self.transport.sendto(f"DIAGP2P1 WELCOME {parts[2]} {seen}".encode(), addr)


@contextlib.asynccontextmanager
async def udp_server(proto: asyncio.DatagramProtocol) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: proto, local_addr=(LOOPBACK, 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def tcp_server() -> AsyncIterator[int]:
    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nothing listens on (TCP: RST; UDP: ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


@contextlib.contextmanager
def silent_udp() -> Iterator[int]:
    """A bound UDP port that never answers: datagrams to it vanish (a firewall's DROP)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LOOPBACK, 0))
    try:
        port: int = s.getsockname()[1]
        yield port
    finally:
        s.close()


def make_site(
    servers: tuple[P2PServer, ...] = (),
    stuns: tuple[StunServer, ...] = (),
    devices: tuple[Device, ...] = (),
    resolver: str = "127.0.0.1:9",
    gateway: str | None = LOOPBACK,
    **profile: object,
) -> Site:
    return Site(
        name="test",
        devices=devices,
        profile=Profile(name="test", p2p_servers=servers, stun_servers=stuns, **profile),  # type: ignore[arg-type]
        thresholds=Thresholds(),
        network=Network(site_resolver=resolver, gateway=gateway),
    )


def context(site: Site, check_id: str, root: bool = False, budget_s: float = 10.0) -> Context:
    return Context(
        site=site,
        check_id=check_id,
        targets=(),
        deadline=time.monotonic() + budget_s,
        world=World(is_root=lambda: root),
    )


class SpeedServer:
    """A speed-test endpoint on loopback with a known throughput (bytes/s per direction).

    ``GET /download?bytes=N`` sends at ``down_bps``; ``POST /upload`` (chunked or
    Content-Length) is read at ``up_bps`` and answered ``{"bytes", "seconds"}``; ``GET /ping``
    answers 204 after ``ping_delay_s`` plus ``loaded_delay_s`` while a transfer runs.
    """

    def __init__(
        self,
        down_bps: float,
        up_bps: float,
        loaded_delay_s: float = 0.0,
        json_upload: bool = True,
    ) -> None:
        self.down_bps, self.up_bps = down_bps, up_bps
        self.loaded_delay_s = loaded_delay_s
        self.json_upload = json_upload
        self.active = 0
        self.hosts: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> SpeedServer:
        self.server = await asyncio.start_server(self._conn, LOOPBACK, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        sock = w.get_extra_info("socket")
        # A small receive buffer: the paced reader is the bottleneck, not megabytes of loopback
        # buffers (a real link's queue is bounded the same way).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                _method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await r.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.hosts.append(headers.get("host", ""))
                if target.startswith("/ping"):
                    await asyncio.sleep(self.loaded_delay_s if self.active else 0.0)
                    w.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                    await w.drain()
                elif target.startswith("/download"):
                    n = int(target.partition("bytes=")[2])
                    w.write(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
                    self.active += 1
                    try:
                        await self._paced_write(w, n)
                    finally:
                        self.active -= 1
                    return
                elif target.startswith("/upload"):
                    self.active += 1
                    try:
                        total, secs = await self._paced_read(r, headers)
                    finally:
                        self.active -= 1
                    body = (
                        json.dumps({"bytes": total, "seconds": secs}).encode()
                        if self.json_upload
                        else b"thanks"
                    )
                    w.write(
                        f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
                    )
                    await w.drain()
        except (ConnectionError, ValueError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            w.close()

    async def _paced_write(self, w: asyncio.StreamWriter, n: int) -> None:
        chunk = 8192
        t0 = time.monotonic()
        sent = 0
        while sent < n:
            w.write(b"x" * min(chunk, n - sent))
            sent += min(chunk, n - sent)
            await w.drain()
            ahead = sent / self.down_bps - (time.monotonic() - t0)
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def _paced_read(
        self, r: asyncio.StreamReader, headers: dict[str, str]
    ) -> tuple[int, float]:
        t0 = time.monotonic()
        total = 0

        async def take(k: int) -> None:
            nonlocal total
            while k:
                data = await r.read(min(k, 8192))
                if not data:
                    raise ConnectionError
                k -= len(data)
                total += len(data)
                ahead = total / self.up_bps - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)

        if "chunked" in headers.get("transfer-encoding", ""):
            while True:
                size = int((await r.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await r.readline()
                    break
                await take(size)
                await r.readline()
        else:
            await take(int(headers.get("content-length", "0")))
        return total, time.monotonic() - t0
