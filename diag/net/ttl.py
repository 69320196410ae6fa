"""The TTL walk: the SAME protocol and port sent with increasing TTL, and who answers.

``ttl_walk`` with scapy (root, Linux), ``socket_walk`` with plain sockets and the kernel's
``IP_RECVERR`` reports (no root, as tracepath; Linux only: ``Backend.recverr``). ``locate`` turns
the recorded answers into the hop that drops the probe; it is pure so that it is tested on
recorded walks. Sockets are watched with ``selectors`` (``select.poll`` does not exist on
Windows).
"""

from __future__ import annotations

import errno
import secrets
import selectors
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

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
    targets: Sequence[WalkTarget],
    max_ttl: int = 8,
    timeout_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, list[Hop]]:
    """``ttl_walk`` without root: ordinary sockets with ``IP_TTL`` and ``IP_RECVERR`` (Linux).

    The kernel hands ICMP errors about our own datagrams and SYNs to the socket's error queue
    with the offender's address, as ``tracepath`` uses it; a SYN that meets time-exceeded fails
    its connect at once. One socket per (target, TTL), all sent at once. Blocking: run it in a
    thread.
    """
    socks: dict[int, tuple[socket.socket, int, int]] = {}  # fd -> (socket, target index, ttl)
    found: dict[tuple[int, int], Hop] = {}
    sel = selectors.DefaultSelector()
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
                        sel.register(s, selectors.EVENT_WRITE)
                    else:
                        s.connect((t.address, t.port))
                        s.send(t.payload or b"\0")
                        sel.register(s, selectors.EVENT_READ)
                except OSError:
                    continue
        end = clock() + timeout_s
        while len(found) < len(socks):
            left = end - clock()
            if left <= 0:
                break
            for key, ev in sel.select(left):
                s, i, ttl = socks[key.fd]
                t = targets[i]
                hop = _socket_event(s, t, ttl, ev)
                if hop is not None:
                    found.setdefault((i, ttl), hop)
                    sel.unregister(s)
    finally:
        sel.close()
        for s, _i, _ttl in socks.values():
            s.close()
    return {
        t.key: [found.get((i, ttl), Hop(ttl, "silent")) for ttl in range(1, max_ttl + 1)]
        for i, t in enumerate(targets)
    }


def _socket_event(s: socket.socket, t: WalkTarget, ttl: int, ev: int) -> Hop | None:
    """The hop one ready socket reports. A selector reports an error (POLLERR) as readable and
    writable at once, so the error queue is read first whatever the event."""
    anc: list[tuple[int, int, bytes]] | None
    try:
        _data, anc, _flags, _addr = s.recvmsg(512, 1024, socket.MSG_ERRQUEUE)
    except (BlockingIOError, InterruptedError):
        anc = None  # nothing queued: not an ICMP error
    except OSError:
        anc = []
    if anc is not None:
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
    if err != 0 or anc is not None:
        # An error without an ICMP report (local: no route, ...): nothing came back.
        return Hop(ttl, "silent")
    if t.proto == "tcp":
        return Hop(ttl, "reply", t.address) if ev & selectors.EVENT_WRITE else None
    if ev & selectors.EVENT_READ:
        try:
            s.recv(2048)
        except OSError:
            return None
        return Hop(ttl, "reply", t.address)
    return None
