"""The default route and gateway of this laptop, from whichever OS it runs on (no traffic)."""

from __future__ import annotations

import socket

from diag.net.backend import Backend, Route, current

__all__ = ["Route", "default_gateway", "default_route", "local_ip_towards"]


def default_route(backend: Backend | None = None) -> Route:
    """The default route as the OS reports it (``Route()`` when there is none)."""
    return (backend or current()).default_route()


def default_gateway(backend: Backend | None = None) -> str | None:
    """The IPv4 default gateway, or None."""
    return default_route(backend).ipv4_gateway


def local_ip_towards(host: str, family: int = socket.AF_INET) -> str | None:
    """The source address the routing table picks for ``host`` (no datagram is sent: a UDP
    connect only asks the routing table), or None when there is no route."""
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return str(s.getsockname()[0])
    except OSError:
        return None
