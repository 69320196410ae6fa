"""Linux backend: the kernel's routing table from /proc, AF_PACKET, ICMP datagram sockets."""

from __future__ import annotations

import ipaddress
import socket
from typing import ClassVar

from diag.net.backend import Backend, Route

RTF_GATEWAY = 0x2  # route flag: through a gateway (otherwise on-link)
ROUTE_V4 = "/proc/net/route"
ROUTE_V6 = "/proc/net/ipv6_route"


def parse_default_route(v4_text: str, v6_text: str = "") -> tuple[str | None, str | None]:
    """(gateway, interface) of the default route with the lowest metric; IPv4 first.

    ``v4_text`` is ``/proc/net/route``, ``v6_text`` ``/proc/net/ipv6_route``. The one parser of
    the kernel's routing table in diag: host, heartbeat, stun, ports and wan all read it here.
    """
    best: tuple[int, str, str] | None = None
    for line in v4_text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, gw, flags, metric, mask = (int(cols[i], 16) for i in (1, 2, 3, 6, 7))
        except ValueError:
            continue
        if dest != 0 or mask != 0:
            continue
        # /proc/net/route holds addresses in host (little-endian) byte order.
        gw_ip = socket.inet_ntoa(gw.to_bytes(4, "little")) if flags & RTF_GATEWAY else None
        cand = (metric, cols[0], gw_ip or "")
        if best is None or cand[0] < best[0]:
            best = cand
    if best is not None:
        return best[2] or None, best[1]
    for line in v6_text.splitlines():
        cols = line.split()
        if len(cols) < 10 or cols[0] != "0" * 32 or cols[1] != "00":
            continue
        try:
            gw6 = ipaddress.IPv6Address(bytes.fromhex(cols[4]))
        except ValueError:
            continue
        if cols[9] == "lo":
            continue
        return (None if gw6.is_unspecified else str(gw6)), cols[9]
    return None, None


class LinuxBackend(Backend):
    name = "linux"
    title = "Linux"
    packet_sockets: ClassVar[bool] = True
    icmp_dgram: ClassVar[bool] = True
    kernel_timestamps: ClassVar[bool] = True
    recverr: ClassVar[bool] = True

    def __init__(
        self,
        route_v4: str = ROUTE_V4,
        route_v6: str = ROUTE_V6,
        resolv_conf: str = "/etc/resolv.conf",
    ) -> None:
        self.route_v4 = route_v4
        self.route_v6 = route_v6
        self.resolv_conf = resolv_conf

    def default_route(self) -> Route:
        """This network namespace's default route, read from the kernel (no traffic)."""
        texts = []
        for path in (self.route_v4, self.route_v6):
            try:
                with open(path, encoding="ascii", errors="replace") as fh:
                    texts.append(fh.read())
            except OSError:
                texts.append("")
        gw, iface = parse_default_route(texts[0], texts[1])
        return Route(gw, iface)
