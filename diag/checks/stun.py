"""NAT behaviour check: RFC 5780 mapping/filtering (RFC 4787), hairpinning, ALG, lifetime, CGNAT.

What a P2P camera platform needs from the site's NAT is measured against the platform's own STUN
servers (``profile.stun_servers``), in an order chosen so that the NAT's state created by one probe
cannot bias another:

1. *First binding* (RFC 5780 test I) from socket S1: mapped address, the server's OTHER-ADDRESS,
   and the round-trip time that sets every later timeout. No answer from any server: UDP blocked.
2. *Filtering* (tests II and III of RFC 5780 4.4), each from its own fresh socket that never sent
   anything but one request to the primary address, together with *hairpinning* (a fresh socket
   sends to S1's mapped address) and, when the server did not send MAPPED-ADDRESS, a classic
   RFC 3489 request for the ALG comparison. They run concurrently: one RTO-bounded wait for all.
3. *Mapping* (tests II and III of 4.3) from S1 to the alternate address and port.

Why filtering comes before mapping here, and on separate sockets: the mapping tests are the first
packets that go to the server's alternate address. A NAT whose filter remembers *peer addresses*
per host rather than per mapping (the lab's restricted cone does; so do some consumer routers)
would otherwise let the filtering test's answer from that address through, and an "address
restricted" NAT would look like a full cone. Separate sockets avoid the opposite bias that makes
pystun3 call every Linux NAT symmetric: its filtering test leaves a conntrack entry for the dropped
answer on the same port it then uses for the mapping test, so the NAT must pick a new port.

In deep mode the UDP mapping lifetime is searched against the profile's heartbeat interval with
fresh sockets probed in parallel (RFC 5780 4.6, RESPONSE-PORT), stopping as soon as the lifetime is
proven ≥ the interval, or proven shorter and bracketed. Independently, the gateway is asked what
port-mapping services it offers (``nat_discovery``; read-only), which also gives the router's WAN
address for the CGNAT / double-NAT decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from diag.checks import nat_discovery
from diag.checks.base import Check, Context, profile_need
from diag.i18n import N_, Message, msg
from diag.model import Fact, JSONValue, Metric, Outcome, Site, Status
from diag.net.addr import join_host_port
from diag.net.backend import Backend
from diag.net.resolve import RESOLVE_TIMEOUT_S, resolve_host
from diag.net.route import default_gateway, local_ip_towards
from diag.net.stun_codec import (
    CLASS_ERROR,
    CLASS_REQUEST,
    CLASS_SUCCESS,
    Address,
    StunDecodeError,
    StunMessage,
    binding_request,
    decode,
)

# --- timing ---------------------------------------------------------------------------------
# The first binding has no RTT to go by. RFC 5389 starts at RTO = 500 ms and waits 39.5 s in
# all; a diagnostic run cannot wait that long, and a server that needs more than 3 s to answer
# is useless for P2P anyway. Sends at 0, 0.25, 0.75 and 1.75 s (doubling from 250 ms: one
# cellular RTT under load) cover three lost datagrams; "UDP blocked" is declared after 3 s.
FIRST_SCHEDULE_S = (0.0, 0.25, 0.75, 1.75)
FIRST_GIVE_UP_S = 3.0
# With several STUN servers, the next one is tried after this long without an answer from the
# previous ones (happy-eyeballs style), s: long enough that a healthy first server always wins,
# so its alternate address is not contacted by another socket before the filtering tests.
SERVER_STAGGER_S = 0.5
# Once the RTT is known, RTO = 3 × RTT: RFC 6298's first-sample rule (SRTT + 4 × RTTVAR with
# RTTVAR = RTT / 2). Bounded below by 50 ms so that scheduler jitter on a busy laptop (or a
# 2-core CI box running a lab) is not mistaken for loss, and above by 1 s (RFC 6298's minimum).
RTT_FACTOR = 3.0
RTO_MIN_S = 0.05
RTO_MAX_S = 1.0
# Later transactions send at 0, RTO and 3 × RTO and give up at 7 × RTO: RFC 5389's doubling with
# Rc = 3 instead of 7. A filtering test's "no answer" is the signal, so this wait is the
# classification's main cost: 0.35 s on a LAN-like lab path, ≤ 7 s on the worst link.
RETRY_SLOTS = (0.0, 1.0, 3.0)
GIVE_UP_SLOTS = 7.0
# Deep mode: idle intervals tried in the first round, as fractions of the heartbeat interval.
LIFETIME_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
# The lifetime search stops refining when the bracket is narrower than this, s (or 10 %).
LIFETIME_RESOLUTION_S = 0.5
# A refinement round splits the bracket into this many parts, all probed at once: a socket pair
# per probe is cheap, while every extra round costs the bracket's upper end in waiting.
LIFETIME_REFINE_SPLIT = 8
# Time kept back from the check's deadline for reporting, s.
REPORT_MARGIN_S = 0.5

MAPPINGS = ("EIM", "ADM", "APDM")
FILTERINGS = ("EIF", "ADF", "APDF")
# Documentation ranges the lab uses for its "internet" side: they stand in for public addresses.
# (Python counts them as private; a real WAN never carries them.)
_PUBLIC_STAND_INS = tuple(
    ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT space


@dataclass(frozen=True)
class Reply:
    """One STUN response that matched a transaction we sent."""

    msg: StunMessage
    source: Address
    rtt_s: float
    via: _Endpoint
    mapped: Address | None
    plain_mapped: Address | None
    other: Address | None


class _Registry:
    """Transaction ids in flight across all sockets of one run -> who waits for them.

    Shared so that a response arriving on another socket than the one that asked (RESPONSE-PORT
    in the lifetime test) still finds its transaction.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        # The context's clock: sent and received times of every transaction.
        self.clock = clock
        self.pending: dict[bytes, tuple[asyncio.Future[Reply], float, Callable[[Reply], bool]]] = {}
        self.malformed = 0
        self.errors: list[int] = []


