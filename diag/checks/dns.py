"""DNS check: the platform's names through the site resolver and an independent one, compared.

Every profile ``dns_names`` entry is asked for A and AAAA, concurrently, at the site resolver
(``network.site_resolver``: an address, or "system" = the first nameserver of /etc/resolv.conf)
and at the profile's first independent resolver. Each answer is classified (NOERROR, NXDOMAIN,
SERVFAIL, REFUSED, TIMEOUT, ERROR) and timed; answers that disagree or come slowly are facts.
A hostile or malformed answer is an ``ERROR`` fact, never an exception.

``Resolver`` is also the helper other checks use to resolve a name the way the site does (never
through the laptop's system resolver library).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from diag.checks.base import Check, Context, profile_need
from diag.config import parse_resolver
from diag.i18n import msg
from diag.model import Fact, Metric, Outcome, Site, Status

RESOLV_CONF = Path("/etc/resolv.conf")
# Per-attempt wait for one answer, s. A resolver that needs more than 1.5 s is broken for the
# devices too (their resolvers give up after 1-2 s); the second attempt covers one lost datagram
# on a lossy LTE link, and 1.5 + 2.5 = 4 s keeps the check well inside its own timeout.
ATTEMPT_TIMEOUTS_S: tuple[float, ...] = (1.5, 2.5)
RCODES = ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED")


@dataclass(frozen=True)
class Answer:
    """One lookup (A and/or AAAA) of one name at one resolver."""

    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, REFUSED, TIMEOUT, ERROR
    addresses: tuple[str, ...] = ()
    time_ms: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.rcode == "NOERROR" and bool(self.addresses)


def system_resolver(resolv_conf: Path = RESOLV_CONF) -> str | None:
    """The first usable ``nameserver`` of resolv.conf, or None."""
    try:
        text = resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ipaddress.ip_address(parts[1].split("%")[0])
            except ValueError:
                continue
            return parts[1]
    return None


def site_resolver_spec(site: Site, resolv_conf: Path = RESOLV_CONF) -> str | None:
    """The site resolver as ``ip`` / ``ip:port``; None when "system" names none."""
    spec = site.network.site_resolver
    return system_resolver(resolv_conf) if spec == "system" else spec


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

    def __init__(self, spec: str, attempt_timeouts: Sequence[float] = ATTEMPT_TIMEOUTS_S) -> None:
        self.spec = spec
        self.ip, self.port = parse_resolver(spec)
        self.attempt_timeouts = tuple(attempt_timeouts)

    async def query(self, name: str, rdtype: str, deadline: float | None = None) -> Answer:
        """One question; never raises (bad input or a hostile answer becomes ``ERROR``)."""
        try:
            qname = dns.name.from_text(name)
            q = dns.message.make_query(qname, rdtype)
        except Exception as exc:  # a name dnspython cannot encode
            return Answer("ERROR", error=_bounded(f"{type(exc).__name__}: {exc}"))
        t0 = time.monotonic()
        for timeout in self.attempt_timeouts:
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
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
                return Answer(
                    "ERROR",
                    time_ms=round((time.monotonic() - t0) * 1000, 2),
                    error=_bounded(f"{type(exc).__name__}: {exc}"),
                )
            elapsed = round((time.monotonic() - t0) * 1000, 2)
            rcode = dns.rcode.to_text(resp.rcode())
            if rcode not in RCODES:
                return Answer("ERROR", time_ms=elapsed, error=f"rcode {rcode}")
            return Answer(rcode, _addresses(resp) if rcode == "NOERROR" else (), elapsed)
        return Answer("TIMEOUT")

    async def lookup(self, name: str, deadline: float | None = None) -> Answer:
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
        return Answer(
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
) -> tuple[tuple[str, ...], Answer | None]:
    """``host``'s addresses as the site resolves them; a literal IP resolves to itself.

    Returns (addresses, the lookup or None for a literal). Other checks use this so that no name
    is ever resolved by the laptop's system resolver library.
    """
    try:
        ipaddress.ip_address(host)
        return (host,), None
    except ValueError:
        pass
    spec = site_resolver_spec(site)
    if spec is None:
        return (), Answer("ERROR", error="no site resolver")
    ans = await Resolver(spec, attempt_timeouts).lookup(host, deadline)
    # IPv4 first: most sites have no IPv6 upstream, and the devices use IPv4.
    addrs = sorted(ans.addresses, key=lambda a: (":" in a, a))
    return tuple(addrs), ans


class DnsCheck(Check):
    id = "dns"
    names_platform = True
    title = msg("DNS: platform names through the site's and an independent resolver")
    needs = (profile_need("dns_names"),)
    # Two attempts per question take at most 4 s; the rest is slack for a slow event loop.
    timeout_s = 8.0

    def __init__(self, attempt_timeouts: Sequence[float] = ATTEMPT_TIMEOUTS_S) -> None:
        self.attempt_timeouts = tuple(attempt_timeouts)

    def targets(self, site: Site) -> tuple[str, ...]:
        return tuple(dict.fromkeys(site.profile.dns_names))

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        site_spec = site_resolver_spec(site)
        indep_spec = (site.profile.independent_resolvers or (None,))[0]
        facts: list[Fact] = [
            Fact("dns.resolver.site", site_spec),
            Fact("dns.resolver.independent", indep_spec),
        ]
        deadline = time.monotonic() + max(0.1, ctx.remaining() - 0.2)
        names = ctx.targets
        missing = Answer("ERROR", error="no site resolver")

        async def ask(spec: str | None, name: str) -> Answer:
            if spec is None:
                return missing
            return await Resolver(spec, self.attempt_timeouts).lookup(name, deadline)

        # Both resolvers, every name, A and AAAA: all at once, so the check takes one slowest
        # answer (at most the attempt timeouts), not their sum.
        site_part = asyncio.gather(*(ask(site_spec, n) for n in names))
        indep_part = asyncio.gather(*(ask(indep_spec, n) for n in names if indep_spec is not None))
        site_answers, indep_got = await asyncio.gather(site_part, indep_part)
        indep_answers: list[Answer | None] = list(indep_got) or [None] * len(names)
        ctx.progress(1.0)

        slow_ms = site.thresholds.dns_ms
        failed: list[str] = []
        warned: list[str] = []
        for name, sa, ia in zip(names, site_answers, indep_answers, strict=True):
            facts += [
                Fact("dns.site.rcode", sa.rcode, target=name),
                Fact("dns.site.answer", list(sa.addresses), target=name),
                Fact("dns.site.time_ms", sa.time_ms, "ms", name),
            ]
            if sa.time_ms is not None:
                facts.append(Fact("dns.site.slow", sa.time_ms > slow_ms, target=name))
            if ia is not None:
                facts += [
                    Fact("dns.independent.rcode", ia.rcode, target=name),
                    Fact("dns.independent.answer", list(ia.addresses), target=name),
                    Fact("dns.independent.time_ms", ia.time_ms, "ms", name),
                ]
                if sa.rcode == "NOERROR" and ia.rcode == "NOERROR":
                    both = set(sa.addresses) | set(ia.addresses)
                    disjoint = not set(sa.addresses) & set(ia.addresses)
                    facts.append(Fact("dns.mismatch", bool(both) and disjoint, target=name))
            if not sa.ok:
                failed.append(name)
            elif (sa.time_ms or 0) > slow_ms or any(
                f.key == "dns.mismatch" and f.value is True and f.target == name for f in facts
            ):
                warned.append(name)
            elif ia is not None and not ia.ok:
                warned.append(name)

        times = [a.time_ms for a in site_answers if a.time_ms is not None]
        metrics = {
            "names": Metric(len(names)),
            "site_failed": Metric(len(failed)),
            "site_max_ms": Metric(max(times) if times else None, "ms"),
        }
        itimes = [a.time_ms for a in indep_answers if a is not None and a.time_ms is not None]
        if indep_spec is not None:
            metrics["independent_max_ms"] = Metric(max(itimes) if itimes else None, "ms")
        status: Status
        if site_spec is None:
            status = "fail"
            summary = msg("no site resolver found (resolv.conf names none)")
        elif failed:
            status = "fail"
            summary = msg(
                "site resolver {resolver} failed for {n} of {total} names: {names}",
                resolver=site_spec,
                n=len(failed),
                total=len(names),
                names=", ".join(failed),
            )
        elif warned:
            status = "warn"
            summary = msg(
                "site resolver answers, but slowly or differently for: {names}",
                names=", ".join(warned),
            )
        else:
            status = "ok"
            summary = msg(
                "{total} names resolve through {resolver}", total=len(names), resolver=site_spec
            )
        return Outcome(status, summary, metrics, tuple(facts))
