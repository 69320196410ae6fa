"""Every check, run as on Windows and as on macOS (``foreign_os``), on loopback fakes.

Each either produces the facts the recorded OS answers imply or skips with a reason in both
languages; none crashes, and none builds a finding on a measurement it could not make.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "checks"))
from fakes import FakeDNS, HelloResponder, answer, closed_udp_port
from netfakes_bpw import LOOPBACK, HelloServer, SpeedServer, context, make_site, udp_server
from stun_fake import Behaviour, FakeStunServer

from diag.checks import bandwidth, heartbeat, host, ports, stun, vlan, wan
from diag.checks.base import Context, World
from diag.checks.dns import DnsCheck
from diag.checks.p2p import P2PCheck
from diag.checks.phone import PhoneCheck
from diag.model import Device, Network, P2PServer, Profile, Site, StunServer, Thresholds
from foreign_os.conftest import ForeignOS, become_darwin, become_windows


def ctx_for(check: Any, site: Site, root: bool = False, budget_s: float = 10.0) -> Context:
    """A context as the runner builds it: the check's own targets, the OS's World."""
    return Context(
        site,
        check.id,
        check.targets(site),
        time.monotonic() + budget_s,
        world=World(is_root=lambda: root),
    )


def facts(out: Any, target: str = "") -> dict[str, Any]:
    return {f.key: f.value for f in out.facts if f.target == target}


def all_facts(out: Any) -> dict[tuple[str, str], Any]:
    return {(f.key, f.target): f.value for f in out.facts}


async def test_host(foreign_os: ForeignOS) -> None:
    out = await host.HostCheck().run(context(make_site(), "host"))
    f = facts(out)
    # Was: "no default route" (FAIL) from the missing /proc/net/route.
    assert f["host.default_gateway"] == "198.18.0.1"
    assert f["host.default_interface"] == ("Ethernet" if foreign_os.name == "windows" else "en0")
    assert out.status == "ok"
    assert f["host.is_root"] is False


async def test_dns(foreign_os: ForeignOS) -> None:
    with FakeDNS({"p2p.lab-cloud.test": answer("203.0.113.2")}) as dns:
        site = make_site(resolver=dns.address, dns_names=("p2p.lab-cloud.test",))
        check = DnsCheck((0.5, 0.5))
        out = await check.run(ctx_for(check, site))
    assert out.status == "ok"
    assert facts(out, "p2p.lab-cloud.test")["dns.site.answer"] == ["203.0.113.2"]


def test_dns_system_resolver_is_read_from_the_os(foreign_os: ForeignOS) -> None:
    """ "system" is the registry's (Windows) or configd's resolv.conf (macOS) resolver. Only read
    here: it is not on loopback, so the check is not run against it."""
    from diag.net.resolve import site_resolver_spec

    assert site_resolver_spec(make_site(resolver="system")) == "198.51.100.53"


async def test_p2p(foreign_os: ForeignOS) -> None:
    with HelloResponder() as hello:
        site = make_site(servers=(P2PServer(LOOPBACK, hello.port, "udp", "hello", "login"),))
        check = P2PCheck(udp_backoff=(0.3, 0.3))
        out = await check.run(ctx_for(check, site))
    assert facts(out, "login")["p2p.reachable"] is True
    assert out.status == "ok"


def test_stun(foreign_os: ForeignOS) -> None:
    with FakeStunServer(Behaviour(mapping="EIM", filtering="APDF")) as srv:
        ip, port = srv.primary
        profile = Profile(name="t", stun_servers=(StunServer(ip, port),))
        site = Site(name="t", devices=(), profile=profile, network=Network(gateway=None))
        check = stun.StunCheck(discover=False)
        ctx = Context(site, "stun", check.targets(site), time.monotonic() + 20)
        obs = asyncio.run(check.observe(ctx))
    f = {x.key: x.value for x in stun.facts(obs, site)}
    assert f["nat.mapping"] == "EIM" and f["nat.filtering"] == "APDF"


async def test_ports_blocked_port_is_not_located_without_a_walk(foreign_os: ForeignOS) -> None:
    # Was (Windows): select.poll() raised in the TTL walk whenever a port was blocked.
    async with udp_server(HelloServer()) as ok_port:
        blocked = closed_udp_port()
        site = make_site(
            servers=(
                P2PServer(LOOPBACK, ok_port, "udp", "hello", "login"),
                P2PServer(LOOPBACK, blocked, "udp", "hello", "relay"),
            )
        )
        check = ports.PortsCheck()
        out = await check.run(ctx_for(check, site, root=True))
    f = all_facts(out)
    key = f"{LOOPBACK}:{blocked}/udp"
    assert f[("port.open", f"{LOOPBACK}:{ok_port}/udp")] is True
    assert f[("port.open", key)] is False
    # Neither crafted packets nor ICMP error reports: where it is blocked stays unknown.
    assert f[("port.blocked_at", key)] == "unknown"
    assert f[("port.walk_error", key)] == f"unsupported: {foreign_os.name}"


async def test_vlan_skips_without_packet_sockets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Was (macOS with sudo): AF_PACKET raised AttributeError; as Administrator the same.
    for become in (
        lambda: become_windows(monkeypatch, admin=True),
        lambda: become_darwin(monkeypatch, tmp_path, True),
    ):
        os_ = become()
        site = make_site(devices=(Device("cam", "ipc", "ip", "198.18.0.21"),))
        out = await vlan.VlanCheck().run(context(site, "vlan", root=True))
        assert out.status == "skip"
        assert facts(out)["vlan.skipped"] == "no-packet-sockets"
        assert os_.backend.title in out.summary.render("en")
        assert "Linuksa" in out.summary.render("pl")


async def test_bandwidth(foreign_os: ForeignOS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bandwidth, "MEASURE_S", 0.5)
    monkeypatch.setattr(bandwidth, "WARMUP_S", 0.2)
    monkeypatch.setattr(bandwidth, "DOWNLOAD_WARMUP_S", 0.2)
    async with SpeedServer(down_bps=2_000_000, up_bps=1_000_000) as srv:
        site = make_site(speedtest_url=f"http://{LOOPBACK}:{srv.port}")
        out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth"))
    f = facts(out)
    assert f["bw.download_mbps"] == pytest.approx(16, rel=0.25)


async def test_wan_gateway_and_loss_through_the_os_echo(foreign_os: ForeignOS) -> None:
    # The gateway is pinged through the backend: IcmpSendEcho2 on Windows, the datagram socket
    # (with its IP header) on macOS. Was (macOS): 100 % loss from dropped replies.
    async with udp_server(HelloServer(seen_as="203.0.113.2:40000")) as hp:
        site = make_site(servers=(P2PServer(LOOPBACK, hp, "udp", "hello"),), gateway=LOOPBACK)
        out = await wan.WanCheck().run(context(site, "wan"))
    f = facts(out)
    assert f["wan.gateway_reachable"] is True
    assert f["wan.loss_pct"] == 0
    assert f["wan.public_ip"] == "203.0.113.2"


async def test_heartbeat_without_packet_sockets(foreign_os: ForeignOS) -> None:
    site = make_site(devices=(Device("cam", "ipc", "ip", LOOPBACK),))
    out = await heartbeat.HeartbeatCheck().run(context(site, "heartbeat", root=True))
    assert out.status != "error", out.summary.render("en")


async def test_phone(foreign_os: ForeignOS) -> None:
    out = await PhoneCheck().run(context(make_site(), "phone"))
    assert out.status == "skip"
    assert out.summary.render("pl") != out.summary.render("en")


def test_world_is_the_only_way_in(foreign_os: ForeignOS) -> None:
    world = World()
    assert world.net is foreign_os.backend
    assert Thresholds() is not None


async def test_mtu_skips_without_linux_socket_options(foreign_os: ForeignOS) -> None:
    from diag.checks.mtu import MtuCheck

    site = make_site(servers=(P2PServer(LOOPBACK, 9, "udp", "hello"),))
    out = await MtuCheck().run(context(site, "mtu"))
    assert out.status == "skip"
    assert facts(out)["mtu.skipped"] == foreign_os.name
    assert foreign_os.backend.title in out.summary.render("en")
    assert out.summary.render("pl") != out.summary.render("en")


async def test_heartbeat_arp_through_send_arp(windows: ForeignOS) -> None:
    """Windows has no raw Ethernet: the configured devices' MACs come from SendARP, one per
    address, so no conflict can be seen (no device.ip_conflict fact is made)."""
    from diag.net.ifaces import local_interfaces

    iface = next(i for i in local_interfaces() if i.name == "Ethernet")
    scan = await heartbeat.os_arp(windows.backend, iface, ["198.18.0.1", "198.18.0.77"])
    assert scan.by_ip() == {"198.18.0.1": ["00:50:56:9a:0b:01"]}
    assert scan.sent == 2
    assert windows.iphlpapi is not None
    assert "SendARP 198.18.0.77" in windows.iphlpapi.calls


async def test_ipv6(foreign_os: ForeignOS) -> None:
    from diag.checks.ipv6 import Ipv6Check

    # The recorded adapters have no global IPv6 address: IPv4 only, whatever the OS.
    out = await Ipv6Check().run(context(make_site(), "ipv6"))
    assert out.status == "ok"
    assert facts(out)["ipv6.global_address"] is False
