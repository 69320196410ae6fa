"""Port and protocol blocking: is every platform port open, and if not, which hop drops it.

Every P2P server and STUN server of the profile is probed with its own protocol (TCP handshake;
UDP platform hello, STUN binding or echo), its name resolved through the site resolver. For each
one that does not answer, a TTL walk of the SAME protocol and port finds the last hop that still
answers, and a walk of a reference that passes shows where the site gateway sits and that other
traffic gets through. ``locate`` turns the walks into ``router`` / ``isp`` / ``beyond``.
The walk uses scapy with root; without root (or when scapy fails) ordinary sockets with
``IP_TTL`` + ``IP_RECVERR`` do the same walk, as ``tracepath`` does; when neither can,
``port.blocked_at`` is ``unknown`` and ``port.walk_error`` says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from diag.checks.base import Check, Context
from diag.i18n import Message, msg
from diag.model import Fact, JSONValue, Metric, Outcome, Site
from diag.net.addr import is_ip
from diag.net.answer import Answer
from diag.net.backend import CAP_RAW_IP, CAP_RECVERR
from diag.net.resolve import RESOLVE_TIMEOUT_S, ResolveError, resolve, site_resolver
from diag.net.route import default_gateway
from diag.net.tcp import tcp_connect
from diag.net.ttl import (
    Hop,
    Location,
    WalkTarget,
    gateway_ttl,
    locate,
    merge,
    second_look,
    socket_walk,
    ttl_walk,
)
from diag.net.udp import udp_exchange, udp_probe_for
from diag.vocab import WHERE_BLOCKED

# A platform answers a hello or a SYN within one RTT (< 300 ms even on a loaded LTE link); 1.5 s
# with three UDP tries rides out a lost datagram without making a blocked port cost much.
PROBE_TIMEOUT_S = 1.5
UDP_TRIES = 3
# Time-exceeded answers come from routers a few ms away; 1 s waits for the slowest hop of a
# loaded uplink. All TTLs are sent at once, so this is the whole walk's cost.
WALK_TIMEOUT_S = 1.0
# A port the first walk could not place is looked at again after a pause: Linux refills a hop's
# ICMP budget for one destination at one error per second, so 1 s buys one answer; two looks
# bound the cost of a hop that never answers to ~4 s.
SECOND_LOOKS = 2
SECOND_LOOK_PAUSE_S = 1.0
# The operator is the hop right after the site gateway; 8 hops reach well past it and the walk
# costs the same whatever the count (sent at once).
WALK_MAX_TTL = 8

# A port that has not answered after this long (s) is probably blocked: start importing scapy
# for the walk while the probes run out their timeout. A healthy platform answers far sooner.
WARM_AFTER_S = 0.3

Transport = Literal["tcp", "udp"]
Walk = Callable[[Sequence[WalkTarget], int, float], dict[str, list[Hop]]]


def _import_scapy() -> None:
    import scapy.layers.inet
    import scapy.sendrecv  # noqa: F401


@dataclass(frozen=True)
class PortTarget:
    """One port to test: ``key`` is the fact target ``host:port/proto``."""

    key: str
    host: str
    port: int
    transport: Transport
    probe: str  # "connect", "hello", "stun", "dns", "echo"
    label: str
    platform: bool  # a P2P platform server (vs a STUN server or a reference)


def plan_targets(site: Site) -> list[PortTarget]:
    """The ports the site's profile needs, in profile order, without duplicates (pure)."""
    out: dict[str, PortTarget] = {}
    for s in site.profile.p2p_servers:
        transport: Transport = "udp" if s.protocol == "udp" else "tcp"
        kind = "connect" if transport == "tcp" else ("echo" if s.probe == "udp-echo" else "hello")
        key = f"{s.host}:{s.port}/{transport}"
        out.setdefault(key, PortTarget(key, s.host, s.port, transport, kind, s.label, True))
    for st in site.profile.stun_servers:
        key = f"{st.host}:{st.port}/udp"
        out.setdefault(key, PortTarget(key, st.host, st.port, "udp", "stun", key, False))
    return list(out.values())


def pick_reference(
    targets: Sequence[PortTarget], answers: dict[str, Answer], blocked: Sequence[PortTarget]
) -> PortTarget | None:
    """A target that passes, for the reference walk: same transport as most blocked ones first
    (it crosses the same NAT path), a STUN server before a platform server (pure)."""
    passing = [t for t in targets if answers.get(t.key, Answer("timeout")).ok]
    if not passing:
        return None
    udp_blocked = sum(1 for b in blocked if b.transport == "udp")
    want: Transport = "udp" if udp_blocked * 2 >= len(blocked) else "tcp"
    passing.sort(key=lambda t: (t.transport != want, t.platform))
    return passing[0]


