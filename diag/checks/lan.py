"""LAN probes for the heartbeat and vlan checks: interfaces, ARP over packet sockets, ICMP echo.

Frames are built and parsed here with ``struct`` rather than scapy: one packet socket serves a whole
scan (every request and every answer in one window, so a second MAC answering for the same address
is never missed), 802.1Q tags that the kernel moved out of the frame are read back from
``PACKET_AUXDATA``, and the parsers are small pure functions that fuzzing can reach. Parsers never
raise on hostile input: a frame that does not parse is ``None``.

ICMP uses a raw socket with root and falls back to the unprivileged ICMP datagram socket
(``net.ipv4.ping_group_range``) without it. Receive times come from the kernel (``SO_TIMESTAMPNS``)
so that the event loop's own latency does not show up as jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from diag.model import Site

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_LLDP = 0x88CC
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
BROADCAST = b"\xff" * 6
# Ethernet's minimum frame without FCS; a packet socket sends what it is given, real NICs pad.
MIN_FRAME = 60

# ARP pacing: 1 ms between requests (1000 broadcasts/s, ~60 kB/s on the wire, a load any switch
# and host shrug off): a /24 takes 0.25 s per pass.
ARP_INTERVAL_S = 0.001
# After the last request of a pass, answers arrive within a few ms on a wired LAN (under 1 ms in
# the lab); 0.25 s leaves a wide margin for a busy embedded CPU or a Wi-Fi bridge's retries.
ARP_WAIT_S = 0.25
# A second pass re-asks the silent addresses once: one lost broadcast must not make a host vanish.
ARP_PASSES = 2
# Configured devices are asked up to 8 times 0.1 s apart (0.8 s at most, ~0.2 s when they answer):
# on a radio bridge losing 25 % each way one exchange fails 44 % of the time, eight fail 0.14 %.
DEVICE_ARP_PASSES = 8
DEVICE_ARP_WAIT_S = 0.1
# No sweep is larger than a /24 by default: 256 broadcasts is polite, a /16 (65536) is not.
MAX_SWEEP_PREFIX = 24


def mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw[:6])


def mac_bytes(text: str) -> bytes:
    return bytes(int(p, 16) for p in text.split(":"))


# --- interfaces -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalInterface:
    """A laptop interface with its IPv4 networks (``198.18.0.100/24``)."""

    name: str
    index: int
    mac: str
    networks: tuple[ipaddress.IPv4Interface, ...]

    def onlink(self, ip: str) -> ipaddress.IPv4Interface | None:
        """The interface address whose subnet holds ``ip`` (None: not on this link)."""
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            return None
        return next((n for n in self.networks if addr in n.network), None)

    @property
    def addresses(self) -> set[str]:
        return {str(n.ip) for n in self.networks}


def local_interfaces() -> list[LocalInterface]:
    """The up interfaces with an IPv4 address, loopback excluded (psutil; no sockets opened)."""
    import psutil

    out = []
    stats = psutil.net_if_stats()
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        if name == "lo" or st is None or not st.isup:
            continue
        nets = []
        mac = ""
        for a in addrs:
            if a.family == socket.AF_INET and a.netmask:
                with contextlib.suppress(ValueError):
                    nets.append(ipaddress.IPv4Interface(f"{a.address}/{a.netmask}"))
            elif a.family == getattr(psutil, "AF_LINK", -1) and a.address:
                mac = a.address.lower().replace("-", ":")
        if not nets:
            continue
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue
        out.append(LocalInterface(name, index, mac, tuple(nets)))
    return out


RTF_GATEWAY = 0x2  # route flag: through a gateway (otherwise on-link)
ROUTE_V4 = "/proc/net/route"


def parse_default_route(v4_text: str, v6_text: str = "") -> tuple[str | None, str | None]:
    """(gateway, interface) of the default route with the lowest metric; IPv4 first.

    ``v4_text`` is ``/proc/net/route``, ``v6_text`` ``/proc/net/ipv6_route``. The one parser of
    the kernel's routing table in diag: host, heartbeat, stun, ports and wan all read it here.
    """
    best: tuple[int, str, str] | None = None
    for line in v4_text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, gw, flags, metric, mask = (int(cols[i], 16) for i in (1, 2, 3, 6, 7))
        except ValueError:
            continue
        if dest != 0 or mask != 0:
            continue
        # /proc/net/route holds addresses in host (little-endian) byte order.
        gw_ip = socket.inet_ntoa(gw.to_bytes(4, "little")) if flags & RTF_GATEWAY else None
        cand = (metric, cols[0], gw_ip or "")
        if best is None or cand[0] < best[0]:
            best = cand
    if best is not None:
        return best[2] or None, best[1]
    for line in v6_text.splitlines():
        cols = line.split()
        if len(cols) < 10 or cols[0] != "0" * 32 or cols[1] != "00":
            continue
        try:
            gw6 = ipaddress.IPv6Address(bytes.fromhex(cols[4]))
        except ValueError:
            continue
        if cols[9] == "lo":
            continue
        return (None if gw6.is_unspecified else str(gw6)), cols[9]
    return None, None


def parse_proc_route(text: str) -> tuple[str | None, str | None]:
    """(interface, gateway) of the IPv4 default route in ``/proc/net/route`` text."""
    gw, iface = parse_default_route(text)
    return iface, gw


def default_route() -> tuple[str | None, str | None]:
    """(interface, gateway) of this network namespace's IPv4 default route (no traffic)."""
    try:
        with open(ROUTE_V4, encoding="ascii") as fh:
            return parse_proc_route(fh.read())
    except OSError:
        return None, None


