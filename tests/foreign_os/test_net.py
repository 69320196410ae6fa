"""The Windows and macOS backends of diag.net on recorded OS answers."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from diag.checks.base import World
from diag.net import backend as net_backend
from diag.net import icmp, resolve, tcpinfo
from diag.net.backend import CAP_ICMP, CAP_PACKET, CAP_RAW_IP, CAP_RECVERR, Route
from diag.net.darwin import parse_route_get
from diag.net.ifaces import local_interfaces
from diag.net.route import default_gateway, default_route
from diag.net.windows import WindowsBackend, parse_forward_table
from foreign_os import recorded as rec
from foreign_os.conftest import ForeignOS, become_windows


def test_backend_is_chosen_from_sys_platform(foreign_os: ForeignOS) -> None:
    assert net_backend.current() is foreign_os.backend
    assert net_backend.for_platform("win32").name == "windows"
    assert net_backend.for_platform("darwin").name == "darwin"
    assert net_backend.for_platform("linux").name == "linux"
    # The context's World carries it: checks never pick a backend themselves.
    assert World().net is foreign_os.backend


def test_default_route_and_gateway(foreign_os: ForeignOS) -> None:
    # Was: only /proc/net/route, so "no default route" (FAIL) on both.
    route = default_route()
    expected = "Ethernet" if foreign_os.name == "windows" else "en0"
    assert route == Route("198.18.0.1", expected)
    assert default_gateway() == "198.18.0.1"


def test_windows_route_lowest_metric_and_on_link() -> None:
    api = rec.FakeIpHlpApi(
        routes=[
            ("0.0.0.0", "0.0.0.0", "198.18.0.100", 12, 3, 5),  # on-link default (PPP-like)
            ("0.0.0.0", "0.0.0.0", "100.64.0.1", 17, 4, 50),
        ]
    )
    assert WindowsBackend(api, rec.FakeShell32()).default_route() == Route(None, "Ethernet")
    assert WindowsBackend(rec.FakeIpHlpApi(routes=[]), rec.FakeShell32()).default_route() == Route()


def test_windows_route_table_grows_its_buffer() -> None:
    # 300 routes (a VPN with split tunnels) do not fit the first 16 KiB buffer.
    many = [("203.0.113.0", "255.255.255.255", "198.18.0.1", 12, 4, 10)] * 300
    api = rec.FakeIpHlpApi(routes=[*many, *rec.WIN_ROUTES])
    assert WindowsBackend(api, rec.FakeShell32()).default_route().gateway == "198.18.0.1"
    assert api.calls.count("GetIpForwardTable") == 2


def test_forward_table_parser_is_bounded() -> None:
    data = rec.forward_table_bytes(rec.WIN_ROUTES)
    assert len(parse_forward_table(data)) == len(rec.WIN_ROUTES)
    # A count larger than the buffer holds: only the rows that are there.
    assert len(parse_forward_table(b"\xff\xff\x00\x00" + data[4:60])) == 1  # one 56-byte row
    assert len(parse_forward_table(b"\xff\xff\x00\x00" + data[4:40])) == 0
    assert parse_forward_table(b"") == []


def test_darwin_route_get_parser() -> None:
    assert parse_route_get(rec.DARWIN_ROUTE_GET) == Route("198.18.0.1", "en0")
    assert parse_route_get(rec.DARWIN_NO_ROUTE) == Route()
    # A point-to-point default (a VPN) names a link, not a router.
    text = "   route to: default\n    gateway: link#17\n  interface: utun3\n"
    assert parse_route_get(text) == Route(None, "utun3")


def test_local_interfaces_have_os_indexes(foreign_os: ForeignOS) -> None:
    # Was (Windows): empty, psutil's friendly names are not if_nametoindex names.
    ifaces = {i.name: i for i in local_interfaces()}
    if foreign_os.name == "windows":
        assert set(ifaces) == {"Ethernet", "Wi-Fi"}
        assert ifaces["Ethernet"].index == 12 and ifaces["Wi-Fi"].index == 17
        assert ifaces["Ethernet"].mac == "00:1a:2b:3c:4d:5e"
    else:
        assert set(ifaces) == {"en0"}
        assert ifaces["en0"].index == 4
    wired = ifaces["Ethernet" if foreign_os.name == "windows" else "en0"]
    assert wired.networks[0].network == ipaddress.ip_network("198.18.0.0/24")


def test_system_resolver_comes_from_the_os(foreign_os: ForeignOS) -> None:
    # Was (Windows): /etc/resolv.conf, which does not exist: no name resolved at all.
    assert resolve.system_resolver() == "198.51.100.53"


def test_windows_registry_without_a_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    become_windows(monkeypatch)
    monkeypatch.setitem(rec.WIN_REGISTRY[rec.WIN_IFACE_KEY], "DhcpNameServer", ("", 1))
    assert resolve.system_resolver() is None


def test_privilege(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    win = become_windows(monkeypatch, admin=True)
    # Was: hasattr(os, "geteuid") is false on Windows, so an Administrator was never privileged.
    assert win.backend.is_privileged() is True
    assert World().is_root() is True
    assert WindowsBackend(rec.FakeIpHlpApi(), rec.FakeShell32(False)).is_privileged() is False


def test_capabilities(foreign_os: ForeignOS) -> None:
    be = foreign_os.backend
    for root in (False, True):
        # No raw Ethernet on either, also as Administrator / with sudo.
        assert be.has(CAP_PACKET, root) is False
        assert be.has(CAP_RAW_IP, root) is False
        assert be.has(CAP_RECVERR, root) is False
        assert be.has(CAP_ICMP, root) is True
    reason = be.missing(CAP_PACKET)
    assert be.title in reason.render("en") and be.title in ("Windows", "macOS")
    assert "Linuksa" in reason.render("pl")


def test_tcp_info_is_unknown_off_linux(foreign_os: ForeignOS) -> None:
    # The kernel's TCP counters are Linux's: elsewhere the reading is None (the speed test then
    # counts the server's messages), never an exception from a getsockopt the OS lacks.
    with socket.socket() as s:
        assert tcpinfo.read(s) is None
        assert tcpinfo.read_bbr(s) is None


def test_windows_send_arp(windows: ForeignOS) -> None:
    assert windows.backend.arp_request("198.18.0.1", "198.18.0.100") == "00:50:56:9a:0b:01"
    assert windows.backend.arp_request("198.18.0.77") is None


async def test_windows_ping_through_icmp_send_echo2(windows: ForeignOS) -> None:
    stats = await icmp.ping("127.0.0.1", 3, 0.01, 0.2, root=False)
    assert stats is not None and stats.mode == "service"
    assert stats.rtts_ms == (0.0, 0.0, 0.0) and stats.loss_pct == 0.0
    lost = await icmp.ping("198.51.100.9", 2, 0.01, 0.1, root=False)
    assert lost is not None and lost.loss_pct == 100.0
    assert icmp.icmp_available(False) == "service"


async def test_darwin_echo_reply_with_ip_header_is_counted(darwin: ForeignOS) -> None:
    # Was: the datagram socket's reply was parsed as bare ICMP and dropped: 100 % loss.
    stats = await icmp.ping("127.0.0.1", 4, 0.01, 0.3, root=False)
    assert stats is not None and stats.mode == "unprivileged"
    assert stats.received == 4 and stats.loss_pct == 0.0
    silent = await icmp.ping("203.0.113.9", 2, 0.01, 0.1, root=False)
    assert silent is not None and silent.loss_pct == 100.0


def test_echo_parser_with_and_without_header() -> None:
    pkt = icmp.build_echo(7, 3, b"payload")
    reply = b"\x00\x00" + pkt[2:]
    header = rec.darwin_ip_header("198.18.0.1", "198.18.0.100", len(reply))
    assert icmp.parse_echo_reply(header + reply, True) == (7, 3, b"payload")
    assert icmp.parse_echo_reply(reply, False) == (7, 3, b"payload")
    # Linux's header-less parse of a macOS datagram fails: the bug, kept visible here.
    assert icmp.parse_echo_reply(header + reply, False) is None


def test_ttl_walk_without_select_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel walk waits with selectors: no select.poll (Windows has none) is needed."""
    import select

    from diag.net import ttl

    monkeypatch.delattr(select, "poll", raising=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hops = ttl.socket_walk([ttl.WalkTarget("k", "127.0.0.1", port, "udp", b"x")], 2, 0.5)["k"]
    # A closed loopback port: the kernel's port unreachable at TTL 1.
    assert hops[0].kind == "rejected"


def test_unit_tests_can_pass_fake_worlds() -> None:
    world = World(net=WindowsBackend(rec.FakeIpHlpApi(), rec.FakeShell32(True)))
    assert world.net.default_route().interface == "Ethernet"
    assert asyncio.iscoroutinefunction(world.net.ping)