class _Endpoint(asyncio.DatagramProtocol):
    """One UDP socket: demultiplexes STUN responses by transaction id, records requests seen."""

    def __init__(self, registry: _Registry) -> None:
        self.registry = registry
        self.transport: asyncio.DatagramTransport | None = None
        self.requests_seen: dict[bytes, Address] = {}
        self.request_event = asyncio.Event()
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's
        self.port = int(transport.get_extra_info("sockname")[1])

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors on unconnected UDP: the retransmission timer decides

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        try:
            m = decode(data)
        except StunDecodeError:
            self.registry.malformed += 1
            return
        if m.msg_class == CLASS_REQUEST:
            # Only the hairpin probe sends requests to our sockets; remember who it was.
            self.requests_seen[m.transaction_id] = source
            self.request_event.set()
            return
        entry = self.registry.pending.get(m.transaction_id)
        if entry is None:
            return
        fut, sent, accept = entry
        if m.msg_class == CLASS_ERROR:
            with contextlib.suppress(StunDecodeError):
                code = m.error_code
                if code:
                    self.registry.errors.append(code[0])
            return
        if m.msg_class != CLASS_SUCCESS:
            return
        try:
            reply = Reply(
                m,
                source,
                self.registry.clock() - sent,
                self,
                m.xor_mapped_address if not m.classic else None,
                m.mapped_address,
                m.other_address,
            )
        except StunDecodeError:
            self.registry.malformed += 1
            return
        if reply.mapped is None and reply.plain_mapped is None:
            self.registry.malformed += 1
            return
        if not fut.done() and accept(reply):
            fut.set_result(reply)

    def send(self, data: bytes, dest: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, dest)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _open(registry: _Registry, family: int) -> _Endpoint:
    loop = asyncio.get_running_loop()
    bind = "::" if family == socket.AF_INET6 else "0.0.0.0"
    _, proto = await loop.create_datagram_endpoint(
        lambda: _Endpoint(registry), local_addr=(bind, 0), family=family
    )
    return proto


def _any_reply(_r: Reply) -> bool:
    return True


async def transact(
    ep: _Endpoint,
    dest: Address,
    schedule: Sequence[float],
    give_up: float,
    accept: Callable[[Reply], bool] = _any_reply,
    **request: Any,
) -> Reply | None:
    """One STUN transaction with retransmissions; each send has its own transaction id.

    A fresh id per retransmission makes every RTT sample unambiguous (Karn's problem does not
    arise): the reply names the exact datagram it answers.
    """
    loop = asyncio.get_running_loop()
    got: asyncio.Future[Reply] = loop.create_future()
    tids: list[bytes] = []
    t0 = loop.time()
    try:
        for at in schedule:
            delay = t0 + at - loop.time()
            if delay > 0:
                await asyncio.wait({got}, timeout=delay)
            if got.done():
                return got.result()
            data, tid = binding_request(**request)
            ep.registry.pending[tid] = (got, ep.registry.clock(), accept)
            tids.append(tid)
            ep.send(data, dest)
        await asyncio.wait({got}, timeout=max(0.0, t0 + give_up - loop.time()))
        return got.result() if got.done() else None
    finally:
        for tid in tids:
            ep.registry.pending.pop(tid, None)
        if not got.done():
            got.cancel()


