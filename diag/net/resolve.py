"""Name resolution: the site resolver (or the OS's) asked directly with dnspython.

Names are never resolved through the laptop's resolver library (getaddrinfo): a check sees the
names exactly as the cameras on the site see them, through ``network.site_resolver``. "system"
means the OS's first nameserver, read by dnspython's own system configuration
(``Backend.nameservers``: resolv.conf on Linux and macOS, the registry on Windows), then asked
directly like any other resolver. A hostile or malformed answer is an ``ERROR`` lookup, never
an exception.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from diag.model import Site
from diag.net.addr import is_ip, parse_resolver

if TYPE_CHECKING:
    from diag.net.backend import Backend

# Per-attempt wait for one answer, s. A resolver that needs more than 1.5 s is broken for the
# devices too (their resolvers give up after 1-2 s); the second attempt covers one lost datagram
# on a lossy LTE link, and 1.5 + 2.5 = 4 s keeps a check well inside its own timeout.
ATTEMPT_TIMEOUTS_S: tuple[float, ...] = (1.5, 2.5)
# One name for a probe: a resolver answers in tens of ms; 2 s covers a slow operator resolver
# on LTE without letting a dead one eat the check's whole budget.
RESOLVE_TIMEOUT_S = 2.0
RCODES = ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED")


@dataclass(frozen=True)
class Lookup:
    """One lookup (A and/or AAAA) of one name at one resolver."""

    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT, ERROR
    addresses: tuple[str, ...] = ()
    time_ms: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.rcode == "NOERROR" and bool(self.addresses)


class ResolveError(Exception):
    """A name did not resolve; ``reason`` is the rcode name or ``TIMEOUT``/``ERROR``."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def system_resolver(backend: Backend | None = None) -> str | None:
    """The OS's first nameserver (dnspython's system configuration), or None."""
    from diag.net.backend import current

    servers = (backend or current()).nameservers()
    return servers[0] if servers else None


def site_resolver(site: Site) -> str:
    """The site resolver spec as configured: ``system`` or ``ip`` / ``ip:port``."""
    return site.network.site_resolver or "system"


def site_resolver_spec(site: Site, backend: Backend | None = None) -> str | None:
    """The site resolver as ``ip`` / ``ip:port``; None when "system" names none."""
    spec = site_resolver(site)
    return system_resolver(backend) if spec == "system" else spec


def _addresses(resp: dns.message.Message) -> tuple[str, ...]:
    out: set[str] = set()
    for rrset in resp.answer:
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            for rd in rrset:
                out.add(rd.to_text())
    return tuple(sorted(out))


def _bounded(text: str) -> str:
    # An error text can carry bytes from a hostile answer; keep it short for the report.
    return text[:120]


class Resolver:
    """Asks one resolver directly over UDP (TCP when the answer is truncated)."""

    def __init__(
        self,
        spec: str,
        attempt_timeouts: Sequence[float] = ATTEMPT_TIMEOUTS_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.ip, self.port = parse_resolver(spec)
        self.attempt_timeouts = tuple(attempt_timeouts)
        self.clock = clock

    async def query(self, name: str, rdtype: str, deadline: float | None = None) -> Lookup:
        """One question; never raises (bad input or a hostile answer becomes ``ERROR``)."""
        try:
            qname = dns.name.from_text(name)
            q = dns.message.make_query(qname, rdtype)
        except Exception as exc:  # a name dnspython cannot encode
            return Lookup("ERROR", error=_bounded(f"{type(exc).__name__}: {exc}"))
        t0 = self.clock()
        for timeout in self.attempt_timeouts:
            if deadline is not None:
                timeout = min(timeout, deadline - self.clock())
                if timeout <= 0:
                    break
            try:
                resp = await dns.asyncquery.udp(q, self.ip, timeout=timeout, port=self.port)
                if resp.flags & dns.flags.TC:
                    resp = await dns.asyncquery.tcp(q, self.ip, timeout=timeout, port=self.port)
            except dns.exception.Timeout:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Malformed, mismatched or hostile answers, ICMP errors: all are evidence.
                return Lookup(
                    "ERROR",
                    time_ms=round((self.clock() - t0) * 1000, 2),
                    error=_bounded(f"{type(exc).__name__}: {exc}"),
                )
            elapsed = round((self.clock() - t0) * 1000, 2)
            rcode = dns.rcode.to_text(resp.rcode())
            if rcode not in RCODES:
                return Lookup("ERROR", time_ms=elapsed, error=f"rcode {rcode}")
            return Lookup(rcode, _addresses(resp) if rcode == "NOERROR" else (), elapsed)
        return Lookup("TIMEOUT")

    async def lookup(self, name: str, deadline: float | None = None) -> Lookup:
        """A and AAAA concurrently, merged: addresses of both, the slower time.

        The rcode is A's, unless A gave none (TIMEOUT/ERROR) and AAAA did: a resolver that
        answers one type is not "timing out" for the name.
        """
        a, aaaa = await asyncio.gather(
            self.query(name, "A", deadline), self.query(name, "AAAA", deadline)
        )
        vague = ("TIMEOUT", "ERROR")
        if a.addresses or aaaa.addresses:
            rcode = "NOERROR"
        elif a.rcode not in vague or aaaa.rcode in vague:
            rcode = a.rcode
        else:
            rcode = aaaa.rcode
        times = [t for t in (a.time_ms, aaaa.time_ms) if t is not None]
        return Lookup(
            rcode,
            tuple(sorted(set(a.addresses) | set(aaaa.addresses))),
            max(times) if times else None,
            a.error or aaaa.error,
        )


async def resolve_host(
    site: Site,
    host: str,
    deadline: float | None = None,
    attempt_timeouts: Sequence[float] = ATTEMPT_TIMEOUTS_S,
    backend: Backend | None = None,
) -> tuple[tuple[str, ...], Lookup | None]:
    """``host``'s addresses (A and AAAA, IPv4 first) as the site resolves them.

    Returns (addresses, the lookup or None for a literal IP, which resolves to itself).
    """
    if is_ip(host):
        return (host,), None
    spec = site_resolver_spec(site, backend)
    if spec is None:
        return (), Lookup("ERROR", error="no site resolver")
    ans = await Resolver(spec, attempt_timeouts).lookup(host, deadline)
    # IPv4 first: most sites have no IPv6 upstream, and the devices use IPv4.
    addrs = sorted(ans.addresses, key=lambda a: (":" in a, a))
    return tuple(addrs), ans


async def resolve(
    name: str,
    resolver_spec: str,
    timeout_s: float = RESOLVE_TIMEOUT_S,
    backend: Backend | None = None,
) -> list[str]:
    """IPv4 addresses of ``name`` from one resolver (sorted); an IP literal is returned as is.

    ``resolver_spec`` is ``system`` (the OS's first nameserver, asked directly) or ``ip`` /
    ``ip:port``. Raises ``ResolveError`` with the rcode (or TIMEOUT/ERROR/NODATA).
    """
    if is_ip(name):
        return [name]
    spec = system_resolver(backend) if resolver_spec == "system" else resolver_spec
    if spec is None:
        raise ResolveError(name, "ERROR no resolver")
    try:
        res = Resolver(spec, attempt_timeouts=(timeout_s * 0.4, timeout_s * 0.6))
    except ValueError:
        raise ResolveError(name, "ERROR bad resolver") from None
    ans = await res.query(name, "A")
    if ans.rcode != "NOERROR":
        raise ResolveError(name, ans.rcode)
    addrs = sorted(a for a in ans.addresses if ":" not in a)
    if not addrs:
        raise ResolveError(name, "NODATA")
    return addrs
