"""Fake checks for the dashboard's tests: they sleep, report progress and return fixed facts.

They touch no network at all (the dashboard is what is under test, not the checks), so the
tests are fast and deterministic; a ``gate`` lets a test hold a check until it says so.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

from diag.checks.base import Check, Context, Registry, registry_from
from diag.i18n import msg
from diag.model import Fact, Metric, Outcome, Site


class FakeCheck(Check):
    """A check whose behaviour is set per instance (tests build several with different ids)."""

    id = "fake"
    title = msg("Fake check")

    def __init__(
        self,
        check_id: str,
        *,
        delay_s: float = 0.0,
        status: str = "ok",
        facts: Sequence[Fact] = (),
        steps: int = 4,
        depends_on: Sequence[str] = (),
        gate: threading.Event | None = None,
        raises: BaseException | None = None,
        blocking: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        self.id = check_id  # type: ignore[misc]
        self.title = msg("Fake check {id}", id=check_id)  # type: ignore[misc]
        self.depends_on = tuple(depends_on)  # type: ignore[misc]
        self.timeout_s = timeout_s  # type: ignore[misc]
        self.delay_s, self.status, self.facts, self.steps = delay_s, status, tuple(facts), steps
        self.gate, self.raises, self.blocking = gate, raises, blocking
        self.runs = 0

    async def run(self, ctx: Context) -> Outcome:
        self.runs += 1
        for i in range(self.steps):
            ctx.progress(i / self.steps, msg("step {i}", i=i + 1))
            if self.blocking:
                # Misbehaving on purpose: blocks its event loop like a synchronous probe would.
                import time

                time.sleep(self.delay_s / self.steps)
            else:
                await asyncio.sleep(self.delay_s / self.steps)
        if self.gate is not None:
            await ctx.run_blocking(self.gate.wait)
        if self.raises is not None:
            raise self.raises
        return Outcome(
            self.status,  # type: ignore[arg-type]
            msg("{id}: {n} facts", id=self.id, n=len(self.facts)),
            metrics={"rtt": Metric(12.5, "ms")},
            facts=self.facts,
        )


def reachability(site: Site, offline: Sequence[str] = ()) -> list[Fact]:
    """Heartbeat-like facts: every device answers except those named in ``offline``."""
    facts: list[Fact] = []
    for d in site.devices:
        up = d.name not in offline
        facts.append(Fact("device.reachable", up, target=d.name))
        facts.append(Fact("device.arp_macs", ["02:00:5e:00:53:01"] if up else [], target=d.name))
        facts.append(Fact("device.icmp_loss_pct", 0.0 if up else 100.0, "%", target=d.name))
        facts.append(Fact("device.ports", {"http": up}, target=d.name))
    return facts


def site_facts() -> list[Fact]:
    """Site-wide facts for the header: NAT, DNS, WAN, bandwidth."""
    return [
        Fact("nat.rfc3489", "Port Restricted Cone"),
        Fact("nat.mapping", "EIM"),
        Fact("nat.filtering", "APDF"),
        Fact("nat.udp_blocked", False),
        Fact("dns.site.rcode", "NOERROR", target="p2p.camera-cloud.test"),
        Fact("dns.site.time_ms", 14.0, "ms", target="p2p.camera-cloud.test"),
        Fact("wan.internet_reachable", True),
        Fact("wan.public_ip", "203.0.113.7"),
        Fact("wan.loss_pct", 0.0, "%"),
        Fact("wan.rtt_ms", 21.0, "ms"),
        Fact("bw.upload_mbps", 5.2, "Mbit/s"),
        Fact("bw.download_mbps", 40.0, "Mbit/s"),
        Fact("bw.needed_upload_mbps", 9.6, "Mbit/s"),
    ]


def fake_registry(
    site: Site, *, offline: Sequence[str] = (), delay_s: float = 0.05, **heartbeat: object
) -> Registry:
    """Three checks: site facts, a slower heartbeat with device facts, one that fails."""
    return registry_from(
        FakeCheck("wan", delay_s=delay_s, facts=site_facts()),
        FakeCheck(
            "heartbeat",
            delay_s=delay_s * 2,
            facts=reachability(site, offline),
            status="fail" if offline else "ok",
            **heartbeat,  # type: ignore[arg-type]
        ),
        FakeCheck("dns", delay_s=delay_s, status="warn"),
    )


SITE_FILE = Path(__file__).parent / "site.toml"
