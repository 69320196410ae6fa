"""Low-level probes shared by the ports, wan and bandwidth checks: resolve, connect, ask, walk.

Everything here measures one thing and returns a small frozen answer; nothing here decides what a
measurement means. Names are resolved through the *site* resolver with dnspython (never the
system's getaddrinfo), so a check sees the names exactly as the cameras on the site see them.
UDP probes speak the protocol of the port they test (platform hello, STUN binding, DNS), because a
firewall or a server that answers only well-formed requests makes a blind datagram look blocked.

The TTL walk sends the SAME protocol and port with increasing TTL and records who answers:
``ttl_walk`` with scapy (root), ``socket_walk`` with plain sockets and the kernel's ``IP_RECVERR``
reports (no root, as tracepath). ``locate`` turns the recorded answers into the hop that drops
the probe; it is pure so that it is tested on recorded walks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import secrets
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dns.message
import dns.rcode
import dns.rdatatype

from diag.model import Site

# A resolver answers in tens of ms; 2 s covers a slow operator resolver on LTE without letting a
# dead one eat the check's whole budget.
RESOLVE_TIMEOUT_S = 2.0
# A STUN binding request's magic cookie (RFC 5389 section 6).
STUN_COOKIE = 0x2112A442

AnswerStatus = Literal["open", "refused", "timeout", "unreachable", "bad-reply", "error"]


# --- names ------------------------------------------------------------------------------------


class ResolveError(Exception):
    """A name did not resolve; ``reason`` is the rcode name or ``TIMEOUT``/``ERROR``."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


async def resolve(name: str, resolver_spec: str, timeout_s: float = RESOLVE_TIMEOUT_S) -> list[str]:
    """IPv4 addresses of ``name`` from one resolver (sorted); an IP literal is returned as is.

    ``resolver_spec`` is ``system`` (the first nameserver of the laptop's resolv.conf, asked
    directly) or ``ip`` / ``ip:port``. Uses the dns check's resolver so every check sees names
    the same way; raises ``ResolveError`` with the rcode (or TIMEOUT/ERROR/NODATA).
    """
    from diag.checks.dns import Resolver, system_resolver

    if is_ip(name):
        return [name]
    spec = system_resolver() if resolver_spec == "system" else resolver_spec
    if spec is None:
        raise ResolveError(name, "ERROR no resolver")
    try:
        res = Resolver(spec, attempt_timeouts=(timeout_s * 0.4, timeout_s * 0.6))
    except ValueError:
        raise ResolveError(name, "ERROR bad resolver") from None
    ans = await res.query(name, "A")
    if ans.rcode != "NOERROR":
        raise ResolveError(name, ans.rcode)
    addrs = sorted(a for a in ans.addresses if ":" not in a)
    if not addrs:
        raise ResolveError(name, "NODATA")
    return addrs


def site_resolver(site: Site) -> str:
    return site.network.site_resolver or "system"


# --- payloads --------------------------------------------------------------------------------


def hello_request(nonce: str) -> bytes:
    """The platform's hello (docs/platform-protocol.md)."""
    return f"DIAGP2P1 HELLO {nonce}".encode("ascii")


def parse_welcome(data: bytes, nonce: str) -> str | None:
    """The ``ip:port`` the platform saw, when ``data`` is the WELCOME for ``nonce``; else None."""
    try:
        parts = data.decode("ascii").split(" ")
    except UnicodeDecodeError:
        return None
    if len(parts) != 4 or parts[:3] != ["DIAGP2P1", "WELCOME", nonce]:
        return None
    ip, _, port = parts[3].rpartition(":")
    if not is_ip(ip.strip("[]")) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return parts[3]


def stun_request(txid: bytes) -> bytes:
    """A STUN binding request without attributes (RFC 5389)."""
    return struct.pack("!HHI", 0x0001, 0, STUN_COOKIE) + txid


