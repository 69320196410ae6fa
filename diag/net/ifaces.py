"""The laptop's interfaces (name, OS index, MAC, IPv4 networks) and which one faces the site."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from diag.model import Site

if TYPE_CHECKING:
    from diag.net.backend import Backend

# No sweep is larger than a /24 by default: 256 broadcasts is polite, a /16 (65536) is not.
MAX_SWEEP_PREFIX = 24


@dataclass(frozen=True)
class LocalInterface:
    """A laptop interface with its IPv4 networks (``198.18.0.100/24``)."""

    name: str
    index: int
    mac: str
    networks: tuple[ipaddress.IPv4Interface, ...]

    def onlink(self, ip: str) -> ipaddress.IPv4Interface | None:
        """The interface address whose subnet holds ``ip`` (None: not on this link)."""
        try:
            addr = ipaddress.IPv4Address(ip)
        except ValueError:
            return None
        return next((n for n in self.networks if addr in n.network), None)

    @property
    def addresses(self) -> set[str]:
        return {str(n.ip) for n in self.networks}


def local_interfaces(backend: Backend | None = None) -> list[LocalInterface]:
    """The up interfaces with an IPv4 address, loopback excluded (psutil; no sockets opened).

    The index is the OS's own (``if_nametoindex`` on Linux and macOS; on Windows psutil's
    friendly name is the interface alias, mapped to its index through iphlpapi).
    """
    from diag.net.backend import current

    return (backend or current()).local_interfaces()


def pick_interface(site: Site, ifaces: Sequence[LocalInterface]) -> LocalInterface | None:
    """The laptop interface facing the site (pure), or None when none does.

    The configured ``network.interface``; else the interface holding most configured device
    addresses; else the one the site's gateway is on; else one overlapping ``network.subnets``.
    Never "whatever the default route uses": a laptop that is not on the site's LAN must not
    sweep or sniff the LAN it happens to be on.
    """
    by_name = {i.name: i for i in ifaces}
    if site.network.interface:
        return by_name.get(site.network.interface)
    counts = {
        i.name: sum(1 for d in site.devices if d.address and i.onlink(d.address)) for i in ifaces
    }
    best = max(ifaces, key=lambda i: counts[i.name], default=None)
    if best is not None and counts[best.name] > 0:
        return best
    gw = site.network.gateway
    if gw:
        for i in ifaces:
            if i.onlink(gw):
                return i
    for s in site.network.subnets:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            continue
        for i in ifaces:
            if any(n.network.overlaps(net) for n in i.networks):
                return i
    return None


def sweep_targets(
    iface: LocalInterface | None,
    extra: Iterable[str],
    max_prefix: int = MAX_SWEEP_PREFIX,
) -> tuple[list[str], list[str], list[str]]:
    """What an ARP sweep asks: (addresses, swept subnets, subnets left out as not on-link); pure.

    A subnet wider than ``max_prefix`` is cut down to the ``/max_prefix`` holding the laptop's
    address (or its first one): the tool never floods a /16 unasked.
    """
    subnets: list[ipaddress.IPv4Network] = []
    own: set[str] = set()
    if iface is not None:
        subnets.extend(n.network for n in iface.networks)
        own = iface.addresses
    for s in extra:
        try:
            net = ipaddress.ip_network(s, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            subnets.append(net)
    swept: list[str] = []
    offlink: list[str] = []
    targets: list[str] = []
    seen: set[str] = set()
    for net in subnets:
        if net.prefixlen < max_prefix:
            anchor = next(
                (ipaddress.IPv4Address(a) for a in own if ipaddress.IPv4Address(a) in net),
                net.network_address,
            )
            net = ipaddress.IPv4Network(f"{anchor}/{max_prefix}", strict=False)
        if iface is None or not any(
            net.subnet_of(n.network) or n.network.subnet_of(net) for n in iface.networks
        ):
            if str(net) not in offlink:
                offlink.append(str(net))
            continue
        if str(net) in swept:
            continue
        swept.append(str(net))
        hosts = [net.network_address] if net.prefixlen == 32 else list(net.hosts())
        for h in hosts:
            hs = str(h)
            if hs not in seen and hs not in own and iface.onlink(hs):
                seen.add(hs)
                targets.append(hs)
    return targets, swept, offlink
