"""Asyncio loopback fakes for the ports, wan and bandwidth tests (run in the test's own loop).

They bind to 127.0.0.1 on free ports and answer only the peer that asked.
"""

from __future__ import annotations

import asyncio
import contextlib
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