def parse_stun_response(data: bytes, txid: bytes) -> str | None:
    """``ip:port`` of the XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) in a binding success for
    ``txid``; ``""`` for a matching success without an address; None when it is not one."""
    if len(data) < 20:
        return None
    mtype, length, cookie = struct.unpack("!HHI", data[:8])
    if mtype != 0x0101 or cookie != STUN_COOKIE or data[8:20] != txid or len(data) < 20 + length:
        return None
    mapped = ""
    pos = 20
    while pos + 4 <= 20 + length:
        atype, alen = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + alen]
        pos += 4 + alen + (-alen % 4)
        if atype in (0x0020, 0x0001) and len(value) >= 8 and value[1] == 0x01:
            port, raw = struct.unpack("!H", value[2:4])[0], value[4:8]
            if atype == 0x0020:
                port ^= STUN_COOKIE >> 16
                raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", STUN_COOKIE), strict=True))
            addr = f"{socket.inet_ntoa(raw)}:{port}"
            if atype == 0x0020 or not mapped:
                mapped = addr
    return mapped


def dns_request(name: str = ".") -> tuple[bytes, int]:
    """A DNS query (NS of ``name``) and its id: an answer of any rcode proves DNS passes."""
    q = dns.message.make_query(name, dns.rdatatype.NS)
    return q.to_wire(), q.id


def parse_dns_response(data: bytes, qid: int) -> str | None:
    """The rcode name when ``data`` is a DNS response to ``qid``; else None."""
    if len(data) < 12:
        return None
    rid, flags = struct.unpack("!HH", data[:4])
    if rid != qid or not flags & 0x8000:
        return None
    return dns.rcode.to_text(dns.rcode.Rcode(flags & 0xF))


@dataclass(frozen=True)
class UdpProbe:
    """One request/response exchange: the bytes to send and how to recognise the answer.

    ``accept`` returns None for "not the answer" and a string (possibly empty) for the answer's
    useful content (the public address the platform or STUN saw, a DNS rcode).
    """

    kind: str
    payload: bytes
    accept: Callable[[bytes], str | None]


def udp_probe_for(kind: str) -> UdpProbe:
    """A fresh probe (new nonce / transaction id) of kind ``hello``, ``stun``, ``dns``, ``echo``."""
    if kind == "hello":
        nonce = secrets.token_hex(6)
        return UdpProbe(kind, hello_request(nonce), lambda d: parse_welcome(d, nonce))
    if kind == "stun":
        txid = secrets.token_bytes(12)
        return UdpProbe(kind, stun_request(txid), lambda d: parse_stun_response(d, txid))
    if kind == "dns":
        wire, qid = dns_request()
        return UdpProbe(kind, wire, lambda d: parse_dns_response(d, qid))
    payload = b"DIAGP2P1 ECHO " + secrets.token_hex(6).encode()
    return UdpProbe("echo", payload, lambda d: "" if d else None)