def _payload(t: PortTarget) -> bytes:
    if t.transport == "tcp":
        return b""
    return udp_probe_for(t.probe).payload


async def _probe(
    t: PortTarget, address: str, timeout_s: float, clock: Callable[[], float]
) -> Answer:
    if t.transport == "tcp":
        return await tcp_connect(address, t.port, timeout_s, clock)
    return await udp_exchange(
        address, t.port, lambda: udp_probe_for(t.probe), timeout_s, UDP_TRIES, clock
    )


class PortsCheck(Check):
    id = "ports"
    names_platform = True
    title = msg("Platform ports and protocols")
    # Root is optional: with it the walk uses scapy, without it the kernel's IP_RECVERR reports.
    timeout_s = 10.0
    # After stun: probing the STUN servers' second address while the stun check measures
    # filtering opens the NAT for that address (NATs that filter per host, not per mapping), and a
    # restricted cone then reads as a full cone. Costs ~0.5 s on the critical path of a run.
    depends_on = ("stun",)

    def __init__(self, scapy_walk: Walk = ttl_walk, kernel_walk: Walk = socket_walk) -> None:
        # The two TTL walks, injectable: unit tests replay recorded walks.
        self.scapy_walk = scapy_walk
        self.kernel_walk = kernel_walk

    def targets(self, site: Site) -> tuple[str, ...]:
        return tuple(t.key for t in plan_targets(site))

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        targets = plan_targets(site)
        resolver = site_resolver(site)
        net = ctx.world.net
        facts: list[Fact] = []
        timeout = min(PROBE_TIMEOUT_S, max(0.2, ctx.remaining() / 4))

        hosts = sorted({t.host for t in targets})
        # The same names through an independent resolver, at the same time: a lying site
        # resolver sends the probes to an address where nothing answers, which looks like a block.
        names = [h for h in hosts if not is_ip(h)]
        indep = site.profile.independent_resolvers[:1]
        lookups = await asyncio.gather(
            *(resolve(h, resolver, min(RESOLVE_TIMEOUT_S, timeout), net) for h in hosts),
            *(resolve(h, spec, timeout, net) for spec in indep for h in names),
            return_exceptions=True,
        )
        resolved = lookups[: len(hosts)]
        address: dict[str, str] = {}
        for h, r in zip(hosts, resolved, strict=True):
            if isinstance(r, list) and r:
                address[h] = r[0]
        other: dict[str, list[str]] = {
            h: r for h, r in zip(names, lookups[len(hosts) :], strict=False) if isinstance(r, list)
        }
        ctx.progress(0.2, msg("probing {n} ports", n=len(targets)))

        fallback: set[str] = set()
        for h in names:
            if h not in address and other.get(h):
                # The site resolver failed (that is the dns check's finding); the port can
                # still be blocked too, and only a probe to the platform's real address says so.
                address[h] = other[h][0]
                fallback.add(h)
        probed = [t for t in targets if t.host in address]
        for t in targets:
            r = resolved[hosts.index(t.host)]
            if t.host not in address or t.host in fallback:
                reason = r.reason if isinstance(r, ResolveError) else "ERROR"
                facts.append(Fact("port.resolve_error", reason, target=t.key))
            if t.host in fallback:
                facts.append(Fact("port.address_source", "independent", target=t.key))
        probing = asyncio.ensure_future(
            asyncio.gather(
                *(_probe(t, address[t.host], timeout, ctx.world.monotonic) for t in probed)
            )
        )
        done, _ = await asyncio.wait({probing}, timeout=WARM_AFTER_S)
        warm: asyncio.Future[None] | None = None
        if not done and net.has(CAP_RAW_IP, ctx.world.is_root()):
            # Some port is slow to answer, so a walk is likely: import scapy (~1 s) meanwhile.
            warm = asyncio.ensure_future(ctx.run_blocking(_import_scapy))
        results = await probing
        answers = {t.key: a for t, a in zip(probed, results, strict=True)}
        for t in probed:
            a = answers[t.key]
            facts.append(Fact("port.address", address[t.host], target=t.key))
            if t.host in other:
                same = bool(set(other[t.host]) & {address[t.host]})
                facts.append(Fact("port.address_matches_independent", same, target=t.key))
            facts.append(Fact("port.open", a.ok, target=t.key))
            facts.append(Fact("port.result", a.status, target=t.key))
            if a.ok and a.rtt_ms is not None:
                facts.append(Fact("port.rtt_ms", a.rtt_ms, "ms", t.key))
        blocked = [t for t in probed if not answers[t.key].ok]
        ctx.progress(0.5)

        where: dict[str, str] = {}
        if blocked:
            where = await self._locate(ctx, probed, answers, blocked, address, facts, warm)

        n_open = len(probed) - len(blocked)
        metrics = {
            "ports_open": Metric(n_open),
            "ports_blocked": Metric(len(blocked)),
        }
        for t in probed:
            a = answers[t.key]
            if a.ok and a.rtt_ms is not None:
                metrics[f"rtt {t.key}"] = Metric(a.rtt_ms, "ms")
        return Outcome(
            _status(targets, probed, blocked),
            _summary(len(targets), probed, blocked, where),
            metrics,
            tuple(facts),
        )

    async def _locate(
        self,
        ctx: Context,
        probed: list[PortTarget],
        answers: dict[str, Answer],
        blocked: list[PortTarget],
        address: dict[str, str],
        facts: list[Fact],
        warm: asyncio.Future[None] | None,
    ) -> dict[str, str]:
        """TTL walks of the blocked ports and a passing reference -> port.blocked_* facts."""
        where: dict[str, str] = {}

        def unknown(reason: str) -> dict[str, str]:
            for t in blocked:
                facts.append(Fact("port.blocked_at", "unknown", target=t.key))
                facts.append(Fact("port.walk_error", reason, target=t.key))
                where[t.key] = "unknown"
            return where

        if ctx.remaining() < WALK_TIMEOUT_S + 0.5:
            return unknown("no-time")
        ref = pick_reference(probed, answers, blocked)
        walk_targets = [
            WalkTarget(t.key, address[t.host], t.port, t.transport, _payload(t))
            for t in [*blocked, *([ref] if ref else [])]
        ]
        ctx.progress(0.6, msg("locating the hop that drops {n} ports", n=len(blocked)))
        walked = await self._walk(ctx, walk_targets, warm)
        if isinstance(walked, str):
            return unknown(walked)
        walks, walk = walked
        facts.append(Fact("port.walk_method", "scapy" if walk is self.scapy_walk else "socket"))
        gateway = ctx.site.network.gateway or default_gateway(ctx.world.net)
        ref_walk = walks.get(ref.key) if ref is not None else None
        locs = self._place(walks, blocked, ref, ref_walk, answers, address, gateway)
        for _look in range(SECOND_LOOKS):
            # A hop that answered nothing may have spent its ICMP budget (Linux: 6, then 1/s
            # per destination); after a pause it answers again. Only unsettled ports, only the
            # TTLs that can settle them.
            again = [
                WalkTarget(
                    t.key,
                    address[t.host],
                    t.port,
                    t.transport,
                    _payload(t),
                    second_look(walks.get(t.key, []), WALK_MAX_TTL),
                )
                for t in blocked
                if not locs[t.key].certain
            ]
            if not again or not await _look_again(ctx, walk, again, walks):
                break
            locs = self._place(walks, blocked, ref, ref_walk, answers, address, gateway)
        gw_at = _gateway_at(walks, ref, gateway)
        if ref is not None:
            ref_hops = walks.get(ref.key, [])
            ref_loc = locate(ref_hops, address[ref.host], gw_at)
            facts.append(Fact("port.reference", ref.key))
            facts.append(Fact("port.reference_passes", ref_loc.passes, target=ref.key))
            facts.append(Fact("port.path", _path(ref_hops), target=ref.key))
        if gw_at is not None:
            facts.append(Fact("port.gateway_hop", gw_at))
        for t in blocked:
            loc = locs[t.key]
            at = loc.blocked_at or "unknown"
            if loc.passes:
                # The walk got through where the plain probe did not: intermittent, not blocked.
                at = "unknown"
                facts.append(Fact("port.walk_error", "walk-passed", target=t.key))
            facts.append(Fact("port.blocked_hop", loc.blocked_hop, target=t.key))
            facts.append(Fact("port.blocked_at", at, target=t.key))
            facts.append(Fact("port.path", _path(walks.get(t.key, [])), target=t.key))
            where[t.key] = at
        return where

    async def _walk(
        self, ctx: Context, targets: list[WalkTarget], warm: asyncio.Future[None] | None
    ) -> tuple[dict[str, list[Hop]], Walk] | str:
        """The walks of ``targets`` and the walker that made them, or why none could be made."""
        net = ctx.world.net
        root = ctx.world.is_root()
        if not net.has(CAP_RAW_IP, root) and not net.has(CAP_RECVERR, root):
            # Windows and macOS: no crafted packets without a driver, no ICMP error reports on
            # ordinary sockets. Where the block is stays unknown rather than guessed.
            return f"unsupported: {net.name}"
        if net.has(CAP_RAW_IP, root):
            try:
                if warm is not None:
                    await warm
                walks = await ctx.run_blocking(
                    self.scapy_walk, targets, WALK_MAX_TTL, WALK_TIMEOUT_S
                )
                return walks, self.scapy_walk
            except Exception:  # scapy raises a zoo of errors (no route, no interface, ...)
                pass
        if not net.has(CAP_RECVERR, root):
            return f"unsupported: {net.name}"
        # No root (or scapy failed): the kernel's IP_RECVERR reports, as tracepath uses them.
        try:
            walks = await ctx.run_blocking(self.kernel_walk, targets, WALK_MAX_TTL, WALK_TIMEOUT_S)
        except OSError as exc:
            return f"error: {type(exc).__name__}"
        return walks, self.kernel_walk

    @staticmethod
    def _place(
        walks: dict[str, list[Hop]],
        blocked: list[PortTarget],
        ref: PortTarget | None,
        reference: list[Hop] | None,
        answers: dict[str, Answer],
        address: dict[str, str],
        gateway: str | None,
    ) -> dict[str, Location]:
        """Where each blocked port dies, from all the walks so far (pure). ``reference``: the
        first walk of ``ref``, sent right after the blocked ports' probes at each TTL."""
        gw_at = _gateway_at(walks, ref, gateway)
        ref_hops = reference or []
        out: dict[str, Location] = {}
        for t in blocked:
            refused = answers[t.key].status == "refused"
            # The other walks cross the same hops: they name the routers that answered.
            others = [w for k, w in walks.items() if k != t.key]
            out[t.key] = locate(
                walks.get(t.key, []), address[t.host], gw_at, refused, ref_hops, others
            )
        return out


