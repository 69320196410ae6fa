"""Local host check: the laptop's interfaces, link state, addresses, counters and default route.

Reads only local state (psutil, and the default route as the OS reports it through
``diag.net``: /proc on Linux, iphlpapi on Windows, ``route get`` on macOS): it sends no traffic at
all. Warns when the interface of the default route is down or counts errors, fails when there is
no default route (nothing beyond the LAN can be reached, so no platform check can pass).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from diag.checks.base import Check, Context
from diag.i18n import msg
from diag.model import Fact, JSONValue, Metric, Outcome, Status
from diag.net.backend import Backend, current
from diag.net.linux import parse_default_route


@dataclass(frozen=True)
class Iface:
    name: str
    up: bool
    mtu: int
    speed_mbps: int | None
    addresses: tuple[str, ...] = ()
    mac: str = ""
    errors_in: int = 0
    errors_out: int = 0
    drops_in: int = 0
    drops_out: int = 0

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "up": self.up,
            "speed_mbps": self.speed_mbps,
            "mtu": self.mtu,
            "addresses": list(self.addresses),
            "mac": self.mac,
            "errors_in": self.errors_in,
            "errors_out": self.errors_out,
            "drops_in": self.drops_in,
            "drops_out": self.drops_out,
        }


@dataclass(frozen=True)
class Snapshot:
    interfaces: tuple[Iface, ...] = ()
    gateway: str | None = None
    default_interface: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


# The Linux routing-table parser lives in diag.net; the name stays for this module's API.
default_route = parse_default_route


def _cidr(address: str, netmask: str | None) -> str | None:
    addr = address.split("%")[0]
    try:
        if netmask:
            return str(ipaddress.ip_interface(f"{addr}/{netmask}"))
        return str(ipaddress.ip_interface(addr))
    except ValueError:
        return None


def read_snapshot(net: Backend | None = None) -> Snapshot:
    """The host's interfaces (psutil) and default route (the OS's backend); no traffic."""
    net = net or current()
    notes: list[str] = []
    stats = psutil.net_if_stats()
    addrs = psutil.net_if_addrs()
    counters: Mapping[str, Any] = {}
    try:
        counters = psutil.net_io_counters(pernic=True)
    except (OSError, RuntimeError):
        notes.append("counters unavailable")
    ifaces: list[Iface] = []
    for name in sorted(set(stats) | set(addrs)):
        st = stats.get(name)
        cidrs: list[str] = []
        mac = ""
        for a in addrs.get(name, []):
            if a.family in (socket.AF_INET, socket.AF_INET6):
                c = _cidr(a.address, a.netmask)
                if c:
                    cidrs.append(c)
            elif a.family == psutil.AF_LINK:
                mac = a.address
        c = counters.get(name)
        flags = getattr(st, "flags", "") if st else ""
        # isup is the administrative state; "running" is the carrier (cable/link) on Linux.
        up = bool(st and st.isup and ("running" in flags.split(",") if flags else True))
        ifaces.append(
            Iface(
                name=name,
                up=up,
                mtu=st.mtu if st else 0,
                speed_mbps=(st.speed or None) if st else None,
                addresses=tuple(cidrs),
                mac=mac,
                errors_in=c.errin if c else 0,
                errors_out=c.errout if c else 0,
                drops_in=c.dropin if c else 0,
                drops_out=c.dropout if c else 0,
            )
        )
    route = net.default_route()
    return Snapshot(tuple(ifaces), route.gateway, route.interface, tuple(notes))


def analyse(snap: Snapshot, root: bool, wanted_interface: str | None = None) -> Outcome:
    """Facts and status from a snapshot (pure)."""
    facts: list[Fact] = [
        Fact("host.interface", i.to_json(), target=i.name) for i in snap.interfaces
    ]
    facts += [
        Fact("host.default_gateway", snap.gateway),
        Fact("host.default_interface", snap.default_interface),
        Fact("host.is_root", root),
    ]
    by_name = {i.name: i for i in snap.interfaces}
    dflt = by_name.get(snap.default_interface or "")
    metrics = {
        "interfaces": Metric(len(snap.interfaces)),
        "interfaces_up": Metric(sum(i.up for i in snap.interfaces)),
    }
    if dflt is not None:
        metrics["errors"] = Metric(dflt.errors_in + dflt.errors_out)
        metrics["drops"] = Metric(dflt.drops_in + dflt.drops_out)
        if dflt.speed_mbps is not None:
            metrics["speed"] = Metric(dflt.speed_mbps, "Mbit/s")
        metrics["mtu"] = Metric(dflt.mtu, "bytes")
    status: Status = "ok"
    if wanted_interface and wanted_interface not in by_name:
        status = "warn"
        summary = msg(
            "the configured interface {iface} does not exist on this laptop",
            iface=wanted_interface,
        )
    elif snap.default_interface is None:
        status = "fail"
        summary = msg("no default route: nothing beyond the local network is reachable")
    elif dflt is not None and not dflt.up:
        status = "warn"
        summary = msg("default interface {iface} is down", iface=dflt.name)
    elif dflt is not None and dflt.errors_in + dflt.errors_out > 0:
        status = "warn"
        summary = msg(
            "default interface {iface} counts {errors} packet errors (cable or duplex?)",
            iface=dflt.name,
            errors=dflt.errors_in + dflt.errors_out,
        )
    else:
        summary = msg(
            "default route via {gateway} on {iface}",
            gateway=snap.gateway or "-",
            iface=snap.default_interface,
        )
    return Outcome(status, summary, metrics, tuple(facts))


class HostCheck(Check):
    id = "host"
    title = msg("Laptop: interfaces, link state, addresses, default gateway")
    # Reading psutil and /proc takes milliseconds; 5 s only guards against a stuck /proc read.
    timeout_s = 5.0

    def __init__(self, snapshot: Callable[[Backend], Snapshot] = read_snapshot) -> None:
        self.snapshot = snapshot

    async def run(self, ctx: Context) -> Outcome:
        snap = await ctx.run_blocking(self.snapshot, ctx.world.net)
        return analyse(snap, ctx.world.is_root(), ctx.site.network.interface)