# --- exchanges -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one probe got: ``open`` (answered), ``refused`` (RST / ICMP port unreachable),
    ``timeout`` (silence), ``unreachable`` (ICMP host/net unreachable), ``bad-reply``."""

    status: AnswerStatus
    rtt_ms: float | None = None
    info: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "open"


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)


def _error_status(exc: OSError) -> AnswerStatus:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
        return "unreachable"
    return "error"


async def udp_exchange(
    address: str,
    port: int,
    make_probe: Callable[[], UdpProbe],
    timeout_s: float,
    tries: int = 3,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Sends a probe up to ``tries`` times within ``timeout_s`` and waits for the answer.

    Each retransmission is a fresh probe (new nonce) so a late answer to an earlier one is still
    recognised: all probes sent are accepted, the RTT is measured from the probe answered.
    A datagram that is not an answer is remembered as ``bad-reply`` if nothing better comes.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _UdpClient, remote_addr=(address, port), family=family
        )
    except OSError as exc:
        return Answer(_error_status(exc), info=type(exc).__name__)
    sent: list[tuple[UdpProbe, float]] = []
    bad = False
    try:
        end = clock() + timeout_s
        gap = timeout_s / max(1, tries)
        for i in range(tries):
            probe = make_probe()
            sent.append((probe, clock()))
            transport.sendto(probe.payload)
            next_send = min(end, clock() + gap) if i < tries - 1 else end
            while True:
                left = next_send - clock()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(proto.queue.get(), left)
                except TimeoutError:
                    break
                if isinstance(item, OSError):
                    # A fresh socket's own port: an ICMP error on it is about our datagram.
                    return Answer(_error_status(item), info=type(item).__name__)
                for p, t_sent in reversed(sent):
                    got = p.accept(item)
                    if got is not None:
                        return Answer("open", round((clock() - t_sent) * 1000, 3), got)
                bad = True
            if clock() >= end:
                break
    finally:
        transport.close()
    return Answer("bad-reply" if bad else "timeout")


async def tcp_connect(
    address: str, port: int, timeout_s: float, clock: Callable[[], float] = time.monotonic
) -> Answer:
    """A TCP handshake: ``open`` with the connect time, ``refused`` on RST, ``timeout``."""
    t0 = clock()
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout_s)
    except TimeoutError:
        return Answer("timeout")
    except OSError as exc:
        return Answer(_error_status(exc), info=type(exc).__name__)
    rtt = round((clock() - t0) * 1000, 3)
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 0.2)
    return Answer("open", rtt)


@dataclass(frozen=True)
class Series:
    """Per-probe RTTs in ms (None: lost), in sending order, and what the answers said."""

    rtts: tuple[float | None, ...] = ()
    infos: tuple[str, ...] = ()
    available: bool = True

    @property
    def answered(self) -> list[float]:
        return [r for r in self.rtts if r is not None]

    @property
    def loss_pct(self) -> float | None:
        if not self.rtts:
            return None
        return round(100.0 * (len(self.rtts) - len(self.answered)) / len(self.rtts), 2)


async def udp_series(
    address: str, port: int, kind: str, count: int, interval_s: float, timeout_s: float
) -> Series:
    """``count`` probes of ``kind`` on one socket, ``interval_s`` apart; each answer is matched
    to its own probe (own nonce), so loss, RTT and jitter come out per probe. Waits
    ``timeout_s`` after the last one for stragglers."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _UdpClient, remote_addr=(address, port), family=family
        )
    except OSError:
        return Series(rtts=(None,) * count)
    probes: list[tuple[UdpProbe, float]] = []
    rtts: dict[int, float] = {}
    infos: list[str] = []

    async def receive() -> None:
        while len(rtts) < count:
            item = await proto.queue.get()
            if isinstance(item, OSError):
                continue  # ICMP errors: the probe counts as lost
            now = time.monotonic()
            for i, (p, t_sent) in enumerate(probes):
                if i in rtts:
                    continue
                got = p.accept(item)
                if got is not None:
                    rtts[i] = round((now - t_sent) * 1000, 3)
                    infos.append(got)
                    break

    rx = asyncio.create_task(receive())
    try:
        for i in range(count):
            p = udp_probe_for(kind)
            probes.append((p, time.monotonic()))
            transport.sendto(p.payload)
            if i < count - 1:
                await asyncio.sleep(interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(rx), timeout_s)
    finally:
        rx.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rx
        transport.close()
    return Series(tuple(rtts.get(i) for i in range(count)), tuple(infos))


# --- ICMP echo -------------------------------------------------------------------------------


async def icmp_ping(
    address: str, count: int, interval_s: float, timeout_s: float, allow_raw: bool = True
) -> Series:
    """``count`` ICMP echos ``interval_s`` apart, waited for ``timeout_s`` after the last.

    The heartbeat check's ``lan.ping`` does the work (raw socket with root, else the kernel's
    unprivileged ping socket, kernel receive timestamps); ``allow_raw`` is ``World.is_root()``.
    ``available`` is false when neither socket can be opened (no root, ``ping_group_range``).
    """
    from diag.checks.lan import ping

    stats = await ping(address, count, interval_s, timeout_s, allow_raw)
    if stats is None:
        return Series(available=False)
    return Series(tuple(None if r is None else round(r, 3) for r in stats.rtts_ms))