def default_gateway(route_file: str = ROUTE_V4) -> str | None:
    """The IPv4 default gateway of this network namespace, or None (read from the kernel)."""
    try:
        with open(route_file, encoding="ascii") as fh:
            return parse_default_route(fh.read())[0]
    except OSError:
        return None


def pick_interface(site: Site, ifaces: Sequence[LocalInterface]) -> LocalInterface | None:
    """The laptop interface facing the site (pure), or None when none does.

    The configured ``network.interface``; else the interface holding most configured device
    addresses; else the one the site's gateway is on; else one overlapping ``network.subnets``.
    Never "whatever the default route uses": a laptop that is not on the site's LAN must not
    sweep or sniff the LAN it happens to be on.
    """
    by_name = {i.name: i for i in ifaces}
    if site.network.interface:
        return by_name.get(site.network.interface)
    counts = {
        i.name: sum(1 for d in site.devices if d.address and i.onlink(d.address)) for i in ifaces
    }
    best = max(ifaces, key=lambda i: counts[i.name], default=None)
    if best is not None and counts[best.name] > 0:
        return best
    gw = site.network.gateway
    if gw:
        for i in ifaces:
            if i.onlink(gw):
                return i
    for s in site.network.subnets:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            continue
        for i in ifaces:
            if any(n.network.overlaps(net) for n in i.networks):
                return i
    return None


def sweep_targets(
    iface: LocalInterface | None,
    extra: Iterable[str],
    max_prefix: int = MAX_SWEEP_PREFIX,
) -> tuple[list[str], list[str], list[str]]:
    """What an ARP sweep asks: (addresses, swept subnets, subnets left out as not on-link); pure.

    A subnet wider than ``max_prefix`` is cut down to the ``/max_prefix`` holding the laptop's
    address (or its first one): the tool never floods a /16 unasked.
    """
    subnets: list[ipaddress.IPv4Network] = []
    own: set[str] = set()
    if iface is not None:
        subnets.extend(n.network for n in iface.networks)
        own = iface.addresses
    for s in extra:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            subnets.append(net)
    swept: list[str] = []
    offlink: list[str] = []
    targets: list[str] = []
    seen: set[str] = set()
    for net in subnets:
        if net.prefixlen < max_prefix:
            anchor = next(
                (ipaddress.IPv4Address(a) for a in own if ipaddress.IPv4Address(a) in net),
                net.network_address,
            )
            net = ipaddress.IPv4Network(f"{anchor}/{max_prefix}", strict=False)
        if iface is None or not any(
            net.subnet_of(n.network) or n.network.subnet_of(net) for n in iface.networks
        ):
            if str(net) not in offlink:
                offlink.append(str(net))
            continue
        if str(net) in swept:
            continue
        swept.append(str(net))
        hosts = [net.network_address] if net.prefixlen == 32 else list(net.hosts())
        for h in hosts:
            hs = str(h)
            if hs not in seen and hs not in own and iface.onlink(hs):
                seen.add(hs)
                targets.append(hs)
    return targets, swept, offlink


# --- ARP --------------------------------------------------------------------------------------


def build_arp_request(src_mac: bytes, src_ip: str, target_ip: str, vid: int | None = None) -> bytes:
    """An Ethernet broadcast ARP who-has, 802.1Q-tagged with ``vid`` when given."""
    eth = BROADCAST + src_mac
    if vid is not None:
        eth += struct.pack("!HH", ETH_P_8021Q, vid & 0x0FFF)
    eth += struct.pack("!H", ETH_P_ARP)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_P_IP,
        6,
        4,
        1,
        src_mac,
        socket.inet_aton(src_ip),
        b"\x00" * 6,
        socket.inet_aton(target_ip),
    )
    frame = eth + arp
    return frame + b"\x00" * max(0, MIN_FRAME - len(frame))


@dataclass(frozen=True)
class L2Frame:
    """An Ethernet frame split into its parts; ``vid`` is the 802.1Q VLAN id (None: untagged)."""

    dst: str
    src: str
    ethertype: int
    payload: bytes
    vid: int | None = None


