"""ICMP echo: the packets, the sockets, and one ping that measures loss, RTT and jitter.

A raw socket with root, else the unprivileged ICMP datagram socket (Linux
``net.ipv4.ping_group_range``; macOS always, and it hands over the reply WITH its IP header).
Receive times come from the kernel where it gives them (``SO_TIMESTAMPNS``, Linux) so that the
event loop's own latency does not show up as jitter. Windows has neither socket without
Administrator and pings through the OS's echo service instead (``WindowsBackend.ping``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from diag.net.addr import mac_bytes
from diag.net.answer import Series
from diag.net.ifaces import LocalInterface
from diag.net.l2 import ETH_P_IP, SO_ATTACH_FILTER

if TYPE_CHECKING:
    from diag.net.backend import Backend

SO_TIMESTAMPNS = 35  # Linux

IcmpMode = Literal["raw", "unprivileged", "service"]


def icmp_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    s = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def build_echo(ident: int, seq: int, payload: bytes) -> bytes:
    head = struct.pack("!BBHHH", 8, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    csum = icmp_checksum(head + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


def parse_echo_reply(data: bytes, raw: bool) -> tuple[int, int, bytes] | None:
    """(ident, seq, payload) of an ICMP echo reply; raw sockets deliver the IP header too."""
    if raw:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8 or data[0] != 0 or data[1] != 0:
        return None
    _t, _c, _sum, ident, seq = struct.unpack_from("!BBHHH", data)
    return ident, seq, data[8:]


def ipv4_checksum(header: bytes) -> int:
    return icmp_checksum(header)


def build_ipv4_echo_frame(
    src_mac: bytes, dst_mac: bytes, src_ip: str, dst_ip: str, icmp: bytes, ident: int
) -> bytes:
    """An Ethernet frame carrying an IPv4 ICMP echo request (TTL 64, DF clear)."""
    head = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(icmp),
        ident & 0xFFFF,
        0,
        64,
        socket.IPPROTO_ICMP,
        0,
        socket.inet_aton(src_ip),
        socket.inet_aton(dst_ip),
    )
    head = head[:10] + struct.pack("!H", ipv4_checksum(head)) + head[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + head + icmp


@dataclass(frozen=True)
class L2Path:
    """Send echoes straight to a MAC our own ARP learnt, past the kernel's neighbour table.

    On a lossy radio link the kernel's ARP (one try a second) would eat the whole echo train and
    report 100 % loss for a link that loses 25 %; our ARP scan already knows the MAC.
    """

    iface: LocalInterface
    src_ip: str
    dst_mac: str


def open_icmp_socket(
    root: bool, backend: Backend | None = None
) -> tuple[socket.socket, IcmpMode] | None:
    """A raw ICMP socket with root, else the unprivileged datagram one, else None."""
    kinds: list[tuple[int, IcmpMode]] = []
    if root:
        kinds.append((socket.SOCK_RAW, "raw"))
    if backend is None or backend.icmp_dgram:
        kinds.append((socket.SOCK_DGRAM, "unprivileged"))
    for typ, mode in kinds:
        try:
            sock = socket.socket(socket.AF_INET, typ, socket.IPPROTO_ICMP)
        except OSError:
            continue
        return sock, mode
    return None


def attach_source_filter(sock: socket.socket, ip: str) -> None:
    """A classic BPF on a raw IPv4 socket: accept only packets whose source address is ``ip``."""
    import ctypes

    src = struct.unpack("!I", socket.inet_aton(ip))[0]
    prog = (
        (0x20, 0, 0, 12),  # ld [12]: the IPv4 source address (raw sockets see the IP header)
        (0x15, 0, 1, src),  # jeq #src
        (0x06, 0, 0, 0xFFFF),  # ret: accept
        (0x06, 0, 0, 0),  # ret: drop
    )
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
    sock.setsockopt(
        socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(prog), ctypes.addressof(buf))
    )


def icmp_available(root: bool, backend: Backend | None = None) -> IcmpMode | None:
    """Which ICMP socket this user gets (None: none; Windows without admin: its echo service)."""
    from diag.net.backend import current

    backend = backend or current()
    if not backend.icmp_sockets:
        return "service"
    got = open_icmp_socket(root, backend)
    if got is None:
        return None
    got[0].close()
    return got[1]


@dataclass(frozen=True)
class PingStats:
    sent: int
    rtts_ms: tuple[float | None, ...]
    mode: IcmpMode

    @property
    def received(self) -> int:
        return sum(1 for r in self.rtts_ms if r is not None)

    @property
    def loss_pct(self) -> float:
        return round(100.0 * (self.sent - self.received) / self.sent, 2) if self.sent else 0.0

    @property
    def rtt_ms(self) -> float | None:
        got = [r for r in self.rtts_ms if r is not None]
        return round(sum(got) / len(got), 3) if got else None

    @property
    def jitter_ms(self) -> float | None:
        return jitter_ms(self.rtts_ms)


def jitter_ms(rtts: Sequence[float | None]) -> float | None:
    """Mean absolute difference of consecutive answered RTTs (RFC 3550's D, unsmoothed), ms.

    Lost probes are skipped, not counted as zero: a loss is loss, not jitter. Needs two answers.
    """
    got = [r for r in rtts if r is not None]
    if len(got) < 2:
        return None
    diffs = [abs(b - a) for a, b in itertools.pairwise(got)]
    return round(sum(diffs) / len(diffs), 3)


async def ping(
    ip: str,
    count: int,
    interval_s: float,
    wait_s: float,
    root: bool,
    l2: L2Path | None = None,
    backend: Backend | None = None,
) -> PingStats | None:
    """``count`` echo requests ``interval_s`` apart through this OS's backend (see
    ``socket_ping``); None when no ICMP is available to this user."""
    from diag.net.backend import current

    return await (backend or current()).ping(ip, count, interval_s, wait_s, root, l2)


async def socket_ping(
    backend: Backend,
    ip: str,
    count: int,
    interval_s: float,
    wait_s: float,
    root: bool,
    l2: L2Path | None = None,
) -> PingStats | None:
    """``count`` echo requests ``interval_s`` apart; waits ``wait_s`` after the last (asyncio).

    With ``l2`` (root) the requests leave through a packet socket to the known MAC; answers are
    read on the raw ICMP socket either way. None when no ICMP socket can be opened (no root and
    ``ping_group_range`` excludes us).
    """
    got = backend.icmp_socket(root)
    if got is None:
        return None
    sock, mode = got
    raw = mode == "raw"
    # Raw sockets always deliver the IP header; macOS's datagram socket does too, Linux's not.
    with_header = raw or backend.icmp_dgram_ip_header
    if raw:
        # Every raw ICMP socket gets a copy of every ICMP packet: with 50 devices pinged at once
        # that is 50 x 50 x 20 wake-ups. The kernel keeps only the packets from ``ip``.
        with contextlib.suppress(OSError, ValueError):
            attach_source_filter(sock, ip)
    tx: socket.socket | None = None
    if l2 is not None and raw and backend.packet_sockets:
        try:
            tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            tx.bind((l2.iface.name, 0))
        except OSError:
            tx = None
    loop = asyncio.get_running_loop()
    ident = int.from_bytes(os.urandom(2), "big")
    token = os.urandom(8)
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    done = asyncio.Event()
    try:
        sock.setblocking(False)
        if backend.kernel_timestamps:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if not raw:
            # The kernel rewrites the identifier to the socket's "port"; bind to learn it.
            sock.bind(("0.0.0.0", 0))
            ident = sock.getsockname()[1]

        def on_readable() -> None:
            while True:
                try:
                    data, anc, _f, addr = sock.recvmsg(2048, 256)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return
                now = time.time()
                for level, typ, cdata in anc:
                    if (
                        backend.kernel_timestamps
                        and level == socket.SOL_SOCKET
                        and typ == SO_TIMESTAMPNS
                        and len(cdata) >= 16
                    ):
                        sec, nsec = struct.unpack_from("qq", cdata)
                        now = sec + nsec / 1e9
                parsed = parse_echo_reply(data, with_header)
                if parsed is None or addr[0] != ip:
                    continue
                rid, seq, payload = parsed
                if (raw and rid != ident) or not payload.startswith(token) or seq not in sent_at:
                    continue
                if seq not in rtts:
                    rtts[seq] = max(0.0, (now - sent_at[seq]) * 1000.0)
                if len(rtts) == count:
                    done.set()

        loop.add_reader(sock.fileno(), on_readable)
        try:
            for seq in range(count):
                pkt = build_echo(ident, seq, token + struct.pack("!d", time.time()))
                sent_at[seq] = time.time()
                try:
                    if tx is not None and l2 is not None:
                        tx.send(
                            build_ipv4_echo_frame(
                                mac_bytes(l2.iface.mac),
                                mac_bytes(l2.dst_mac),
                                l2.src_ip,
                                ip,
                                pkt,
                                ident + seq,
                            )
                        )
                    else:
                        sock.sendto(pkt, (ip, 0))
                except OSError:
                    # No route, buffer full, EPERM from a firewall: a lost probe, measured as such.
                    pass
                if seq < count - 1:
                    await asyncio.sleep(interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), wait_s)
        finally:
            loop.remove_reader(sock.fileno())
    finally:
        sock.close()
        if tx is not None:
            tx.close()
    return PingStats(
        count, tuple(rtts.get(s) for s in range(count)), "raw" if raw else "unprivileged"
    )


async def icmp_ping(
    address: str,
    count: int,
    interval_s: float,
    timeout_s: float,
    allow_raw: bool = True,
    backend: Backend | None = None,
) -> Series:
    """``ping`` as a ``Series`` (per-probe RTTs, ms); ``available`` is false when this user has
    no ICMP at all (no root and ``ping_group_range`` excludes us)."""
    stats = await ping(address, count, interval_s, timeout_s, allow_raw, backend=backend)
    if stats is None:
        return Series(available=False)
    return Series(tuple(None if r is None else round(r, 3) for r in stats.rtts_ms))