def jitter_ms(rtts: Sequence[float]) -> float | None:
    """Mean absolute difference of consecutive answered RTTs, ms (``lan.jitter_ms``)."""
    from diag.checks.lan import jitter_ms as lan_jitter

    return lan_jitter(list(rtts))


# --- TTL walk --------------------------------------------------------------------------------

HopKind = Literal["time-exceeded", "reply", "rejected", "silent"]
BlockedAt = Literal["router", "isp", "beyond", "unknown"]


@dataclass(frozen=True)
class Hop:
    """What came back for the probe sent with TTL ``ttl``.

    ``time-exceeded``: a router on the path (``responder``) dropped it for TTL; ``reply``: the
    destination answered the protocol (SYN-ACK, a UDP answer); ``rejected``: an RST or ICMP
    unreachable (from the destination or a filter, ``responder`` says which); ``silent``: nothing.
    """

    ttl: int
    kind: HopKind
    responder: str | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class WalkTarget:
    key: str
    address: str
    port: int
    proto: Literal["tcp", "udp"]
    payload: bytes = b""


@dataclass(frozen=True)
class Location:
    """Where a probe dies: ``blocked_hop`` is the TTL of the last hop that answered before it
    died (0: not even the first hop answered; None: the walk says nothing), ``passes`` when the
    destination answered the protocol."""

    passes: bool
    blocked_hop: int | None
    blocked_at: BlockedAt | None
    reason: str = ""


def gateway_ttl(hops: Sequence[Hop], gateway: str | None) -> int | None:
    """The TTL at which ``gateway`` answered time-exceeded in a walk, or None."""
    if gateway is None:
        return None
    for h in sorted(hops, key=lambda h: h.ttl):
        if h.kind == "time-exceeded" and h.responder == gateway:
            return h.ttl
    return None


def locate(
    hops: Sequence[Hop],
    destination: str,
    gateway_at: int | None,
    reference_first_hop: bool = False,
    refused: bool = False,
) -> Location:
    """Where the probe recorded in ``hops`` dies (pure).

    The last hop that answered time-exceeded is the last router the probe crossed: a router that
    drops a port in its forward path still answers the TTL that expires on it (Linux checks the
    TTL before the forward filter). So the probe died right after that hop: right after the site
    gateway means the router blocks it; one hop further, the operator's first router; further,
    somewhere beyond. ``gateway_at`` is the gateway's TTL (from a passing reference walk; 1 when
    unknown). ``reference_first_hop``: a reference walk got time-exceeded at TTL 1, so a probe
    that gets nothing at all dies at the router before its TTL check (an ingress filter).
    ``refused``: the plain probe was actively refused (RST / ICMP port unreachable); when the walk
    then sees no such answer (hosts rate-limit ICMP errors: ~6 in a burst, then 1/s), the refusal
    came from beyond the last time-exceeded hop, not from a silent drop.
    """
    gw = gateway_at or 1
    ordered = sorted(hops, key=lambda h: h.ttl)
    final = next((h for h in ordered if h.kind in ("reply", "rejected")), None)
    limit = final.ttl if final is not None else None
    te = [h for h in ordered if h.kind == "time-exceeded" and (limit is None or h.ttl < limit)]
    last = te[-1].ttl if te else None
    if final is not None and final.kind == "reply":
        return Location(True, None, None, "destination answered")

    def where(hop: int) -> BlockedAt:
        if hop <= gw:
            return "router"
        if hop == gw + 1:
            return "isp"
        return "beyond"

    if final is not None:
        # An RST or ICMP unreachable at TTL t came from the hop after the last time-exceeded.
        if final.responder not in (None, destination):
            # A filter said so itself (ICMP administratively prohibited from its own address).
            return Location(False, last or 0, where(final.ttl), "rejected by a filter")
        if final.ttl <= gw + 1:
            # "From the destination" this close: the router forged the RST / unreachable.
            return Location(False, last or 0, "router", "rejected at the router")
        return Location(False, last, "beyond", "destination reached, port closed")
    if refused and last is not None and last > gw:
        return Location(False, last, "beyond", "refused beyond the operator's first hop")
    if last is None:
        if reference_first_hop:
            return Location(False, 0, "router", "not even the first hop answered")
        return Location(False, None, "unknown", "no hop answered")
    return Location(False, last, where(last), "silent after the last hop")