def parse_frame(frame: bytes, aux_vid: int | None = None) -> L2Frame | None:
    """Splits an Ethernet frame; a tag the kernel stripped comes in as ``aux_vid``."""
    if len(frame) < 14:
        return None
    dst, src = mac_str(frame[0:6]), mac_str(frame[6:12])
    (etype,) = struct.unpack_from("!H", frame, 12)
    off = 14
    vid = aux_vid
    # Up to two inline tags (802.1ad outer + 802.1Q inner): the innermost VLAN id is the one
    # that places the host; deeper stacks are not Ethernet any switch here sends.
    for _ in range(2):
        if etype not in (ETH_P_8021Q, ETH_P_8021AD) or len(frame) < off + 4:
            break
        tci, etype = struct.unpack_from("!HH", frame, off)
        vid = tci & 0x0FFF
        off += 4
    if etype in (ETH_P_8021Q, ETH_P_8021AD):
        return None
    return L2Frame(dst, src, etype, frame[off:], vid)


@dataclass(frozen=True)
class ArpPacket:
    op: int
    sender_mac: str
    sender_ip: str
    target_ip: str


def parse_arp(payload: bytes) -> ArpPacket | None:
    """An IPv4-over-Ethernet ARP packet, or None for anything else (never raises)."""
    if len(payload) < 28:
        return None
    try:
        htype, ptype, hlen, plen, op, sha, spa, _tha, tpa = struct.unpack_from(
            "!HHBBH6s4s6s4s", payload
        )
    except struct.error:
        return None
    if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4 or op not in (1, 2):
        return None
    return ArpPacket(op, mac_str(sha), socket.inet_ntoa(spa), socket.inet_ntoa(tpa))


@dataclass(frozen=True)
class ArpAnswer:
    ip: str
    mac: str
    vid: int | None = None
    at: float = 0.0


def answer_from_frame(frame: bytes, aux_vid: int | None = None) -> ArpAnswer | None:
    """An ARP reply in a received frame as (ip, mac, vid); requests and junk are None."""
    l2 = parse_frame(frame, aux_vid)
    if l2 is None or l2.ethertype != ETH_P_ARP:
        return None
    arp = parse_arp(l2.payload)
    if arp is None or arp.op != 2:
        return None
    # A VLAN id 0 is a priority tag: the frame belongs to the port's own VLAN.
    return ArpAnswer(arp.sender_ip, arp.sender_mac, l2.vid or None)


def aggregate_answers(
    answers: Iterable[ArpAnswer], untagged_only: bool = True
) -> dict[str, list[str]]:
    """ip -> the distinct MACs that answered for it, in the order they first answered."""
    out: dict[str, list[str]] = {}
    for a in answers:
        if untagged_only and a.vid is not None:
            continue
        macs = out.setdefault(a.ip, [])
        if a.mac not in macs:
            macs.append(a.mac)
    return out


def aux_vid(ancdata: Iterable[tuple[int, int, bytes]]) -> int | None:
    """The VLAN id the kernel took out of a frame (``tpacket_auxdata``), None when untagged."""
    for level, typ, data in ancdata:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(data) >= 20:
            status, _len, _snap, _mac, _net, tci, _tpid = struct.unpack_from("IIIHHHH", data)
            if status & TP_STATUS_VLAN_VALID:
                return int(tci) & 0x0FFF
    return None


