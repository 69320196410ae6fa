"""IPv6 at the site, as facts: does the laptop have a global IPv6 address, and does it reach the
platform's names over IPv6?

Many LTE operators give IPv6 with CGNAT'd IPv4: then "no public address" (``cgnat``) hurts only
IPv4, and the app and the devices may still meet directly over IPv6. Global addresses are read
from the interfaces (psutil, every OS); the platform's names are asked for AAAA through the site
resolver; the first platform TCP server with an AAAA answer is connected to over IPv6 (a TCP
handshake, nothing sent). Informational: the status is ``ok`` either way, the facts carry it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable

from diag.checks.base import Check, Context
from diag.i18n import msg
from diag.model import Fact, Outcome, Site
from diag.net.tcp import tcp_connect

CONNECT_TIMEOUT_S = 1.5
# Addresses listed in the facts at most (a host may have many temporary addresses).
MAX_LISTED = 4


def global_ipv6(addresses: Iterable[str]) -> list[str]:
    """The global unicast IPv6 addresses among ``addresses`` (pure): no link-local, ULA,
    loopback or documentation prefix; ``%zone`` suffixes are dropped."""
    out = []
    for a in addresses:
        try:
            ip = ipaddress.IPv6Address(a.split("%", 1)[0])
        except ValueError:
            continue
        if ip.is_global and not ip.is_multicast:
            out.append(str(ip))
    return sorted(set(out))


def _interface_ipv6() -> list[str] | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        addrs = psutil.net_if_addrs()
    except OSError:
        return None
    return [a.address for lst in addrs.values() for a in lst if a.family == socket.AF_INET6]


async def _aaaa(site: Site, name: str) -> list[str]:
    from diag.net.resolve import Resolver, site_resolver_spec

    spec = site_resolver_spec(site)
    if not spec:
        return []
    try:
        ans = await Resolver(spec).query(name, "AAAA")
    except Exception:
        # A broken answer is no IPv6 address for this name; the dns check reports the error.
        return []
    return [a for a in ans.addresses if ":" in a]


class Ipv6Check(Check):
    id = "ipv6"
    title = msg("IPv6 at the site")
    names_platform = True
    timeout_s = 4.0

    def targets(self, site: Site) -> tuple[str, ...]:
        return ("site",)

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        facts: list[Fact] = []
        raw = _interface_ipv6()
        if raw is None:
            facts.append(Fact("ipv6.global_address", None))
            return Outcome("error", msg("interface addresses not readable"), {}, tuple(facts))
        glob = global_ipv6(raw)
        facts.append(Fact("ipv6.global_address", bool(glob)))
        if glob:
            facts.append(Fact("ipv6.addresses", ", ".join(glob[:MAX_LISTED])))
        names = list(dict.fromkeys([s.host for s in site.profile.p2p_servers]))
        answers = await asyncio.gather(*(_aaaa(site, n) for n in names))
        with_aaaa = [n for n, a in zip(names, answers, strict=True) if a]
        facts.append(Fact("ipv6.platform_names_aaaa", len(with_aaaa)))
        reachable: bool | None = None
        if glob and with_aaaa:
            reachable = False
            for srv in site.profile.p2p_servers:
                addrs = answers[names.index(srv.host)]
                if srv.protocol == "udp" or not addrs:
                    continue
                if (await tcp_connect(addrs[0], srv.port, CONNECT_TIMEOUT_S)).ok:
                    reachable = True
                    break
        facts.append(Fact("ipv6.platform_reachable", reachable))
        if not glob:
            summary = msg("no global IPv6 address: IPv4 only")
        elif reachable:
            summary = msg("global IPv6; the platform answers over IPv6")
        elif with_aaaa:
            summary = msg("global IPv6, but the platform does not answer over it")
        else:
            summary = msg("global IPv6; the platform's names have no IPv6 address")
        return Outcome("ok", summary, {}, tuple(facts))
