"""The ports check on loopback fakes, and the TTL-walk logic on recorded walks."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from netfakes_bpw import (
    LOOPBACK,
    HelloServer,
    context,
    free_port,
    make_site,
    silent_udp,
    tcp_server,
    udp_server,
)

from diag.checks import ports
from diag.model import P2PServer, StunServer
from diag.net import stun_codec, ttl, udp
from diag.net.ttl import Hop, locate


def facts(out, key):  # type: ignore[no-untyped-def]
    return {f.target: f.value for f in out.facts if f.key == key}


async def test_tcp_open_and_closed() -> None:
    closed = free_port()
    async with tcp_server() as open_port:
        site = make_site(
            servers=(
                P2PServer(LOOPBACK, open_port, "tcp", "connect", "relay"),
                P2PServer(LOOPBACK, closed, "tcp", "connect", "closed"),
            )
        )
        out = await ports.PortsCheck().run(context(site, "ports"))
    is_open = facts(out, "port.open")
    assert is_open[f"{LOOPBACK}:{open_port}/tcp"] is True
    assert is_open[f"{LOOPBACK}:{closed}/tcp"] is False
    assert facts(out, "port.result")[f"{LOOPBACK}:{closed}/tcp"] == "refused"
    assert facts(out, "port.rtt_ms")[f"{LOOPBACK}:{open_port}/tcp"] >= 0
    assert out.status == "fail"


async def test_udp_hello_answered_silent_and_garbage() -> None:
    good, bad = HelloServer(), HelloServer(garbage=True)
    with silent_udp() as silent:
        async with udp_server(good) as gp, udp_server(bad) as bp:
            site = make_site(
                servers=(
                    P2PServer(LOOPBACK, gp, "udp", "hello", "login"),
                    P2PServer(LOOPBACK, silent, "udp", "hello", "dropped"),
                    P2PServer(LOOPBACK, bp, "udp", "hello", "garbage"),
                )
            )
            out = await ports.PortsCheck().run(context(site, "ports"))
    result = facts(out, "port.result")
    assert result[f"{LOOPBACK}:{gp}/udp"] == "open"
    assert result[f"{LOOPBACK}:{silent}/udp"] == "timeout"
    assert result[f"{LOOPBACK}:{bp}/udp"] == "bad-reply"
    # One hello answered at once, then the reference walk's copy per TTL (it passes: loopback).
    assert len(good.received) == 1 + ports.WALK_MAX_TTL
    assert facts(out, "port.reference")[""] == f"{LOOPBACK}:{gp}/udp"
    # Without root the walk uses plain sockets; on loopback no hop answers, so: unknown.
    assert facts(out, "port.walk_method")[""] == "socket"
    assert facts(out, "port.blocked_at")[f"{LOOPBACK}:{silent}/udp"] == "unknown"
    assert facts(out, "port.blocked_hop")[f"{LOOPBACK}:{silent}/udp"] is None
    assert f"{LOOPBACK}:{gp}/udp" not in facts(out, "port.blocked_at")


async def test_udp_hello_retransmitted() -> None:
    # The first datagram is dropped, the second try is answered.
    class DropFirst(HelloServer):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
            if not self.received:
                self.received.append(data)
                return
            super().datagram_received(data, addr)

    srv = DropFirst()
    async with udp_server(srv) as port:
        ans = await udp.udp_exchange(
            LOOPBACK, port, lambda: udp.udp_probe_for("hello"), timeout_s=1.5, tries=3
        )
    assert ans.ok
    assert ans.info.startswith("127.0.0.1:")
    assert len(srv.received) == 2


async def test_closed_udp_port_is_refused() -> None:
    ans = await udp.udp_exchange(
        LOOPBACK, free_port(socket.SOCK_DGRAM), lambda: udp.udp_probe_for("hello"), 0.6
    )
    assert ans.status == "refused"


def _stun_answer(txid: bytes, ip: str, port: int) -> bytes:
    xport = port ^ (stun_codec.MAGIC_COOKIE >> 16)
    xip = bytes(
        a ^ b
        for a, b in zip(
            socket.inet_aton(ip), struct.pack("!I", stun_codec.MAGIC_COOKIE), strict=True
        )
    )
    attr = struct.pack("!HHBBH", 0x0020, 8, 0, 1, xport) + xip
    return struct.pack("!HHI", 0x0101, len(attr), stun_codec.MAGIC_COOKIE) + txid + attr


async def test_stun_server_probed_with_binding_request() -> None:
    class Stun(HelloServer):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
            self.received.append(data)
            assert self.transport is not None
            self.transport.sendto(_stun_answer(data[8:20], "203.0.113.7", 4242), addr)

    async with udp_server(Stun()) as port:
        site = make_site(stuns=(StunServer(LOOPBACK, port),))
        out = await ports.PortsCheck().run(context(site, "ports"))
    assert facts(out, "port.open") == {f"{LOOPBACK}:{port}/udp": True}
    assert out.status == "ok"


def test_recverr_parser() -> None:
    ee = struct.pack("=IBBBBII", 113, ttl.SO_EE_ORIGIN_ICMP, 11, 0, 0, 0, 0)
    offender = struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton("198.18.0.1"))
    cm = [(socket.IPPROTO_IP, ttl.IP_RECVERR, ee + offender)]
    assert ttl.parse_recverr(cm) == (11, 0, "198.18.0.1")
    local = struct.pack("=IBBBBII", 90, 1, 0, 0, 0, 0, 0)  # SO_EE_ORIGIN_LOCAL: not ICMP
    assert ttl.parse_recverr([(socket.IPPROTO_IP, ttl.IP_RECVERR, local)]) is None
    assert ttl.parse_recverr([(socket.IPPROTO_IP, ttl.IP_RECVERR, b"short")]) is None
    assert ttl.parse_recverr([]) is None


def test_socket_walk_on_loopback_sees_the_destination() -> None:
    # Loopback never decrements the TTL: every TTL reaches the closed port and is refused.
    port = free_port(socket.SOCK_DGRAM)
    t = ttl.WalkTarget("k", LOOPBACK, port, "udp", b"x")
    hops = ttl.socket_walk([t], max_ttl=3, timeout_s=0.5)["k"]
    assert [h.kind for h in hops] == ["rejected"] * 3
    assert hops[0].responder == LOOPBACK and hops[0].icmp_code == 3


def test_stun_parser_rejects_wrong_txid_and_junk() -> None:
    txid = b"a" * 12
    good = _stun_answer(txid, "203.0.113.7", 4242)
    assert udp.parse_stun_response(good, txid) == "203.0.113.7:4242"
    assert udp.parse_stun_response(good, b"b" * 12) is None
    assert udp.parse_stun_response(good[:25], txid) is None
    assert udp.parse_stun_response(b"\x01\x01" + b"\xff" * 40, txid) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"DIAGP2P1 WELCOME n1",
        b"DIAGP2P1 WELCOME n2 1.2.3.4:5",
        b"\xff\xfe",
        b"DIAGP2P1 WELCOME n1 x:1",
    ],
)
def test_welcome_parser_rejects_junk(data: bytes) -> None:
    assert udp.parse_welcome(data, "n1") is None


def test_welcome_parser_accepts_public_address() -> None:
    assert udp.parse_welcome(b"DIAGP2P1 WELCOME n1 203.0.113.2:40000", "n1") == "203.0.113.2:40000"


async def test_unresolvable_name_is_a_fact_not_a_crash() -> None:
    # The resolver is a closed loopback port: the name cannot resolve, nothing is probed.
    site = make_site(
        servers=(P2PServer("p2p.lab-cloud.test", 32100, "udp", "hello"),),
        resolver=f"{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}",
    )
    out = await ports.PortsCheck().run(context(site, "ports", budget_s=4))
    assert facts(out, "port.resolve_error")["p2p.lab-cloud.test:32100/udp"] in {"TIMEOUT", "ERROR"}
    assert "port.open" not in {f.key for f in out.facts}


async def test_names_resolved_through_the_site_resolver() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from fakes import FakeDNS, answer

    with FakeDNS({"p2p.lab-cloud.test": answer(LOOPBACK)}) as dns_srv:
        async with udp_server(HelloServer()) as port:
            site = make_site(
                servers=(P2PServer("p2p.lab-cloud.test", port, "udp", "hello"),),
                resolver=dns_srv.address,
            )
            out = await ports.PortsCheck().run(context(site, "ports"))
    key = f"p2p.lab-cloud.test:{port}/udp"
    assert facts(out, "port.open") == {key: True}
    assert facts(out, "port.address") == {key: LOOPBACK}
    assert ("p2p.lab-cloud.test", "A") in dns_srv.queries


async def test_site_resolver_disagreeing_with_independent_is_a_fact() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from fakes import FakeDNS, answer

    with (
        FakeDNS({"p2p.lab-cloud.test": answer("127.0.0.3")}) as liar,
        FakeDNS({"p2p.lab-cloud.test": answer(LOOPBACK)}) as honest,
        silent_udp() as port,
    ):
        site = make_site(
            servers=(P2PServer("p2p.lab-cloud.test", port, "udp", "hello"),),
            resolver=liar.address,
            independent_resolvers=(honest.address,),
        )
        out = await ports.PortsCheck().run(context(site, "ports"))
    key = f"p2p.lab-cloud.test:{port}/udp"
    assert facts(out, "port.address") == {key: "127.0.0.3"}
    assert facts(out, "port.address_matches_independent") == {key: False}


async def test_port_probed_at_the_independent_address_when_the_site_resolver_fails() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from fakes import FakeDNS, answer

    with FakeDNS({"p2p.lab-cloud.test": answer(LOOPBACK)}) as honest:
        async with udp_server(HelloServer()) as port:
            site = make_site(
                servers=(P2PServer("p2p.lab-cloud.test", port, "udp", "hello"),),
                resolver=f"{LOOPBACK}:{free_port(socket.SOCK_DGRAM)}",  # nobody answers there
                independent_resolvers=(honest.address,),
            )
            out = await ports.PortsCheck().run(context(site, "ports", budget_s=4))
    key = f"p2p.lab-cloud.test:{port}/udp"
    assert facts(out, "port.resolve_error")[key] in {"TIMEOUT", "ERROR", "REFUSED"}
    assert facts(out, "port.address_source") == {key: "independent"}
    assert facts(out, "port.open") == {key: True}


# --- TTL walk logic on recorded walks ----------------------------------------------------

GW, ISP, DEST = "198.18.0.1", "203.0.113.1", "198.51.100.10"


def walk(*kinds: tuple[str, str | None]) -> list[Hop]:
    return [Hop(i + 1, k, r) for i, (k, r) in enumerate(kinds)]  # type: ignore[arg-type]


TE = "time-exceeded"
SILENT = ("silent", None)


def rejected(by: str, arrived: int | None = None) -> Hop:
    return Hop(0, "rejected", by, 3, arrived)  # the TTL is set by walk_at


def walk_at(*hops: Hop | tuple[str, str | None]) -> list[Hop]:
    out = []
    for i, h in enumerate(hops):
        if isinstance(h, Hop):
            out.append(Hop(i + 1, h.kind, h.responder, h.icmp_code, h.reply_ttl))
        else:
            out.append(Hop(i + 1, h[0], h[1]))  # type: ignore[arg-type]
    return out


# A passing reference through the lab's router (1) and operator (2) to a server at 3.
REF = walk((TE, GW), (TE, ISP), ("reply", "198.51.100.20"), ("reply", "198.51.100.20"))
# The same path where the operator sends no ICMP at all (its budget spent on the site's devices).
REF_MUTE_ISP = walk((TE, GW), SILENT, ("reply", "198.51.100.20"), ("reply", "198.51.100.20"))

# name: (walk, reference walk, refused, passes, blocked hop, blocked at). What a TTL-limited probe
# sees, derived from where Linux checks the TTL (before the forward filter) and who answers a
# reject (nft `reject`: ICMP port unreachable from the rejecting hop's own address; `reject
# with tcp reset`: an RST forged with the destination's address, sent with TTL 64 by that hop).
CASES: dict[str, tuple[list[Hop], list[Hop], bool, bool, int | None, str | None]] = {
    "passes": (REF, [], False, True, None, None),
    "router drops in forward": (
        walk((TE, GW), SILENT, SILENT, SILENT),
        REF,
        False,
        False,
        1,
        "router",
    ),
    "operator drops in forward": (
        walk((TE, GW), (TE, ISP), SILENT, SILENT),
        REF,
        False,
        False,
        2,
        "isp",
    ),
    "dies beyond": (
        walk((TE, GW), (TE, ISP), (TE, "198.51.100.1"), SILENT),
        [],
        False,
        False,
        3,
        "beyond",
    ),
    # reject at the router (forward chain): the TTL-2 probe meets it; ICMP from the gateway.
    "router rejects, icmp": (
        walk_at((TE, GW), rejected(GW, 64), rejected(GW, 64)),
        REF,
        True,
        False,
        1,
        "router",
    ),
    "router rejects, icmp, its TTL-1 answer rate-limited": (
        walk_at(SILENT, rejected(GW), rejected(GW)),
        REF,
        True,
        False,
        1,
        "router",
    ),
    "router forges an RST": (
        walk_at((TE, GW), rejected(DEST, 64), rejected(DEST, 64)),
        REF,
        True,
        False,
        1,
        "router",
    ),
    "router forges an RST, no arrival TTL (socket walk)": (
        walk_at((TE, GW), rejected(DEST), rejected(DEST)),
        REF,
        True,
        False,
        1,
        "router",
    ),
    # reject at the operator (forward chain): time-exceeded from it at 2, its reject from 3 on.
    "operator rejects, icmp": (
        walk_at((TE, GW), (TE, ISP), rejected(ISP, 63)),
        REF,
        True,
        False,
        2,
        "isp",
    ),
    "operator rejects, icmp, its time-exceeded rate-limited": (
        walk_at((TE, GW), SILENT, rejected(ISP, 63)),
        REF_MUTE_ISP,
        True,
        False,
        2,
        "isp",
    ),
    "operator rejects, icmp, no arrival TTL": (
        walk_at((TE, GW), (TE, ISP), rejected(ISP)),
        REF,
        True,
        False,
        2,
        "isp",
    ),
    "operator forges an RST": (
        walk_at((TE, GW), (TE, ISP), rejected(DEST, 63)),
        REF,
        True,
        False,
        2,
        "isp",
    ),
    # the server itself refuses (closed port, or its input chain rejects): it sent with TTL 64,
    # two routers on the way.
    "closed at the server": (
        walk_at((TE, GW), (TE, ISP), rejected(DEST, 62)),
        REF,
        True,
        False,
        2,
        "beyond",
    ),
    "closed at the server, no arrival TTL": (
        walk_at((TE, GW), (TE, ISP), rejected(DEST)),
        REF,
        True,
        False,
        2,
        "beyond",
    ),
    # the operator rejects and its ICMP budget is spent: it answers no walk at all, and the
    # plain probe was refused. The router answered with ICMP to spare: not the one refusing.
    "operator rejects, out of ICMP": (
        walk((TE, GW), SILENT, SILENT, SILENT),
        REF_MUTE_ISP,
        True,
        False,
        2,
        "isp",
    ),
    # the operator rejects: it answered this probe's TTL 2 but not the reference's (its budget
    # is nearly spent), and nothing after it: the hop short of ICMP is the one refusing.
    "operator rejects, short of ICMP": (
        walk((TE, GW), (TE, ISP), SILENT, SILENT),
        REF_MUTE_ISP,
        True,
        False,
        2,
        "isp",
    ),
    "silent after the router, next hop mute, not refused": (
        walk((TE, GW), SILENT, SILENT, SILENT),
        REF_MUTE_ISP,
        False,
        False,
        None,
        "unknown",
    ),
    # the router rejects and spent its ICMP on the earlier checks' probes: nothing from it.
    "router rejects, out of ICMP": (
        walk(SILENT, SILENT, SILENT, SILENT),
        walk(SILENT, (TE, ISP), ("reply", "198.51.100.20")),
        True,
        False,
        1,
        "router",
    ),
    "nothing answers": (walk(SILENT, SILENT, SILENT), [], False, False, None, "unknown"),
}


@pytest.mark.parametrize("name", CASES)
def test_locate(name: str) -> None:
    hops, reference, refused, passes, hop, at = CASES[name]
    loc = locate(hops, DEST, 1, refused, reference, others=[reference])
    assert (loc.passes, loc.blocked_hop, loc.blocked_at) == (passes, hop, at)


def test_sender_distance_from_the_arrival_ttl() -> None:
    assert [ttl.sender_distance(x) for x in (64, 63, 62, 128, 250, 30)] == [1, 2, 3, 1, 6, 3]
    assert ttl.sender_distance(None) is None and ttl.sender_distance(0) is None


def test_walk_sends_ttl_by_ttl_and_the_first_hop_last() -> None:
    a, b = ttl.WalkTarget("a", DEST, 1, "udp"), ttl.WalkTarget("b", DEST, 2, "tcp")
    order = ttl.send_order([a, b], 4)
    assert order == [(0, 2), (1, 2), (0, 3), (1, 3), (0, 4), (1, 4), (0, 1), (1, 1)]
    # A second look sends only the TTLs asked for.
    again = ttl.WalkTarget("b", DEST, 2, "tcp", ttls=(3, 2))
    assert ttl.send_order([a, again], 3) == [(0, 2), (1, 2), (0, 3), (1, 3), (0, 1)]


def test_locate_refused_port_whose_rejection_was_rate_limited() -> None:
    # The platform is down: its host answered the plain probe with ICMP port unreachable, but
    # the walk's copies got nothing back (ICMP errors are rate-limited): refused beyond.
    hops = walk((TE, GW), (TE, ISP), SILENT, SILENT)
    loc = locate(hops, DEST, gateway_at=1, refused=True)
    assert (loc.blocked_hop, loc.blocked_at) == (2, "beyond")
    assert locate(hops, DEST, 1, refused=True, reference=REF).blocked_at == "beyond"
    # A silent drop at the same place is the operator.
    assert locate(hops, DEST, gateway_at=1).blocked_at == "isp"
    # Refused right after the router, the operator answering others: the router rejects it.
    assert (
        locate(walk((TE, GW), SILENT), DEST, 1, refused=True, others=[REF]).blocked_at == "router"
    )


def test_locate_silent_first_hop_with_reference_is_the_router() -> None:
    loc = locate(walk(SILENT, SILENT), DEST, gateway_at=1, reference=REF)
    assert (loc.blocked_hop, loc.blocked_at) == (0, "router")


def test_locate_uses_the_gateway_position() -> None:
    # A second router inside the site (double NAT): the site gateway is hop 2, the operator 3.
    hops = walk((TE, "198.18.1.1"), (TE, GW), (TE, ISP), SILENT)
    assert ttl.gateway_ttl(hops, GW) == 2
    assert locate(hops, DEST, gateway_at=2).blocked_at == "isp"
    assert locate([*hops[:2], Hop(3, "silent")], DEST, gateway_at=2).blocked_at == "router"
    # The site gateway rejects: its ICMP names it, whatever the TTL it showed at.
    rej = walk_at((TE, "198.18.1.1"), (TE, GW), rejected(GW, 63))
    assert locate(rej, DEST, gateway_at=2).blocked_at == "router"


async def _run_walked(fake_walk, blocked_port: int, ok_port: int):  # type: ignore[no-untyped-def]
    """The check as root on two UDP platform ports behind the gateway GW, walked by a fake."""
    site = make_site(
        servers=(
            P2PServer(LOOPBACK, blocked_port, "udp", "hello", "login"),
            P2PServer(LOOPBACK, ok_port, "udp", "hello", "login2"),
        ),
        gateway=GW,
    )
    return await ports.PortsCheck(scapy_walk=fake_walk).run(context(site, "ports", root=True))


async def test_blocked_port_located_with_recorded_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root the check walks the blocked port and a passing reference; here the walk is
    replaced by a recording of the lab's isp-p2p-blocking scenario."""
    calls: list[list[ttl.WalkTarget]] = []

    def fake_walk(targets, max_ttl, timeout_s):  # type: ignore[no-untyped-def]
        calls.append(list(targets))
        out = {}
        for t in targets:
            if t.port == blocked_port:
                out[t.key] = walk((TE, GW), (TE, ISP), SILENT, SILENT)
            else:
                out[t.key] = walk((TE, GW), (TE, ISP), ("reply", LOOPBACK), ("reply", LOOPBACK))
        return out

    with silent_udp() as blocked_port:
        async with udp_server(HelloServer()) as ok_port:
            out = await _run_walked(fake_walk, blocked_port, ok_port)
    key = f"{LOOPBACK}:{blocked_port}/udp"
    assert facts(out, "port.blocked_at") == {key: "isp"}
    assert facts(out, "port.blocked_hop") == {key: 2}
    assert facts(out, "port.reference")[""] == f"{LOOPBACK}:{ok_port}/udp"
    assert facts(out, "port.gateway_hop")[""] == 1
    # The walk used the same protocol and port, with the platform hello as payload.
    sent = {t.key: t for t in calls[0]}
    assert sent[key].proto == "udp" and sent[key].payload.startswith(b"DIAGP2P1 HELLO ")
    assert "in the operator's network" in out.summary.render("en")
    assert "w sieci operatora" in out.summary.render("pl")


