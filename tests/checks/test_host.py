"""The host check: route parsing, interface facts and the warnings, from snapshots (no traffic)."""

from __future__ import annotations

import socket
from typing import Any

from fakes import make_site, run_check

from diag.checks.host import HostCheck, Iface, Snapshot, analyse, default_route, read_snapshot

ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"


def route_line(iface: str, dest: str, gw: str, flags: int, metric: int, mask: str) -> str:
    def hexip(ip: str) -> str:
        return socket.inet_aton(ip)[::-1].hex().upper()

    cols = [iface, hexip(dest), hexip(gw), f"{flags:04X}", "0", "0", str(metric), hexip(mask)]
    return "\t".join([*cols, "0", "0", "0"])


def test_default_route_lowest_metric_wins() -> None:
    text = "\n".join(
        [
            ROUTE_HEADER,
            route_line("wlan0", "0.0.0.0", "198.18.5.1", 3, 600, "0.0.0.0"),
            route_line("eth0", "198.18.0.0", "0.0.0.0", 1, 0, "255.255.255.0"),
            route_line("eth0", "0.0.0.0", "198.18.0.1", 3, 100, "0.0.0.0"),
        ]
    )
    assert default_route(text) == ("198.18.0.1", "eth0")


def test_default_route_without_gateway_and_none_at_all() -> None:
    text = "\n".join([ROUTE_HEADER, route_line("ppp0", "0.0.0.0", "0.0.0.0", 1, 0, "0.0.0.0")])
    assert default_route(text) == (None, "ppp0")
    assert default_route(ROUTE_HEADER) == (None, None)
    assert default_route("garbage\nnot a route line at all\n\x00") == (None, None)


def test_default_route_ipv6_fallback() -> None:
    v6 = (
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
        "20010db8000000000000000000000001 00000400 00000002 00000000 00000003     eth1\n"
    )
    assert default_route(ROUTE_HEADER, v6) == ("2001:db8::1", "eth1")


def iface(name: str = "eth0", **kw: Any) -> Iface:
    base: dict[str, Any] = {"up": True, "mtu": 1500, "speed_mbps": 1000}
    base.update(kw)
    return Iface(name, addresses=("198.18.0.50/24",), mac="02:00:00:00:00:01", **base)


def test_healthy_snapshot_facts() -> None:
    snap = Snapshot((iface(), iface("lo", speed_mbps=None)), "198.18.0.1", "eth0")
    out = analyse(snap, root=False)
    assert out.status == "ok"
    facts = {(f.key, f.target): f.value for f in out.facts}
    assert facts[("host.default_gateway", "")] == "198.18.0.1"
    assert facts[("host.default_interface", "")] == "eth0"
    assert facts[("host.is_root", "")] is False
    eth0 = facts[("host.interface", "eth0")]
    assert eth0 == {
        "up": True,
        "speed_mbps": 1000,
        "mtu": 1500,
        "addresses": ["198.18.0.50/24"],
        "mac": "02:00:00:00:00:01",
        "errors_in": 0,
        "errors_out": 0,
        "drops_in": 0,
        "drops_out": 0,
    }
    assert out.metrics["speed"].unit == "Mbit/s" and out.metrics["speed"].value == 1000


def test_down_default_interface_warns() -> None:
    out = analyse(Snapshot((iface(up=False),), "198.18.0.1", "eth0"), root=True)
    assert out.status == "warn"
    assert "down" in out.summary.render()


def test_error_counters_warn_drops_do_not() -> None:
    assert analyse(Snapshot((iface(errors_in=3),), "198.18.0.1", "eth0"), True).status == "warn"
    assert analyse(Snapshot((iface(drops_in=30),), "198.18.0.1", "eth0"), True).status == "ok"
    # Errors on another interface are facts, not a warning about the path out.
    snap = Snapshot((iface(), iface("wlan0", errors_out=9)), "198.18.0.1", "eth0")
    assert analyse(snap, True).status == "ok"


def test_no_default_route_fails() -> None:
    assert analyse(Snapshot((iface(),), None, None), True).status == "fail"


def test_configured_interface_missing_warns() -> None:
    out = analyse(Snapshot((iface(),), "198.18.0.1", "eth0"), True, wanted_interface="eth9")
    assert out.status == "warn"
    assert "eth9" in out.summary.render()


def test_real_snapshot_reads_loopback() -> None:
    snap = read_snapshot()
    lo = next(i for i in snap.interfaces if i.name == "lo")
    assert "127.0.0.1/8" in lo.addresses
    assert lo.mtu > 0


async def test_check_runs_through_runner_with_injected_snapshot() -> None:
    snap = Snapshot((iface(up=False),), "198.18.0.1", "eth0")
    res = await run_check(HostCheck(lambda _net: snap), make_site())
    assert res.status == "warn"
    assert res.fact("host.interface", "eth0").value["up"] is False  # type: ignore[union-attr,index]
    assert res.fact("host.is_root", "") is not None


async def test_check_on_this_host_never_errors() -> None:
    res = await run_check(HostCheck(), make_site())
    assert res.status in ("ok", "warn", "fail")
    assert res.fact("host.interface", "lo") is not None