async def _look_again(
    ctx: Context, walk: Walk, targets: list[WalkTarget], walks: dict[str, list[Hop]]
) -> bool:
    """Walks ``targets`` again after the pause and fills their silent TTLs in ``walks``; False
    when there is no time left for it or the walk failed."""
    if ctx.remaining() < SECOND_LOOK_PAUSE_S + WALK_TIMEOUT_S + 0.5:
        return False
    await asyncio.sleep(SECOND_LOOK_PAUSE_S)
    try:
        more = await ctx.run_blocking(walk, targets, WALK_MAX_TTL, WALK_TIMEOUT_S)
    except Exception:  # the first walk worked: a failing second look changes nothing
        return False
    for k, hops in more.items():
        walks[k] = merge(walks.get(k, []), hops)
    return True


def _gateway_at(
    walks: dict[str, list[Hop]], ref: PortTarget | None, gateway: str | None
) -> int | None:
    """The site gateway's TTL: from the reference walk, else from any walk."""
    if ref is not None and (g := gateway_ttl(walks.get(ref.key, []), gateway)) is not None:
        return g
    return next((g for w in walks.values() if (g := gateway_ttl(w, gateway)) is not None), None)


def _path(hops: Sequence[Hop]) -> list[JSONValue]:
    """Responders by TTL up to the last one that answered (None: silent hop)."""
    path: list[JSONValue] = []
    for h in hops:
        path.append(h.responder if h.kind != "silent" else None)
        if h.kind in ("reply", "rejected"):
            break  # the destination (or a filter) answered: later TTLs only repeat it
    while path and path[-1] is None:
        path.pop()
    return path


def _status(
    targets: Sequence[PortTarget], probed: Sequence[PortTarget], blocked: Sequence[PortTarget]
) -> Literal["ok", "warn", "fail"]:
    if any(t.platform for t in blocked):
        return "fail"
    if blocked or len(probed) < len(targets):
        return "warn"
    return "ok"


# The "where blocked" words are the one vocabulary's, as in the report and the dashboard.
_WHERE = WHERE_BLOCKED


def _summary(
    total: int,
    probed: Sequence[PortTarget],
    blocked: Sequence[PortTarget],
    where: dict[str, str],
) -> Message:
    if not probed:
        return msg("no port could be tested: the names did not resolve")
    if not blocked:
        return msg("all {n} ports open", n=len(probed))
    parts = {
        f"p{i}": msg("{port} ({where})", port=t.key, where=msg(_WHERE[where.get(t.key, "unknown")]))
        for i, t in enumerate(blocked)
    }
    # A language-neutral joiner: each part is translated on its own when rendered.
    listed = Message(", ".join(f"{{{k}}}" for k in parts), parts)
    return msg(
        "{blocked} of {total} ports blocked: {list}", blocked=len(blocked), total=total, list=listed
    )