@dataclass(frozen=True)
class Timing:
    """Retransmission schedule derived from the first binding's RTT."""

    rtt_s: float

    @property
    def rto_s(self) -> float:
        return min(RTO_MAX_S, max(RTO_MIN_S, RTT_FACTOR * self.rtt_s))

    @property
    def schedule(self) -> tuple[float, ...]:
        return tuple(s * self.rto_s for s in RETRY_SLOTS)

    @property
    def give_up(self) -> float:
        return GIVE_UP_SLOTS * self.rto_s


# --- pure classification ----------------------------------------------------------------------


def classify_mapping(m1: Address | None, m2: Address | None, m3: Address | None) -> str | None:
    """RFC 5780 4.3: test I vs II (other IP) vs III (other IP and port) from one socket."""
    if m1 is None or m2 is None:
        return None
    if m1 == m2:
        return "EIM"
    if m3 is None:
        return None
    return "ADM" if m2 == m3 else "APDM"


def classify_filtering(change_both: bool | None, change_port: bool | None) -> str | None:
    """RFC 5780 4.4: an answer from the other IP and port means EIF; from the other port, ADF."""
    if change_both:
        return "EIF"
    if change_port:
        return "ADF"
    if change_both is False and change_port is False:
        return "APDF"
    return None


def rfc3489_name(
    udp_blocked: bool, nat_present: bool | None, mapping: str | None, filtering: str | None
) -> str | None:
    """The classic RFC 3489 name derived from the RFC 4787 answer."""
    if udp_blocked:
        return "UDP Blocked"
    if nat_present is False:
        if filtering is None:
            return None
        return "Open Internet" if filtering == "EIF" else "Symmetric UDP Firewall"
    if mapping in ("ADM", "APDM"):
        return "Symmetric"
    if mapping == "EIM":
        return {"EIF": "Full Cone", "ADF": "Restricted Cone", "APDF": "Port Restricted Cone"}.get(
            filtering or ""
        )
    return None


def address_class(ip: str) -> str:
    """``public``, ``shared`` (100.64.0.0/10, carrier-grade NAT) or ``private``."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "private"
    if addr in _SHARED:
        return "shared"
    if any(addr in n for n in _PUBLIC_STAND_INS):
        return "public"
    if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_unspecified:
        return "private"
    return "public"


def nat_layers(
    nat_present: bool | None, mapped_ip: str | None, wan_ip: str | None
) -> tuple[bool | None, bool | None]:
    """(cgnat, double_nat) from the mapped address and the router's WAN address (if known)."""
    if mapped_ip is None and wan_ip is None:
        return None, None
    if nat_present is False:
        # Our own address is what the server sees: no NAT at all, whatever the address class
        # (a private one only means the server sits in the same private network).
        return False, None
    cgnat = False
    for ip in (mapped_ip, wan_ip):
        if ip is not None and address_class(ip) != "public":
            cgnat = True
    double: bool | None = None
    if wan_ip is not None and mapped_ip is not None:
        double = wan_ip != mapped_ip
        cgnat = cgnat or double
    return cgnat, double


def _fmt(addr: Address | None) -> str | None:
    return None if addr is None else join_host_port(*addr)


# --- the probes -----------------------------------------------------------------------------


@dataclass
class Observation:
    """Everything measured in one run; turned into facts by ``facts()``."""

    server: Address | None = None
    servers_tried: int = 0
    udp_blocked: bool = False
    local: Address | None = None
    mapped: Address | None = None
    plain_mapped: Address | None = None
    other: Address | None = None
    rtt_s: float | None = None
    rto_s: float | None = None
    rfc5780: bool | None = None
    nat_present: bool | None = None
    filter_both: bool | None = None
    filter_port: bool | None = None
    m2: Address | None = None
    m3: Address | None = None
    mapping: str | None = None
    filtering: str | None = None
    hairpinning: bool | None = None
    alg: bool | None = None
    classification_s: float | None = None
    lifetime_s: float | None = None
    lifetime_upper_s: float | None = None
    lifetime_proven: bool | None = None
    lifetime_s_spent: float | None = None
    discovery: nat_discovery.Discovery | None = None
    malformed: int = 0
    unresolved: bool = False
    out_of_time: bool = False
    notes: list[str] = field(default_factory=list)


async def _resolve(
    site: Site, servers: Sequence[tuple[str, int]], net: Backend
) -> list[tuple[Address, int]]:
    """(address, family) per server that resolves; IP literals are used as is, names through the
    site resolver (never the laptop's resolver library: the cameras ask the site's)."""
    attempts = (RESOLVE_TIMEOUT_S * 0.4, RESOLVE_TIMEOUT_S * 0.6)
    found = await asyncio.gather(
        *(resolve_host(site, host, None, attempts, net) for host, _port in servers)
    )
    out: list[tuple[Address, int]] = []
    for (_host, port), (addrs, _lookup) in zip(servers, found, strict=True):
        if addrs:
            fam = socket.AF_INET6 if ":" in addrs[0] else socket.AF_INET
            out.append(((addrs[0], port), fam))
    return out


