"""A realistic synthetic run (facts as the checks report them, diagnosed by the real engine).

Used by the report's tests and benchmark, and handy to look at the report without a site:
``python -m diag.reports.sample 12 out.html``. The faults are fixed per device index so the same
call always gives the same run; addresses are the lab's documentation ranges.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from diag.i18n import msg
from diag.model import (
    AddedVia,
    CheckResult,
    Credentials,
    Device,
    Fact,
    Metric,
    Network,
    P2PServer,
    Profile,
    Run,
    SecretRef,
    Site,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
GW = "198.18.0.1"
PUBLIC = "203.0.113.5"
DNS_NAME = "p2p.lab.example.net"
_VIA: tuple[AddedVia, ...] = ("p2p-account", "ip", "p2p", "shared")


def sample_site(n_devices: int = 8, hostile_name: str | None = None) -> Site:
    devices = []
    for i in range(n_devices):
        via = _VIA[i % len(_VIA)]
        name = f"Camera {i:02d}" if i else "NVR office"
        if hostile_name is not None and i == 1:
            name = hostile_name
        devices.append(
            Device(
                name=name,
                kind="nvr" if i == 0 else "ipc",
                added_via=via,
                address=f"198.18.{i // 200}.{10 + i % 200}",
                mac=f"02:00:5e:00:{i // 256:02x}:{i % 256:02x}",
                serial=f"SN{i:04d}",
                credentials=Credentials("admin", SecretRef("env:DIAG_PW")),
                streams_kbps=(2048,),
                public_host="cam.ddns.example.net" if via == "ip" else None,
                public_port=8000 if via == "ip" else None,
                share_expires=(NOW.date() - dt.timedelta(days=2)) if via == "shared" else None,
            )
        )
    return Site(
        name="Warehouse Nowak",
        devices=tuple(devices),
        profile=Profile(
            name="lab",
            p2p_servers=(
                P2PServer("198.51.100.10", 32100, "udp", "hello", "P2P login"),
                P2PServer("198.51.100.10", 443, "tcp", "connect", "P2P relay"),
            ),
        ),
        network=Network(gateway=GW),
    )


def sample_results(site: Site) -> tuple[CheckResult, ...]:
    f: dict[str, list[Fact]] = {}

    def add(check: str, key: str, value: Any, unit: str = "", target: str = "") -> None:
        f.setdefault(check, []).append(Fact(key, value, unit, target))

    add("wan", "wan.gateway_reachable", True)
    add("wan", "wan.gateway_rtt_ms", 0.6, "ms")
    add("wan", "wan.internet_reachable", True)
    add("wan", "wan.loss_pct", 0.0, "%")
    add("wan", "wan.rtt_ms", 38.0, "ms")
    add("wan", "wan.jitter_ms", 4.0, "ms")
    add("wan", "wan.captive_portal", False)
    add("wan", "wan.public_ip", PUBLIC)
    add("p2p", "p2p.reachable", True, target="P2P relay")
    add("p2p", "p2p.rtt_ms", 41.0, "ms", "P2P relay")
    add("p2p", "p2p.reachable", False, target="P2P login")
    add("p2p", "p2p.error", "timeout", target="P2P login")
    add("ports", "port.open", True, target="198.51.100.10:443/tcp")
    add("ports", "port.rtt_ms", 40.0, "ms", "198.51.100.10:443/tcp")
    add("ports", "port.open", False, target="198.51.100.10:32100/udp")
    add("ports", "port.blocked_at", "router", target="198.51.100.10:32100/udp")
    add("ports", "port.blocked_hop", 1, target="198.51.100.10:32100/udp")
    add("dns", "dns.resolver.site", "198.51.100.53")
    add("dns", "dns.resolver.independent", "203.0.113.53")
    add("dns", "dns.site.rcode", "NOERROR", target=DNS_NAME)
    add("dns", "dns.independent.rcode", "NOERROR", target=DNS_NAME)
    add("dns", "dns.site.answer", ["198.51.100.10"], target=DNS_NAME)
    add("dns", "dns.independent.answer", ["198.51.100.10"], target=DNS_NAME)
    add("dns", "dns.site.time_ms", 14.0, "ms", DNS_NAME)
    add("stun", "nat.udp_blocked", False)
    add("stun", "nat.present", True)
    add("stun", "nat.mapping", "EIM")
    add("stun", "nat.filtering", "APDF")
    add("stun", "nat.rfc3489", "Port Restricted Cone")
    add("stun", "nat.mapped_address", f"{PUBLIC}:40112")
    add("stun", "nat.hairpinning", True)
    add("stun", "nat.cgnat", False)
    add("stun", "upnp.present", False)
    add("bandwidth", "bw.download_mbps", 48.2, "Mbit/s")
    add("bandwidth", "bw.upload_mbps", 6.4, "Mbit/s")
    need = sum(sum(d.streams_kbps) for d in site.devices) / 1000 * 1.25
    add("bandwidth", "bw.needed_upload_mbps", round(need, 2), "Mbit/s")
    add("bandwidth", "bw.idle_rtt_ms", 37.0, "ms")
    add("bandwidth", "bw.loaded_rtt_ms", 212.0, "ms")
    add("bandwidth", "bw.bufferbloat_ms", 175.0, "ms")
    add(
        "vlan",
        "lldp.neighbor",
        {"chassis": "sw-1", "system": "switch", "port": "ge-0/7", "pvid": 1, "vlans": [1]},
    )
    add(
        "vlan",
        "vlan.tags_seen",
        [{"vid": 20, "macs": [site.devices[2].mac] if len(site.devices) > 2 else []}],
    )
    for i, d in enumerate(site.devices):
        n = d.name
        dead = i % 7 == 2
        add("heartbeat", "device.reachable", not dead, target=n)
        add("heartbeat", "device.arp_macs", [] if dead else [d.mac], target=n)
        add(
            "heartbeat",
            "device.icmp_loss_pct",
            100.0 if dead else (12.0 if i % 7 == 4 else 0.0),
            "%",
            n,
        )
        add("heartbeat", "device.rtt_ms", 0.8, "ms", n)
        add("heartbeat", "device.jitter_ms", 0.2, "ms", n)
        if not dead:
            add("heartbeat", "device.ports", {"http": True, "rtsp": True}, target=n)
            add("heartbeat", "device.auth", "rejected" if i % 7 == 5 else "ok", target=n)
            add(
                "heartbeat",
                "device.settings",
                {"gateway": GW, "dns": [GW], "p2p_enabled": i % 7 != 6},
                target=n,
            )
            add("heartbeat", "device.gateway_ok", True, target=n)
        if d.added_via != "ip":
            add(
                "heartbeat",
                "device.platform_online",
                not (dead or i % 7 == 6),
                target=n,
            )
        else:
            add("wan", "ddns.resolved", [PUBLIC if i % 3 else "203.0.113.77"], target=n)
            add("wan", "ddns.matches_public", bool(i % 3), target=n)
    summaries = {
        "wan": msg("internet reachable, gateway {ms} ms", ms=0.6),
        "p2p": msg("{n} of {total} platform servers answer", n=1, total=2),
        "ports": msg("{n} of {total} ports blocked", n=1, total=2),
        "dns": msg("{n} names resolved", n=1),
        "stun": msg("NAT {mapping}/{filtering}", mapping="EIM", filtering="APDF"),
        "bandwidth": msg("upload {up} Mbit/s", up=9.6),
        "vlan": msg("{n} VLANs seen", n=1),
        "heartbeat": msg("{n} devices checked", n=len(site.devices)),
    }
    status = {"p2p": "warn", "ports": "fail", "bandwidth": "warn"}
    return tuple(
        CheckResult(
            cid,
            status.get(cid, "ok"),  # type: ignore[arg-type]
            summaries[cid],
            metrics={"facts": Metric(len(facts))},
            facts=tuple(facts),
            duration_s=0.1 + 0.05 * len(cid),
        )
        for cid, facts in f.items()
    )


def sample_run(n_devices: int = 8, hostile_name: str | None = None, lang: str = "en") -> Run:
    from diag.diagnosis import diagnose

    site = sample_site(n_devices, hostile_name)
    results = sample_results(site)
    verdicts, site_causes = diagnose(site, results, now=NOW)
    return Run(
        site=site.name,
        started_at=NOW,
        duration_s=4.2,
        checks=results,
        devices=verdicts,
        site_causes=site_causes,
        lang=lang,
        tool_version="0.1.0",
    )


def main(argv: list[str]) -> int:
    from diag.reports import html

    n = int(argv[0]) if argv else 8
    out = argv[1] if len(argv) > 1 else "sample-report.html"
    lang = argv[2] if len(argv) > 2 else "en"
    html.write(sample_run(n), out, lang)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