async def test_unplaced_port_gets_a_second_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator rejects the port but has spent its ICMP on the devices' heartbeats: the
    first walk hears nothing from it, not even on the reference. The check looks again at the
    two TTLs past the router, once, and the operator's rejection places the port."""
    calls: list[list[ttl.WalkTarget]] = []
    monkeypatch.setattr(ports, "SECOND_LOOK_PAUSE_S", 0.05)

    def fake_walk(targets, max_ttl, timeout_s):  # type: ignore[no-untyped-def]
        calls.append(list(targets))
        out = {}
        for t in targets:
            if t.port != blocked_port:
                out[t.key] = walk((TE, GW), SILENT, ("reply", LOOPBACK), ("reply", LOOPBACK))
            elif len(calls) == 1:
                out[t.key] = walk((TE, GW), SILENT, SILENT, SILENT)
            else:
                out[t.key] = [Hop(2, TE, ISP), Hop(3, "rejected", ISP, 3, 63)]
        return out

    blocked_port = free_port(socket.SOCK_DGRAM)  # closed: the plain probe is refused
    async with udp_server(HelloServer()) as ok_port:
        out = await _run_walked(fake_walk, blocked_port, ok_port)
    key = f"{LOOPBACK}:{blocked_port}/udp"
    assert facts(out, "port.result")[key] == "refused"
    assert len(calls) == 2  # settled by the second look: no third
    assert [(t.key, t.ttls) for t in calls[1]] == [(key, (2, 3))]
    assert facts(out, "port.blocked_at") == {key: "isp"}
    assert facts(out, "port.blocked_hop") == {key: 2}
    assert facts(out, "port.path")[key] == [GW, ISP, ISP]  # time-exceeded, then its reject


# --- hostile input: parsers never raise ------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.binary(max_size=200), st.text(max_size=20))
def test_welcome_parser_never_raises(data: bytes, nonce: str) -> None:
    out = udp.parse_welcome(data, nonce)
    assert out is None or out.rpartition(":")[2].isdigit()


@given(st.binary(max_size=300), st.binary(min_size=12, max_size=12))
def test_stun_parser_never_raises(data: bytes, txid: bytes) -> None:
    out = udp.parse_stun_response(data, txid)
    assert out is None or out == "" or ":" in out


@given(st.binary(max_size=100))
def test_dns_reply_parser_never_raises(data: bytes) -> None:
    udp.parse_dns_response(data, 1234)


@given(st.integers(0, 0xFFFF), st.binary(max_size=40))
def test_dns_reply_parser_any_flags(flags: int, rest: bytes) -> None:
    data = struct.pack("!HH", 1234, flags) + rest
    out = udp.parse_dns_response(data, 1234)
    assert (out is None) == (len(data) < 12 or not flags & 0x8000)
