"""DNS check: the platform's names through the site resolver and an independent one, compared.

Every profile ``dns_names`` entry is asked for A and AAAA, concurrently, at the site resolver
(``network.site_resolver``: an address, or "system" = the OS's first nameserver, read by
dnspython's system configuration: resolv.conf on Linux/macOS, the registry on Windows)
and at the profile's first independent resolver. Each answer is classified (NOERROR, NXDOMAIN,
SERVFAIL, REFUSED, TIMEOUT, ERROR) and timed; answers that disagree or come slowly are facts.
A hostile or malformed answer is an ``ERROR`` fact, never an exception.

The resolver itself is ``diag.net.resolve`` (one implementation for every check).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from diag.checks.base import Check, Context, profile_need
from diag.i18n import msg
from diag.model import Fact, Metric, Outcome, Site, Status
from diag.net.resolve import ATTEMPT_TIMEOUTS_S, Lookup, Resolver, site_resolver_spec


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
        site_spec = site_resolver_spec(site, ctx.world.net)
        indep_spec = (site.profile.independent_resolvers or (None,))[0]
        facts: list[Fact] = [
            Fact("dns.resolver.site", site_spec),
            Fact("dns.resolver.independent", indep_spec),
        ]
        deadline = ctx.world.monotonic() + max(0.1, ctx.remaining() - 0.2)
        names = ctx.targets
        missing = Lookup("ERROR", error="no site resolver")

        async def ask(spec: str | None, name: str) -> Lookup:
            if spec is None:
                return missing
            return await Resolver(spec, self.attempt_timeouts, ctx.world.monotonic).lookup(
                name, deadline
            )

        # Both resolvers, every name, A and AAAA: all at once, so the check takes one slowest
        # answer (at most the attempt timeouts), not their sum.
        site_part = asyncio.gather(*(ask(site_spec, n) for n in names))
        indep_part = asyncio.gather(*(ask(indep_spec, n) for n in names if indep_spec is not None))
        site_answers, indep_got = await asyncio.gather(site_part, indep_part)
        indep_answers: list[Lookup | None] = list(indep_got) or [None] * len(names)
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
            summary = msg("no site resolver found (the system names no DNS server)")
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