def _walk_packets(targets: Sequence[WalkTarget], max_ttl: int, base_port: int) -> list[Any]:
    from scapy.layers.inet import IP, TCP, UDP  # scapy is slow to import: only when walking

    pkts: list[Any] = []
    for i, t in enumerate(targets):
        for ttl in range(1, max_ttl + 1):
            # One source port per (target, TTL): every answer maps back to exactly one probe.
            sport = base_port + i * max_ttl + ttl
            if t.proto == "tcp":
                syn = TCP(sport=sport, dport=t.port, flags="S", seq=secrets.randbelow(2**32))
                pkts.append(IP(dst=t.address, ttl=ttl) / syn)
            else:
                pkts.append(IP(dst=t.address, ttl=ttl) / UDP(sport=sport, dport=t.port) / t.payload)
    return pkts


def ttl_walk(
    targets: Sequence[WalkTarget], max_ttl: int = 8, timeout_s: float = 1.0
) -> dict[str, list[Hop]]:
    """Sends every target's probe with TTL 1..max_ttl at once (scapy, root) and records answers.

    Blocking: run it in a thread. All TTLs go out together (not one after another), so a walk
    costs one timeout whatever the path length.
    """
    from scapy.config import conf
    from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
    from scapy.sendrecv import sr

    conf.verb = 0
    base = 33000 + secrets.randbelow(20000)
    pkts = _walk_packets(targets, max_ttl, base)
    ans, _unans = sr(pkts, timeout=timeout_s, verbose=0, multi=True)
    found: dict[tuple[int, int], Hop] = {}
    for _sent, rcv in ans:
        if IP not in rcv:
            continue
        src = rcv[IP].src
        sport: int | None = None
        hop_kind: HopKind | None = None
        code: int | None = None
        if ICMP in rcv and IPerror in rcv:
            icmp = rcv[ICMP]
            inner = rcv[TCPerror] if TCPerror in rcv else rcv.getlayer(UDPerror)
            if inner is None:
                continue
            sport = int(inner.sport)
            code = int(icmp.code)
            if icmp.type == 11:
                hop_kind = "time-exceeded"
            elif icmp.type == 3:
                hop_kind = "rejected"
            else:
                continue
        elif TCP in rcv:
            sport = int(rcv[TCP].dport)
            hop_kind = "reply" if rcv[TCP].flags & 0x12 == 0x12 else "rejected"
        elif UDP in rcv:
            sport = int(rcv[UDP].dport)
            hop_kind = "reply"
        if sport is None or hop_kind is None:
            continue
        idx, ttl = divmod(sport - base - 1, max_ttl)
        if not 0 <= idx < len(targets):
            continue
        found.setdefault((idx, ttl + 1), Hop(ttl + 1, hop_kind, src, code))
    out: dict[str, list[Hop]] = {}
    for i, t in enumerate(targets):
        out[t.key] = [found.get((i, ttl), Hop(ttl, "silent")) for ttl in range(1, max_ttl + 1)]
    return out


# --- TTL walk without root --------------------------------------------------------------------

# Linux constants Python's socket module does not export.
IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2
_EE = struct.Struct("=IBBBBII")  # struct sock_extended_err


