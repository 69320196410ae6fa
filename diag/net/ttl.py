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
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    ``reply_ttl``: the IP TTL the answer arrived with (None: not seen), which says how many hops
    away it was sent from.
    """

    ttl: int
    kind: HopKind
    responder: str | None = None
    icmp_code: int | None = None
    reply_ttl: int | None = None


@dataclass(frozen=True)
class WalkTarget:
    """One probe to walk; ``ttls``: only these TTLs (a second look), all of 1..max_ttl if empty."""

    key: str
    address: str
    port: int
    proto: Literal["tcp", "udp"]
    payload: bytes = b""
    ttls: tuple[int, ...] = ()

    def walked(self, max_ttl: int) -> list[int]:
        return [t for t in self.ttls if 1 <= t <= max_ttl] or list(range(1, max_ttl + 1))


@dataclass(frozen=True)
class Location:
    """Where a probe dies: ``blocked_hop`` is the TTL of the hop that holds the rule (0: not even
    the first hop answered; None: the walk says nothing), ``passes`` when the destination
    answered the protocol."""

    passes: bool
    blocked_hop: int | None
    blocked_at: BlockedAt | None
    reason: str = ""
    # False: read from a hop that answered nothing (out of ICMP); another look may settle it.
    certain: bool = True


def gateway_ttl(hops: Sequence[Hop], gateway: str | None) -> int | None:
    """The TTL at which ``gateway`` answered time-exceeded in a walk, or None."""
    if gateway is None:
        return None
    for h in sorted(hops, key=lambda h: h.ttl):
        if h.kind == "time-exceeded" and h.responder == gateway:
            return h.ttl
    return None


def hop_numbers(walks: Iterable[Sequence[Hop]], kind: HopKind = "time-exceeded") -> dict[str, int]:
    """The lowest TTL at which each address answered ``kind`` in any of ``walks`` (pure):
    time-exceeded places a router, a protocol reply a destination."""
    out: dict[str, int] = {}
    for hops in walks:
        for h in hops:
            if h.kind == kind and h.responder is not None:
                out[h.responder] = min(h.ttl, out.get(h.responder, h.ttl))
    return out


# Initial TTLs that hosts and routers send with (Linux and most Unix 64, Windows 128, network
# gear 255); an answer's sender is the smallest one at or above the TTL it arrived with.
_INITIAL_TTLS = (32, 64, 128, 255)


def sender_distance(reply_ttl: int | None) -> int | None:
    """How many hops away an answer was sent from (1: the first hop), from its arrival TTL."""
    if reply_ttl is None or not 0 < reply_ttl <= 255:
        return None
    initial = next(i for i in _INITIAL_TTLS if i >= reply_ttl)
    return initial - reply_ttl + 1


def locate(
    hops: Sequence[Hop],
    destination: str,
    gateway_at: int | None,
    refused: bool = False,
    reference: Sequence[Hop] = (),
    others: Sequence[Sequence[Hop]] = (),
) -> Location:
    """Where the probe recorded in ``hops`` dies (pure); ``blocked_hop`` is the TTL of the hop
    that holds the rule.

    ``reference``: the walk of a target that passes, sent in the same burst right after this
    one at every TTL; ``others``: every other walk (the same path); ``refused``: the plain probe
    was actively refused (RST / ICMP unreachable); ``gateway_at``: the site gateway's TTL (1
    when unknown).

    Linux checks the TTL of a packet it forwards before its forward filter: a router whose
    forward chain drops or rejects a port still answers time-exceeded to the probe whose TTL
    ends on it, and the probe one TTL longer meets the filter. So a forward filter on hop k shows
    time-exceeded from k, then, from TTL k+1 on, silence (drop) or a rejection (reject) sent by
    hop k itself: an ICMP unreachable from hop k's own address, or an RST forged with the
    destination's address. A destination (or a filter in its input chain) answers the probe
    that reaches it, at the TTL it sits at. So a rejection is placed by who sent it: an address
    that answered time-exceeded at TTL k in some walk is hop k; else the answer's arrival TTL
    (``Hop.reply_ttl``) says how far away it was sent; else an ICMP from an address on no walk
    is the forward filter of the last hop crossed, and "the destination" this close to us (the
    router's TTL + 1) is the router's forgery.

    A silent probe died after its last time-exceeded hop, if the reference shows that the hops
    answer. A hop has a small ICMP budget per destination (Linux: a burst of 6 errors, then
    1/s), and the site's devices share our public address: a hop that rejects their traffic
    spends it, and then answers the reference (which crossed it) nothing. Such a muted hop is
    no witness: when it is the next hop, the probe died there if it was ``refused`` (its
    rejection lost to the budget, certain=False: a later look may settle it) and is unknown if
    not; when it is the last hop that answered this probe and the probe was refused, that hop is
    the one rejecting (certain=False too: its budget may have gone on other traffic). A refusal
    after the operator's first hop, with no router at the next TTL, is the destination refusing,
    its ICMP errors rate-limited (certain=False: the last hop may be rejecting with its budget
    spent on earlier probes).
    """
    gw = gateway_at or 1
    routers = hop_numbers([hops, *others, reference])
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
        return _place_rejection(final, destination, gw, routers, last, where)
    reached = last or 0
    nxt = reached + 1
    seen = {h.ttl for h in reference if h.kind in ("time-exceeded", "reply")}

    def muted(ttl: int) -> bool:
        # The reference crossed the hop at ``ttl`` (something answered beyond it), it did not.
        return ttl not in seen and any(t > ttl for t in seen)

    if refused and reached >= 1 and muted(reached):
        return Location(False, reached, where(reached), "refused by a hop short of ICMP", False)
    if muted(nxt):
        if refused:
            return Location(False, nxt, where(nxt), "refused by a hop out of ICMP", False)
        return Location(False, None, "unknown", "the next hop answers no walk", False)
    if refused and reached > gw and nxt not in routers.values():
        # Or the last hop rejects with its ICMP spent on the earlier checks' probes: a later
        # look gets the rejection from whichever sends it.
        return Location(False, reached, "beyond", "refused beyond the operator's first hop", False)
    if last is None:
        if any(h.ttl == 1 and h.kind == "time-exceeded" for h in reference):
            # The first hop answers the reference: this probe dies there before its TTL
            # check (an ingress filter).
            return Location(False, 0, "router", "not even the first hop answered")
        return Location(False, None, "unknown", "no hop answered")
    return Location(False, last, where(last), "silent after the last hop")


def second_look(hops: Sequence[Hop], max_ttl: int) -> tuple[int, ...]:
    """The TTLs worth sending again when a walk could not place a port (pure): the one after
    its last time-exceeded hop (a filter on that hop rejects it; a hop past it answers
    time-exceeded) and the next (the rejection of a filter one hop further)."""
    last = max((h.ttl for h in hops if h.kind == "time-exceeded"), default=0)
    return tuple(t for t in (last + 1, last + 2) if t <= max_ttl)


def merge(hops: Sequence[Hop], more: Sequence[Hop]) -> list[Hop]:
    """``hops`` with the silent TTLs filled from a later look at the same probe (pure)."""
    again = {h.ttl: h for h in more if h.kind != "silent"}
    return [again.get(h.ttl, h) if h.kind == "silent" else h for h in hops]


def _place_rejection(
    final: Hop,
    destination: str,
    gw: int,
    at: Mapping[str, int],
    last: int | None,
    where: Callable[[int], BlockedAt],
) -> Location:
    """The hop that sent the RST or ICMP unreachable first seen at TTL ``final.ttl``."""
    t = final.ttl
    hop: int | None = at.get(final.responder) if final.responder is not None else None
    if hop is None:
        hop = sender_distance(final.reply_ttl)
    if hop is None:
        if final.responder not in (None, destination):
            # A filter's own address on no walk: the forward filter of the last hop crossed.
            hop = t - 1
        else:
            # "From the destination", no arrival TTL: this close to us, a forgery of the router.
            hop = t - 1 if t <= gw + 1 else t
    # The probe crossed every hop that answered time-exceeded; it cannot be sent from before.
    hop = max(min(hop, t), last or 0)
    if hop >= t and final.responder in (None, destination):
        return Location(False, last, "beyond", "destination reached, port closed")
    if hop == 0:
        return Location(False, 0, "router", "rejected at the router")
    return Location(False, hop, where(hop), "rejected by a filter")


def send_order(targets: Sequence[WalkTarget], max_ttl: int) -> list[tuple[int, int]]:
    """(target index, TTL) in the order a walk sends them (pure).

    TTL by TTL, every target at one TTL before the next, and TTL 1 last: a hop has a small ICMP
    budget for us (Linux: a burst of 6 errors per destination, then 1/s), spent in the order
    the probes reach it. The probes that end on a hop (time-exceeded) and the first ones it
    rejects say where a port dies; its rejections of the later TTLs only repeat that. TTL 1 goes
    last because every probe reaches the first hop: its time-exceeded answers say nothing a
    rejection by that hop would not say better.
    """
    walked = [set(t.walked(max_ttl)) for t in targets]
    ttls = [*range(2, max_ttl + 1), 1]
    return [(i, ttl) for ttl in ttls for i in range(len(targets)) if ttl in walked[i]]


def _walk_packets(targets: Sequence[WalkTarget], max_ttl: int, base_port: int) -> list[Any]:
    from scapy.layers.inet import IP, TCP, UDP  # scapy is slow to import: only when walking

    pkts: list[Any] = []
    for i, ttl in send_order(targets, max_ttl):
        t = targets[i]
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
        arrived = int(rcv[IP].ttl)
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
        found.setdefault((idx, ttl + 1), Hop(ttl + 1, hop_kind, src, code, arrived))
    out: dict[str, list[Hop]] = {}
    for i, t in enumerate(targets):
        out[t.key] = [found.get((i, ttl), Hop(ttl, "silent")) for ttl in t.walked(max_ttl)]
    return out


# --- TTL walk without root --------------------------------------------------------------------

# Linux constants Python's socket module does not export.
IP_RECVERR = 11
IP_RECVTTL = 12  # the arrival TTL of what the socket receives, its error queue included
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


def parse_ttl(cmsgs: Sequence[tuple[int, int, bytes]]) -> int | None:
    """The arrival TTL from an ``IP_RECVTTL`` control message (an int), or None (pure)."""
    for level, typ, data in cmsgs:
        if level == socket.IPPROTO_IP and typ == socket.IP_TTL and len(data) >= 4:
            value = int(struct.unpack_from("=i", data)[0])
            return value if 0 < value <= 255 else None
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
        for i, ttl in send_order(targets, max_ttl):
            t = targets[i]
            kind = socket.SOCK_STREAM if t.proto == "tcp" else socket.SOCK_DGRAM
            s = socket.socket(socket.AF_INET, kind)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
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
        t.key: [found.get((i, ttl), Hop(ttl, "silent")) for ttl in t.walked(max_ttl)]
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
            arrived = parse_ttl(anc)
            if itype == 11:
                return Hop(ttl, "time-exceeded", offender, code, arrived)
            if itype == 3:
                return Hop(ttl, "rejected", offender, code, arrived)
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
