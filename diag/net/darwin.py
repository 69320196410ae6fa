"""macOS backend: the route from ``route -n get default``, ICMP datagram sockets with IP header.

- default route: ``/sbin/route -n get default`` (the kernel's own answer through the routing
  socket; no /proc on macOS). A laptop with no default route gets "not in table": ``Route()``.
- ICMP: the datagram socket needs no root, and the reply it hands over STARTS WITH the IP header
  (Linux strips it); the parser is told so (``icmp_dgram_ip_header``).
- no AF_PACKET: the LAN sweep, LLDP and 802.1Q listening skip with the reason, also under sudo.
- interface indexes: psutil's names are BSD names (en0) that ``if_nametoindex`` knows.
- nameservers: dnspython reads /etc/resolv.conf, which macOS's configd keeps current.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import ClassVar

from diag.net.backend import Backend, Route

ROUTE_CMD = ("/sbin/route", "-n", "get", "default")
# `route get` answers from the kernel at once; 2 s only bounds a hung process.
ROUTE_TIMEOUT_S = 2.0


def parse_route_get(text: str) -> Route:
    """``gateway:`` and ``interface:`` of ``route -n get default`` output (pure)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    iface = fields.get("interface") or None
    gw = fields.get("gateway") or None
    if iface is None:
        return Route()
    # A link-level gateway ("link#5") is an on-link default route: no router address.
    if gw is not None and (gw.startswith("link#") or (":" in gw and gw.count(":") == 5)):
        gw = None
    return Route(gw, iface)


def _run_route() -> str:
    try:
        done = subprocess.run(
            ROUTE_CMD, capture_output=True, text=True, timeout=ROUTE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout


class DarwinBackend(Backend):
    name = "darwin"
    title = "macOS"
    icmp_dgram: ClassVar[bool] = True
    icmp_dgram_ip_header: ClassVar[bool] = True

    def __init__(self, run_route: Callable[[], str] = _run_route) -> None:
        self.run_route = run_route

    def default_route(self) -> Route:
        return parse_route_get(self.run_route())