def parse_recverr(cmsgs: Sequence[tuple[int, int, bytes]]) -> tuple[int, int, str | None] | None:
    """(ICMP type, code, offender IP) from an ``IP_RECVERR`` control message (pure).

    The kernel queues ``struct sock_extended_err`` followed by the offender's ``sockaddr_in``
    (``SO_EE_OFFENDER``). None when no ICMP error is in ``cmsgs`` or it is malformed.
    """
    for level, typ, data in cmsgs:
        if level != socket.IPPROTO_IP or typ != IP_RECVERR or len(data) < _EE.size:
            continue
        _errno, origin, itype, code, _pad, _info, _data = _EE.unpack_from(data)
        if origin != SO_EE_ORIGIN_ICMP:
            continue
        offender: str | None = None
        off = data[_EE.size :]
        if len(off) >= 8 and struct.unpack_from("=H", off)[0] == socket.AF_INET:
            ip = socket.inet_ntoa(off[4:8])
            offender = None if ip == "0.0.0.0" else ip
        return itype, code, offender
    return None


def socket_walk(
    targets: Sequence[WalkTarget], max_ttl: int = 8, timeout_s: float = 1.0
) -> dict[str, list[Hop]]:
    """``ttl_walk`` without root: ordinary sockets with ``IP_TTL`` and ``IP_RECVERR`` (Linux).

    The kernel hands ICMP errors about our own datagrams and SYNs to the socket's error queue
    with the offender's address, as ``tracepath`` uses it; a SYN that meets time-exceeded fails
    its connect at once. One socket per (target, TTL), all sent at once. Blocking: run it in a
    thread.
    """
    import select

    socks: dict[int, tuple[socket.socket, int, int]] = {}  # fd -> (socket, target index, ttl)
    found: dict[tuple[int, int], Hop] = {}
    poller = select.poll()
    try:
        for i, t in enumerate(targets):
            for ttl in range(1, max_ttl + 1):
                kind = socket.SOCK_STREAM if t.proto == "tcp" else socket.SOCK_DGRAM
                s = socket.socket(socket.AF_INET, kind)
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
                socks[s.fileno()] = (s, i, ttl)
                try:
                    if t.proto == "tcp":
                        s.connect_ex((t.address, t.port))
                        poller.register(s, select.POLLOUT | select.POLLERR)
                    else:
                        s.connect((t.address, t.port))
                        s.send(t.payload or b"\0")
                        poller.register(s, select.POLLIN | select.POLLERR)
                except OSError:
                    continue
        end = time.monotonic() + timeout_s
        while len(found) < len(socks):
            left = end - time.monotonic()
            if left <= 0:
                break
            for fd, ev in poller.poll(left * 1000):
                s, i, ttl = socks[fd]
                t = targets[i]
                hop = _socket_event(s, t, ttl, ev)
                if hop is not None:
                    found.setdefault((i, ttl), hop)
                    poller.unregister(fd)
    finally:
        for s, _i, _ttl in socks.values():
            s.close()
    return {
        t.key: [found.get((i, ttl), Hop(ttl, "silent")) for ttl in range(1, max_ttl + 1)]
        for i, t in enumerate(targets)
    }


def _socket_event(s: socket.socket, t: WalkTarget, ttl: int, ev: int) -> Hop | None:
    import select

    if ev & select.POLLERR:
        try:
            _data, anc, _flags, _addr = s.recvmsg(512, 1024, socket.MSG_ERRQUEUE)
        except OSError:
            anc = []
        got = parse_recverr(anc)
        if got is not None:
            itype, code, offender = got
            if itype == 11:
                return Hop(ttl, "time-exceeded", offender, code)
            if itype == 3:
                return Hop(ttl, "rejected", offender, code)
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == errno.ECONNREFUSED:
            return Hop(ttl, "rejected", t.address)
        # An error without an ICMP report (local: no route, ...): nothing came back.
        return Hop(ttl, "silent")
    if t.proto == "tcp" and ev & select.POLLOUT:
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            return Hop(ttl, "reply", t.address)
        return None
    if ev & select.POLLIN:
        try:
            s.recv(2048)
        except OSError:
            return None
        return Hop(ttl, "reply", t.address)
    return None