def supports_rfc5780(reply: Reply, primary: Address) -> bool:
    """The server named an alternate address differing in both IP and port (RFC 5780 needs it)."""
    other = reply.other
    return other is not None and other[0] != primary[0] and other[1] != primary[1]


async def first_binding(
    registry: _Registry,
    servers: Sequence[tuple[Address, int]],
    give_up: float,
    need_rfc5780: bool = False,
) -> tuple[_Endpoint, Reply, Address, int] | None:
    """Test I against the servers, staggered; the first answer wins, the other sockets close.

    ``need_rfc5780``: only a server that can classify (OTHER-ADDRESS) may win.
    """
    loop = asyncio.get_running_loop()
    winner: asyncio.Future[tuple[_Endpoint, Reply, Address, int]] = loop.create_future()
    endpoints: list[_Endpoint] = []

    async def one(index: int, dest: Address, fam: int) -> None:
        await asyncio.sleep(index * SERVER_STAGGER_S)
        if winner.done():
            return
        ep = await _open(registry, fam)
        endpoints.append(ep)
        reply = await transact(ep, dest, FIRST_SCHEDULE_S, FIRST_GIVE_UP_S)
        if reply is None or winner.done():
            return
        if need_rfc5780 and not supports_rfc5780(reply, dest):
            return
        winner.set_result((ep, reply, dest, fam))

    tasks = [asyncio.create_task(one(i, d, f)) for i, (d, f) in enumerate(servers)]
    try:
        all_done: asyncio.Future[Any] = asyncio.gather(*tasks, return_exceptions=True)
        waiters: set[asyncio.Future[Any]] = {winner, all_done}
        await asyncio.wait(waiters, timeout=give_up, return_when="FIRST_COMPLETED")
        return winner.result() if winner.done() else None
    finally:
        for t in tasks:
            t.cancel()
        chosen = winner.result()[0] if winner.done() else None
        for ep in endpoints:
            if ep is not chosen:
                ep.close()


async def hairpin(
    registry: _Registry, target: _Endpoint, mapped: Address, timing: Timing, fam: int
) -> bool:
    """RFC 5780 4.5: a fresh socket sends to ``target``'s mapped address; does it arrive?"""
    ep = await _open(registry, fam)
    loop = asyncio.get_running_loop()
    tids: set[bytes] = set()
    t0 = loop.time()
    try:
        for at in timing.schedule:
            delay = t0 + at - loop.time()
            if delay > 0 and await _wait_request(target, tids, delay):
                return True
            data, tid = binding_request()
            tids.add(tid)
            ep.send(data, mapped)
        return await _wait_request(target, tids, max(0.0, t0 + timing.give_up - loop.time()))
    finally:
        ep.close()


