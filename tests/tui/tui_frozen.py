"""A fixed run on the loopback site, for snapshot tests: no clock, no checks, no diagnosis engine.

Verdicts and causes are written out here rather than computed, so the snapshots pin the
dashboard's layout, not the (evolving) diagnosis rules; only the cause titles come from the
catalogue. The summaries are worded unlike the real checks' so that another area's Polish
catalogue growing does not change the Polish snapshot.
"""

from __future__ import annotations

import datetime as dt

from tui_fakes import reachability, site_facts

from diag.checks.base import World
from diag.i18n import msg
from diag.model import Cause, CheckResult, Fact, Metric, Run, Site, Verdict

STARTED = dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)


def frozen_world() -> World:
    return World(monotonic=lambda: 1000.0, now=lambda: STARTED, is_root=lambda: False)


def frozen_run(site: Site) -> Run:
    yard = "Yard camera"
    checks = (
        CheckResult(
            "host",
            "ok",
            msg("interface {ifname} up, gateway {gw}", ifname="eth0", gw="198.18.0.1"),
            duration_s=0.02,
        ),
        CheckResult(
            "dns",
            "warn",
            msg("site resolver slow: {ms} ms", ms=612),
            metrics={"time": Metric(612.0, "ms")},
            facts=(
                Fact("dns.site.rcode", "NOERROR", target="p2p.camera-cloud.test"),
                Fact("dns.site.time_ms", 612.0, "ms", target="p2p.camera-cloud.test"),
            ),
            duration_s=0.64,
        ),
        CheckResult(
            "wan",
            "ok",
            msg("internet reachable, loss {loss}%", loss=0),
            facts=tuple(site_facts()),
            duration_s=1.21,
        ),
        CheckResult(
            "heartbeat",
            "fail",
            msg("{n} of {total} devices do not answer", n=1, total=4),
            metrics={"answered": Metric(3, "devices")},
            facts=tuple(reachability(site, [yard])),
            duration_s=3.5,
        ),
        CheckResult(
            "ports",
            "error",
            msg("probe failed: {error}", error="OSError: [Errno 101] Network is unreachable"),
            duration_s=0.0,
        ),
        CheckResult("vlan", "skip", msg("raw sockets need root")),
    )
    no_power = Cause(
        "device-no-power",
        0.85,
        evidence=(
            Fact("device.reachable", False, target=yard),
            Fact("device.arp_macs", [], target=yard),
            Fact("device.icmp_loss_pct", 100.0, "%", target=yard),
        ),
        fix=(
            msg("Check the device's power supply or the PoE switch port."),
            msg("Reseat or replace the network cable."),
        ),
        detail=msg("{name} answered neither ARP, ping nor its ports", name=yard),
    )
    upload = Cause(
        "low-bandwidth",
        0.82,
        evidence=(
            Fact("bw.upload_mbps", 5.2, "Mbit/s"),
            Fact("bw.needed_upload_mbps", 9.6, "Mbit/s"),
        ),
        fix=(msg("Lower the bitrate of remote streams or use sub-streams."),),
    )
    verdicts = (
        Verdict("NVR office", "nvr", "p2p-account", "degraded", "colour", (upload,)),
        Verdict("Gate camera", "ipc", "ip", "online", "colour"),
        Verdict(yard, "ipc", "p2p", "offline", "grey", (no_power,)),
        # Unknown: the dashboard marks it "?" (not by colour alone) and says what was not measured.
        Verdict(
            "Neighbour's camera",
            "ipc",
            "shared",
            "unknown",
            "colour",
            unmeasured=(
                msg(
                    "the {check} login to {device} failed: {reason}",
                    check="heartbeat",
                    device="Neighbour's camera",
                    reason=msg("malformed Digest challenge"),
                ),
            ),
        ),
    )
    return Run(
        site=site.name,
        started_at=STARTED,
        duration_s=3.52,
        checks=checks,
        devices=verdicts,
        site_causes=(upload,),
        lang="en",
        site_path=None,
        tool_version="0.1.0",
    )