def open_packet_socket(iface: LocalInterface, proto: int = ETH_P_ALL) -> socket.socket:
    """A raw packet socket on ``iface`` with the kernel's VLAN metadata switched on (root)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        # 4 MiB: a /24 sweep's answers and a busy LAN's broadcasts fit while we are sending.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((iface.name, proto))
    except BaseException:
        sock.close()
        raise
    return sock


def recv_frames(
    sock: socket.socket, timeout: float, only_ours: bool = False
) -> list[tuple[bytes, int | None, float]]:
    """Frames received within ``timeout`` s (at least one wait): (frame, aux vid, time).

    ``only_ours`` keeps only frames the kernel would hand to this host (``is_ours``).
    """
    out: list[tuple[bytes, int | None, float]] = []
    ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
    if not ready:
        return out
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(65535, 256, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        # Our own transmissions loop back to a packet socket: they are not answers.
        if isinstance(addr, tuple) and len(addr) > 2 and addr[2] == PACKET_OUTGOING:
            continue
        if only_ours and not is_ours(addr):
            continue
        out.append((data, aux_vid(anc), time.monotonic()))
    return out


PACKET_OTHERHOST = 3


def is_ours(addr: object) -> bool:
    """Whether a packet socket's source address says the frame is for this host.

    A socket bound to one protocol (ETH_P_ARP) gets frames tagged with a VLAN this host has no
    interface for only after the kernel has stripped the tag and marked them PACKET_OTHERHOST:
    an answer from another VLAN would otherwise pass for an untagged one. Frames to other MACs
    (another socket made the interface promiscuous) carry the same mark.
    """
    return not (isinstance(addr, tuple) and len(addr) > 2 and addr[2] == PACKET_OTHERHOST)


@dataclass
class ArpScan:
    """What one ARP scan saw: every answer (also duplicates from other MACs)."""

    answers: list[ArpAnswer] = field(default_factory=list)
    sent: int = 0
    duration_s: float = 0.0

    def by_ip(self, untagged_only: bool = True) -> dict[str, list[str]]:
        return aggregate_answers(self.answers, untagged_only)


def arp_scan(
    iface: LocalInterface,
    targets: Sequence[str],
    *,
    interval_s: float = ARP_INTERVAL_S,
    wait_s: float = ARP_WAIT_S,
    passes: int = ARP_PASSES,
    min_passes: int = 1,
    deadline: float | None = None,
    vids: Sequence[int | None] = (None,),
    sock_factory: Callable[[LocalInterface], socket.socket] | None = None,
) -> ArpScan:
    """Asks every target who has it, ``passes`` times for the silent ones (blocking; root).

    The first ``min_passes`` ask everyone (a second host answering for a taken address may have
    lost its first answer); later passes ask only the silent ones, and the scan ends early when
    nobody is left. All answers within the scan are kept, so two MACs for one address show. The
    source address is the interface's address on the target's subnet. ``deadline`` is a
    ``time.monotonic()`` value the scan never runs past.
    """
    t0 = time.monotonic()
    end = deadline if deadline is not None else float("inf")
    scan = ArpScan()
    if not targets or not iface.mac:
        return scan
    src_mac = mac_bytes(iface.mac)
    sock = (sock_factory or (lambda i: open_packet_socket(i, ETH_P_ARP)))(iface)
    wanted = set(targets)
    try:

        def drain(timeout: float) -> None:
            for frame, vid, at in recv_frames(sock, timeout, only_ours=True):
                ans = answer_from_frame(frame, vid)
                if ans is not None and ans.ip in wanted:
                    scan.answers.append(ArpAnswer(ans.ip, ans.mac, ans.vid, at - t0))

        for pass_no in range(passes):
            answered = {a.ip for a in scan.answers}
            todo = [t for t in targets if pass_no < min_passes or t not in answered]
            if not todo:
                break
            next_send = time.monotonic()
            for ip in todo:
                src = iface.onlink(ip)
                if src is None:
                    continue
                for vid in vids:
                    if time.monotonic() >= end:
                        break
                    sock.send(build_arp_request(src_mac, str(src.ip), ip, vid))
                    scan.sent += 1
                    next_send += interval_s
                    # Read while sending: answers to early requests must not overflow the buffer.
                    drain(max(0.0, next_send - time.monotonic()))
            stop = min(end, time.monotonic() + wait_s)
            while time.monotonic() < stop:
                drain(stop - time.monotonic())
    finally:
        sock.close()
    scan.duration_s = time.monotonic() - t0
    return scan


# --- ICMP -------------------------------------------------------------------------------------

IcmpMode = Literal["raw", "unprivileged"]


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


def open_icmp_socket(root: bool) -> tuple[socket.socket, IcmpMode] | None:
    """A raw ICMP socket with root, else the unprivileged datagram one, else None."""
    kinds: list[tuple[int, IcmpMode]] = []
    if root:
        kinds.append((socket.SOCK_RAW, "raw"))
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


def icmp_available(root: bool) -> IcmpMode | None:
    got = open_icmp_socket(root)
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
) -> PingStats | None:
    """``count`` echo requests ``interval_s`` apart; waits ``wait_s`` after the last (asyncio).

    With ``l2`` (root) the requests leave through a packet socket to the known MAC; answers are
    read on the raw ICMP socket either way. None when no ICMP socket can be opened (no root and
    ``ping_group_range`` excludes us).
    """
    got = open_icmp_socket(root)
    if got is None:
        return None
    sock, mode = got
    raw = mode == "raw"
    if raw:
        # Every raw ICMP socket gets a copy of every ICMP packet: with 50 devices pinged at once
        # that is 50 x 50 x 20 wake-ups. The kernel keeps only the packets from ``ip``.
        with contextlib.suppress(OSError, ValueError):
            attach_source_filter(sock, ip)
    tx: socket.socket | None = None
    if l2 is not None and raw:
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
                    if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(cdata) >= 16:
                        sec, nsec = struct.unpack_from("qq", cdata)
                        now = sec + nsec / 1e9
                parsed = parse_echo_reply(data, raw)
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
    return PingStats(count, tuple(rtts.get(s) for s in range(count)), mode)