async def _wait_request(target: _Endpoint, tids: set[bytes], timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        if tids & target.requests_seen.keys():
            return True
        left = end - loop.time()
        if left <= 0:
            return False
        target.request_event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(target.request_event.wait(), left)


async def lifetime_probe(
    registry: _Registry, server: Address, idle_s: float, timing: Timing, fam: int
) -> bool | None:
    """Is a mapping still there after ``idle_s`` of silence? None: the probe could not tell.

    Socket X binds (creating the mapping), stays silent, then a fresh socket Y asks the server
    to answer to X's mapped port (RESPONSE-PORT, RFC 5780 7.5): the answer only reaches X while
    the NAT still holds X's mapping. Y's request never refreshes X's mapping.
    """
    x = await _open(registry, fam)
    y: _Endpoint | None = None
    try:
        first = await transact(x, server, timing.schedule, timing.give_up)
        if first is None or first.mapped is None:
            return None
        await asyncio.sleep(max(0.0, idle_s - first.rtt_s / 2))
        y = await _open(registry, fam)
        probe = await transact(
            y,
            server,
            timing.schedule,
            timing.give_up,
            accept=lambda r: r.via is x,
            response_port=first.mapped[1],
        )
        return probe is not None
    finally:
        x.close()
        if y is not None:
            y.close()


async def measure_lifetime(
    registry: _Registry,
    server: Address,
    heartbeat_s: float,
    budget_s: float,
    timing: Timing,
    fam: int,
) -> tuple[float | None, float | None, bool | None]:
    """(lower bound, upper bound, proven ≥ heartbeat) of the UDP mapping lifetime, s.

    Each round probes several idle intervals at once (one fresh socket pair each): a k-ary
    search that costs the longest interval of the round instead of the sum. A round ends as
    soon as its answer is known: an expired mapping at t makes every longer probe pointless.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + budget_s
    # Control: does the server honour RESPONSE-PORT at all (a mapping is alive after 0 s)?
    control = await lifetime_probe(registry, server, 0.0, timing, fam)
    if not control:
        return None, None, None
    lo, hi = 0.0, None
    overhead = timing.give_up * 2 + 0.2
    top = min(heartbeat_s, end - loop.time() - overhead)
    if top <= 0:
        return None, None, None
    intervals = sorted({round(top * f, 3) for f in LIFETIME_FRACTIONS})
    while intervals:
        results = await _round(registry, server, intervals, timing, fam)
        alive = [t for t, ok in results.items() if ok]
        dead = [t for t, ok in results.items() if ok is False]
        if alive:
            lo = max(lo, max(alive))
        if dead:
            hi = min(dead) if hi is None else min(hi, min(dead))
        if lo >= heartbeat_s:
            return lo, hi, True
        if hi is None:
            # Every probe survived but the budget stopped us short of the heartbeat interval:
            # a lower bound, but no verdict either way.
            return lo, None, None
        width = hi - lo
        room = end - loop.time() - overhead
        step = width / LIFETIME_REFINE_SPLIT
        if width <= max(LIFETIME_RESOLUTION_S, 0.1 * hi) or room < lo + step:
            break
        intervals = [
            round(lo + step * k, 3)
            for k in range(1, LIFETIME_REFINE_SPLIT)
            if lo + step * k <= room
        ]
    proven = False if hi is not None and hi <= heartbeat_s else None
    return lo, hi, proven


async def _round(
    registry: _Registry,
    server: Address,
    intervals: Sequence[float],
    timing: Timing,
    fam: int,
) -> dict[float, bool | None]:
    tasks = {
        asyncio.create_task(lifetime_probe(registry, server, t, timing, fam)): t for t in intervals
    }
    results: dict[float, bool | None] = {}
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when="FIRST_COMPLETED")
            for task in done:
                try:
                    results[tasks[task]] = task.result()
                except OSError:
                    results[tasks[task]] = None
            dead = [t for t, ok in results.items() if ok is False]
            if dead:
                # Longer intervals would expire too; shorter ones still bound it from below.
                for task in list(pending):
                    if tasks[task] > min(dead):
                        task.cancel()
                        pending.discard(task)
        return results
    finally:
        for task in tasks:
            task.cancel()


# --- the check ------------------------------------------------------------------------------


class StunCheck(Check):
    """NAT behaviour towards the platform's STUN servers, and the gateway's mapping services."""

    id: ClassVar[str] = "stun"
    title: ClassVar[Message] = msg("NAT behaviour (STUN)")
    needs: ClassVar[tuple[str, ...]] = (profile_need("stun_servers"),)
    # A normal run takes ~0.5-3 s (7 × RTO at worst 7 s). Deep mode spends what is left on the
    # lifetime search; the run's deadline (30 s by default) cuts it shorter, and the search
    # reports the bound it proved by then.
    timeout_s: ClassVar[float] = 45.0

    def __init__(
        self,
        discovery_ports: nat_discovery.Ports | None = None,
        discover: bool = True,
    ) -> None:
        self.discovery_ports = discovery_ports or nat_discovery.Ports()
        self.discover = discover

    def targets(self, site: Site) -> tuple[str, ...]:
        return tuple(f"{s.host}:{s.port}/udp" for s in site.profile.stun_servers)

    async def run(self, ctx: Context) -> Outcome:
        obs = await self.observe(ctx)
        return outcome_from(obs, ctx.site, ctx.deep)

    async def observe(self, ctx: Context) -> Observation:
        site = ctx.site
        obs = Observation()
        gateway = site.network.gateway or default_gateway(ctx.world.net)
        discovery_task: asyncio.Task[nat_discovery.Discovery] | None = None
        if self.discover and gateway:
            discovery_task = asyncio.create_task(
                nat_discovery.discover(gateway, self.discovery_ports, ctx.world.monotonic)
            )
        try:
            await self._stun(ctx, obs)
        except BaseException:
            # Cancelled (the runner's deadline) or crashed: the gateway probe goes with it.
            if discovery_task is not None:
                discovery_task.cancel()
            raise
        if discovery_task is not None:
            try:
                obs.discovery = await asyncio.wait_for(
                    discovery_task, max(0.1, ctx.remaining() - REPORT_MARGIN_S)
                )
            except Exception as exc:
                # Informational: a broken IGD must not cost the NAT facts already measured.
                obs.notes.append(f"discovery: {type(exc).__name__}")
        return obs

    async def _stun(self, ctx: Context, obs: Observation) -> None:
        registry = _Registry(ctx.world.monotonic)
        t0 = ctx.world.monotonic()
        ctx.progress(0.05, msg("first binding"))
        servers = await _resolve(
            ctx.site, [(s.host, s.port) for s in ctx.site.profile.stun_servers], ctx.world.net
        )
        obs.servers_tried = len(servers)
        if not servers:
            obs.unresolved = True
            return
        budget = max(0.1, ctx.remaining() - REPORT_MARGIN_S)
        first = await first_binding(registry, servers, min(budget, FIRST_GIVE_UP_S * 4))
        if first is None and budget < FIRST_GIVE_UP_S:
            # Silence for less than the full wait is no evidence: the deadline cut us short.
            obs.out_of_time = True
            obs.malformed = registry.malformed
            return
        if first is None:
            obs.udp_blocked = True
            obs.malformed = registry.malformed
            obs.classification_s = round(ctx.world.monotonic() - t0, 3)
            return
        s1, reply, primary, fam = first
        if not supports_rfc5780(reply, primary) and len(servers) > 1:
            # Many public STUN servers are RFC 5389 only; another one in the profile may be able
            # to classify. The non-RFC 5780 answer is kept if none is.
            rest = [sv for sv in servers if sv[0] != primary]
            better = await first_binding(
                registry, rest, min(ctx.remaining() - REPORT_MARGIN_S, FIRST_GIVE_UP_S * 2), True
            )
            if better is not None:
                s1.close()
                s1, reply, primary, fam = better
        endpoints: list[_Endpoint] = [s1]
        try:
            await self._classify(ctx, obs, registry, s1, reply, primary, fam, endpoints)
            obs.classification_s = round(ctx.world.monotonic() - t0, 3)
            # Mappings (and a stateful firewall's pinholes) expire; an open host has neither.
            stateful = obs.nat_present or obs.filtering in ("ADF", "APDF")
            if ctx.deep and stateful and obs.rto_s is not None:
                ctx.progress(0.5, msg("measuring the NAT mapping lifetime"))
                t1 = ctx.world.monotonic()
                budget = ctx.remaining() - REPORT_MARGIN_S
                lo, hi, proven = await measure_lifetime(
                    registry,
                    primary,
                    ctx.site.profile.heartbeat_interval_s,
                    budget,
                    Timing(obs.rtt_s or 0.0),
                    fam,
                )
                obs.lifetime_s, obs.lifetime_upper_s, obs.lifetime_proven = lo, hi, proven
                obs.lifetime_s_spent = round(ctx.world.monotonic() - t1, 3)
        finally:
            for ep in endpoints:
                ep.close()
            obs.malformed = registry.malformed

    async def _classify(
        self,
        ctx: Context,
        obs: Observation,
        registry: _Registry,
        s1: _Endpoint,
        reply: Reply,
        primary: Address,
        fam: int,
        endpoints: list[_Endpoint],
    ) -> None:
        obs.server = primary
        obs.mapped = reply.mapped or reply.plain_mapped
        obs.plain_mapped = reply.plain_mapped if reply.mapped is not None else None
        obs.other = reply.other
        # A second sample on the same path: the first one carries cold-path costs (ARP, route
        # cache, a server waking up, our own event loop busy starting up); the smaller of the
        # two is the RTT the later timeouts scale with. It costs one round trip.
        second = await transact(
            s1, primary, Timing(reply.rtt_s).schedule, Timing(reply.rtt_s).give_up
        )
        obs.rtt_s = min(reply.rtt_s, second.rtt_s) if second is not None else reply.rtt_s
        timing = Timing(obs.rtt_s)
        obs.rto_s = timing.rto_s
        local_ip = local_ip_towards(primary[0], fam)
        obs.local = (local_ip, s1.port) if local_ip else None
        obs.nat_present = obs.local != obs.mapped if obs.local else None
        other = reply.other
        obs.rfc5780 = supports_rfc5780(reply, primary)
        ctx.progress(0.2, msg("filtering tests"))

        async def fresh() -> _Endpoint:
            ep = await _open(registry, fam)
            endpoints.append(ep)
            return ep

        async def filter_test(change_ip: bool) -> bool:
            ep = await fresh()

            def came_from_elsewhere(r: Reply) -> bool:
                # The answer must really come from the address it was asked to come from: a
                # server that ignores CHANGE-REQUEST must not pass for an open filter.
                ip_ok = (r.source[0] != primary[0]) if change_ip else (r.source[0] == primary[0])
                return ip_ok and r.source[1] != primary[1]

            r = await transact(
                ep,
                primary,
                timing.schedule,
                timing.give_up,
                accept=came_from_elsewhere,
                change_ip=change_ip,
                change_port=True,
            )
            return r is not None

        async def classic_mapped() -> Address | None:
            r = await transact(s1, primary, timing.schedule, timing.give_up, classic=True)
            return r.plain_mapped if r is not None else None

        jobs: dict[str, asyncio.Task[Any]] = {}
        if obs.rfc5780:
            jobs["both"] = asyncio.create_task(filter_test(True))
            jobs["port"] = asyncio.create_task(filter_test(False))
        if obs.nat_present and obs.mapped is not None:
            jobs["hairpin"] = asyncio.create_task(hairpin(registry, s1, obs.mapped, timing, fam))
        if obs.plain_mapped is None and reply.mapped is not None:
            jobs["classic"] = asyncio.create_task(classic_mapped())
        if jobs:
            await asyncio.gather(*jobs.values())
        if "both" in jobs:
            obs.filter_both, obs.filter_port = jobs["both"].result(), jobs["port"].result()
            obs.filtering = classify_filtering(obs.filter_both, obs.filter_port)
        if "hairpin" in jobs:
            obs.hairpinning = jobs["hairpin"].result()
        if "classic" in jobs:
            obs.plain_mapped = jobs["classic"].result()
        if obs.plain_mapped is not None and reply.mapped is not None:
            obs.alg = obs.plain_mapped != reply.mapped

        if other is not None and obs.rfc5780:
            ctx.progress(0.35, msg("mapping tests"))
            # Only now does anything go to the alternate address (see the module docstring).
            r2, r3 = await asyncio.gather(
                transact(s1, (other[0], primary[1]), timing.schedule, timing.give_up),
                transact(s1, other, timing.schedule, timing.give_up),
            )
            obs.m2 = (r2.mapped or r2.plain_mapped) if r2 else None
            obs.m3 = (r3.mapped or r3.plain_mapped) if r3 else None
            obs.mapping = classify_mapping(obs.mapped, obs.m2, obs.m3)


def _wan_address(obs: Observation, site: Site) -> str | None:
    d = obs.discovery
    for ip in (
        d.upnp_external_ip if d else None,
        d.natpmp_external_ip if d else None,
        site.network.wan_address,
    ):
        if ip and ip not in ("0.0.0.0", "::"):
            return ip
    return None


def facts(obs: Observation, site: Site) -> tuple[Fact, ...]:
    """The ``nat.*``, ``upnp.*``, ``natpmp.*``, ``pcp.*`` and ``stun.*`` facts (docs/facts.md)."""
    out: list[Fact] = []

    def add(key: str, value: JSONValue, unit: str = "") -> None:
        out.append(Fact(key, value, unit))

    if obs.unresolved or obs.out_of_time:
        return ()
    add("nat.udp_blocked", obs.udp_blocked)
    if obs.server is not None:
        add("stun.server", _fmt(obs.server))
    if obs.rfc5780 is not None:
        add("stun.rfc5780", obs.rfc5780)
    add("stun.malformed_replies", obs.malformed)
    if obs.nat_present is not None:
        add("nat.present", obs.nat_present)
    if obs.mapping is not None:
        add("nat.mapping", obs.mapping)
    if obs.filtering is not None:
        add("nat.filtering", obs.filtering)
    name = rfc3489_name(obs.udp_blocked, obs.nat_present, obs.mapping, obs.filtering)
    if name is not None:
        add("nat.rfc3489", name)
    if obs.mapped is not None:
        add("nat.mapped_address", _fmt(obs.mapped))
    if obs.local is not None:
        add("nat.local_address", _fmt(obs.local))
    if obs.hairpinning is not None:
        add("nat.hairpinning", obs.hairpinning)
    if obs.alg is not None:
        add("nat.alg", obs.alg)
    if obs.lifetime_s is not None and obs.lifetime_proven is not None:
        # Only a decided comparison is a fact: a bound cut short by the deadline says nothing.
        add("nat.mapping_lifetime_s", round(obs.lifetime_s, 2), "s")
        add("nat.heartbeat_interval_s", site.profile.heartbeat_interval_s, "s")
    wan = _wan_address(obs, site)
    cgnat, double = nat_layers(obs.nat_present, obs.mapped[0] if obs.mapped else None, wan)
    if cgnat is not None:
        add("nat.cgnat", cgnat)
    if double is not None:
        add("nat.double_nat", double)
    d = obs.discovery
    if d is not None:
        if d.upnp_present is not None:
            add("upnp.present", d.upnp_present)
        if d.upnp_external_asked:
            # None: the IGD answered without a usable address (miniupnpd does so when its own
            # WAN address is private or reserved, i.e. behind another NAT).
            add("upnp.external_ip", d.upnp_external_ip)
        if d.upnp_present:
            add("upnp.mappings", list(d.upnp_mappings))
        if d.natpmp_present is not None:
            add("natpmp.present", d.natpmp_present)
        if d.pcp_present is not None:
            add("pcp.present", d.pcp_present)
    return tuple(out)


def metrics(obs: Observation) -> dict[str, Metric]:
    out: dict[str, Metric] = {"servers_tried": Metric(obs.servers_tried)}
    if obs.rtt_s is not None:
        out["rtt_ms"] = Metric(round(obs.rtt_s * 1000, 2), "ms")
    if obs.rto_s is not None:
        out["rto_ms"] = Metric(round(obs.rto_s * 1000, 1), "ms")
    if obs.classification_s is not None:
        out["classification_s"] = Metric(obs.classification_s, "s")
    if obs.lifetime_s is not None:
        out["mapping_lifetime_s"] = Metric(round(obs.lifetime_s, 2), "s")
    if obs.lifetime_upper_s is not None:
        out["mapping_lifetime_upper_s"] = Metric(round(obs.lifetime_upper_s, 2), "s")
    if obs.lifetime_s_spent is not None:
        out["lifetime_search_s"] = Metric(obs.lifetime_s_spent, "s")
    if obs.discovery is not None:
        out["gateway_discovery_ms"] = Metric(obs.discovery.time_ms, "ms")
        out["upnp_mappings"] = Metric(len(obs.discovery.upnp_mappings))
    out["malformed_replies"] = Metric(obs.malformed)
    return out


_SUMMARY_UNRESOLVED = N_("no STUN server name could be resolved")
_SUMMARY_NO_TIME = N_("no STUN answer in the time left: not enough time to tell UDP blocked")
_SUMMARY_BLOCKED = N_("UDP blocked: no STUN server answered")
_SUMMARY_OPEN = N_("no NAT ({rfc3489}), public address {mapped}")
_SUMMARY_NAT = N_(
    "{rfc3489} NAT: mapping {mapping}, filtering {filtering}; public address {mapped}"
)
_SUMMARY_PARTIAL = N_("NAT seen, public address {mapped}; behaviour not classified ({why})")
_WHY_NO_5780 = N_("the STUN server does not support RFC 5780")
_WHY_NO_ANSWER = N_("the server's alternate address did not answer")
_EXTRA_CGNAT = N_("{summary}; carrier-grade or double NAT")
_EXTRA_LIFETIME = N_("{summary}; mapping lifetime {lifetime} s < heartbeat {heartbeat} s")


def outcome_from(obs: Observation, site: Site, deep: bool) -> Outcome:
    fs = facts(obs, site)
    by_key = {f.key: f.value for f in fs}
    status: Status = "ok"
    summary: Message
    if obs.unresolved:
        return Outcome("error", msg(_SUMMARY_UNRESOLVED), metrics(obs), fs)
    if obs.out_of_time:
        return Outcome("error", msg(_SUMMARY_NO_TIME), metrics(obs), fs)
    if obs.udp_blocked:
        return Outcome("fail", msg(_SUMMARY_BLOCKED), metrics(obs), fs)
    mapped = _fmt(obs.mapped) or "?"
    name = by_key.get("nat.rfc3489")
    if obs.nat_present is False and name:
        summary = msg(_SUMMARY_OPEN, rfc3489=name, mapped=mapped)
        if name != "Open Internet":
            status = "warn"
    elif obs.mapping and obs.filtering:
        summary = msg(
            _SUMMARY_NAT,
            rfc3489=name or "?",
            mapping=obs.mapping,
            filtering=obs.filtering,
            mapped=mapped,
        )
        if obs.mapping != "EIM":
            status = "warn"
    else:
        why = _WHY_NO_5780 if not obs.rfc5780 else _WHY_NO_ANSWER
        summary = msg(_SUMMARY_PARTIAL, mapped=mapped, why=msg(why))
        status = "warn"
    if by_key.get("nat.cgnat") or by_key.get("nat.double_nat"):
        summary = msg(_EXTRA_CGNAT, summary=summary)
        status = "warn"
    hb = site.profile.heartbeat_interval_s
    if obs.lifetime_s is not None and obs.lifetime_proven is False:
        summary = msg(_EXTRA_LIFETIME, summary=summary, lifetime=obs.lifetime_s, heartbeat=hb)
        status = "warn"
    return Outcome(status, summary, metrics(obs), fs)
