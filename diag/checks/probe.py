"""Deprecated: the probes moved to ``diag.net`` (resolve, tcp, udp, icmp, ttl).

Kept as re-exports only until bandwidth.py moves to ``diag.net`` (it is being edited in
parallel); new code imports from ``diag.net``.
"""

from __future__ import annotations

from diag.net.resolve import RESOLVE_TIMEOUT_S, ResolveError, resolve, site_resolver

__all__ = ["RESOLVE_TIMEOUT_S", "ResolveError", "resolve", "site_resolver"]
