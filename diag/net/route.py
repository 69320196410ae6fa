"""The default route and gateway of this laptop, from whichever OS it runs on (no traffic)."""

from __future__ import annotations

from diag.net.backend import Backend, Route, current

__all__ = ["Route", "default_gateway", "default_route"]


def default_route(backend: Backend | None = None) -> Route:
    """The default route as the OS reports it (``Route()`` when there is none)."""
    return (backend or current()).default_route()


def default_gateway(backend: Backend | None = None) -> str | None:
    """The IPv4 default gateway, or None."""
    return default_route(backend).ipv4_gateway
