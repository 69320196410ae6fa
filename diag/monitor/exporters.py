"""Prometheus export of a run: textfile-collector output (atomic) and Pushgateway push.

The series answer the support team's questions ("which sites have grey devices now, since when,
why; which links are degrading"): one metric per measured quantity, in base units (seconds,
bytes per second, ratios 0..1), named for what it measures (``diag_wan_loss_ratio``, not a
catch-all with a ``metric`` label). Labels are bounded: site, device (from the site file), check id,
cause id (the catalogue), and enums (state, status, NAT type, direction); never free text.
Cumulative counters (interface errors and drops) are counters; no ``_created`` series (they would
change every run). ``SERIES`` lists every family; docs/metrics.md documents each and a test keeps
the two in step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from diag import __version__
from diag.diagnosis.facts import Facts, as_num
from diag.fileio import write_atomic
from diag.model import DEVICE_STATES, STATUSES, Run

if TYPE_CHECKING:
    from diag.model import Site

Kind = Literal["gauge", "counter"]


@dataclass(frozen=True)
class Series:
    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str


S, SD = ("site",), ("site", "device")
SERIES: Mapping[str, Series] = {
    s.name: s
    for s in (
        # the run
        Series("diag_info", "gauge", ("site", "version"), "1; the diag version of the last run"),
        Series("diag_last_run_timestamp_seconds", "gauge", S, "Unix time the last run started"),
        Series("diag_run_duration_seconds", "gauge", S, "How long the last run took"),
        Series(
            "diag_runs_total",
            "counter",
            S,
            "Monitor runs recorded in the site's history (the retention does not lower it)",
        ),
        Series(
            "diag_check_status",
            "gauge",
            ("site", "check", "status"),
            "1 for the check's status in the last run, 0 for the other statuses",
        ),
        Series(
            "diag_check_duration_seconds", "gauge", ("site", "check"), "How long the check took"
        ),
        # devices
        Series(
            "diag_device_info",
            "gauge",
            ("site", "device", "kind", "added_via"),
            "1 for each device of the site file, with its kind and how it was added to the app",
        ),
        Series(
            "diag_device_up",
            "gauge",
            SD,
            "1 the app shows the device in colour (online or degraded), 0 grey (offline); "
            "absent when its state is unknown",
        ),
        Series(
            "diag_device_state",
            "gauge",
            ("site", "device", "state"),
            "1 for the device's state in the last run, 0 for the other states",
        ),
        Series(
            "diag_device_offline_since_timestamp_seconds",
            "gauge",
            SD,
            "Unix time the device's current outage began (from the history); only while offline",
        ),
        Series(
            "diag_device_cause",
            "gauge",
            ("site", "device", "cause"),
            "Confidence (0..1) of each cause diagnosed for the device; absent when not suspected",
        ),
        Series(
            "diag_site_cause",
            "gauge",
            ("site", "cause"),
            "Confidence (0..1) of each site-wide cause; absent when not suspected",
        ),
        Series(
            "diag_device_lan_rtt_seconds", "gauge", SD, "Round-trip time to the device on the LAN"
        ),
        Series(
            "diag_device_lan_loss_ratio",
            "gauge",
            SD,
            "Share of LAN pings to the device lost (0..1)",
        ),
        Series(
            "diag_device_platform_online",
            "gauge",
            SD,
            "1 the P2P platform sees the device's heartbeat, 0 it does not",
        ),
        Series(
            "diag_relogin_window_seconds",
            "gauge",
            S,
            "How long devices may stay grey after an outage while they log in again",
        ),
        # the internet link
        Series("diag_wan_gateway_up", "gauge", S, "1 the router answers, 0 it does not"),
        Series("diag_wan_internet_up", "gauge", S, "1 a host on the internet answers, 0 none"),
        Series("diag_wan_captive_portal", "gauge", S, "1 web requests land on an operator portal"),
        Series("diag_wan_gateway_rtt_seconds", "gauge", S, "Round-trip time to the router"),
        Series("diag_wan_rtt_seconds", "gauge", S, "Round-trip time to the platform (median)"),
        Series("diag_wan_jitter_seconds", "gauge", S, "Variation of the round-trip time"),
        Series("diag_wan_loss_ratio", "gauge", S, "Share of probes to the platform lost (0..1)"),
        Series(
            "diag_threshold_loss_ratio", "gauge", S, "The site's loss threshold (site file), 0..1"
        ),
        Series(
            "diag_threshold_rtt_seconds", "gauge", S, "The site's round-trip threshold (site file)"
        ),
        Series("diag_upload_bytes_per_second", "gauge", S, "Measured upload rate"),
        Series("diag_download_bytes_per_second", "gauge", S, "Measured download rate"),
        Series(
            "diag_upload_needed_bytes_per_second",
            "gauge",
            S,
            "Upload the cameras' streams need, headroom included (site file)",
        ),
        Series("diag_bufferbloat_seconds", "gauge", S, "Latency added while the link is loaded"),
        # DNS and the platform
        Series("diag_dns_names", "gauge", S, "Platform names looked up"),
        Series("diag_dns_names_failed", "gauge", S, "Platform names the site's resolver fails"),
        Series(
            "diag_dns_lookup_max_seconds",
            "gauge",
            ("site", "resolver"),
            "Slowest lookup of a platform name (resolver: site or independent)",
        ),
        Series("diag_p2p_servers", "gauge", S, "Platform servers probed"),
        Series("diag_p2p_servers_reachable", "gauge", S, "Platform servers that answered"),
        Series("diag_p2p_rtt_max_seconds", "gauge", S, "Slowest platform server's round trip"),
        Series("diag_ports_open", "gauge", S, "Platform ports reachable from the site"),
        Series("diag_ports_blocked", "gauge", S, "Platform ports blocked on the way"),
        # NAT
        Series(
            "diag_nat_info",
            "gauge",
            ("site", "mapping", "filtering"),
            "1; the NAT's mapping (EIM, ADM, APDM) and filtering (EIF, ADF, APDF), RFC 4787",
        ),
        Series("diag_nat_udp_blocked", "gauge", S, "1 the router drops UDP (STUN fails)"),
        Series("diag_nat_cgnat", "gauge", S, "1 the site is behind the operator's NAT too"),
        Series("diag_nat_double", "gauge", S, "1 two NATs in a row (router WAN ≠ mapped address)"),
        Series(
            "diag_nat_mapping_lifetime_seconds",
            "gauge",
            S,
            "Lower bound of the NAT's UDP mapping lifetime (deep runs only)",
        ),
        Series("diag_stun_rtt_seconds", "gauge", S, "Round-trip time to the STUN server"),
        Series("diag_upnp_mappings", "gauge", S, "Port mappings the router's UPnP lists"),
        # the site box's own network interface (cumulative kernel counters)
        Series(
            "diag_host_interface_errors_total",
            "counter",
            ("site", "direction"),
            "Errors on the site box's default interface since it came up",
        ),
        Series(
            "diag_host_interface_drops_total",
            "counter",
            ("site", "direction"),
            "Packets dropped on the site box's default interface since it came up",
        ),
        Series(
            "diag_host_interface_speed_bytes_per_second",
            "gauge",
            S,
            "Link speed of the site box's default interface",
        ),
        Series("diag_host_interface_mtu_bytes", "gauge", S, "MTU of the default interface"),
        Series("diag_lan_unknown_hosts", "gauge", S, "Hosts on the LAN not in the site file"),
        Series(
            "diag_vlan_devices_unreachable",
            "gauge",
            S,
            "Devices not reachable on layer 2 (another VLAN)",
        ),
    )
}
# Third-party checks' own metrics: diag_check_<check>_<metric>[_<unit>] (see docs/metrics.md).
PLUGIN_PREFIX = "diag_check_"
# The checks whose measurements have their own series above; their Metric entries are not exported
# again under the plugin pattern.
BUILTIN_CHECKS = frozenset(
    ("bandwidth", "dns", "heartbeat", "host", "p2p", "ports", "stun", "vlan", "wan", "mtu")
)
# A plugin metric's unit -> (name suffix, factor to the base unit).
UNIT_BASE: Mapping[str, tuple[str, float]] = {
    "ms": ("seconds", 1e-3),
    "s": ("seconds", 1.0),
    "Mbit/s": ("bytes_per_second", 1e6 / 8),
    "kbit/s": ("bytes_per_second", 1e3 / 8),
    "bit/s": ("bytes_per_second", 1 / 8),
    "%": ("ratio", 1e-2),
    "B": ("bytes", 1.0),
    "bytes": ("bytes", 1.0),
    "": ("", 1.0),
    "count": ("", 1.0),
}
_NAME = re.compile(r"[a-z][a-z0-9_]*")
# RFC 4787 behaviours: anything else a check reports is exported as "unknown" (bounded labels).
MAPPINGS = ("EIM", "ADM", "APDM")
FILTERINGS = ("EIF", "ADF", "APDF")
UP = {"online": 1.0, "degraded": 1.0, "offline": 0.0}


def _bool(v: bool | None) -> float | None:
    return None if v is None else float(v)


def _scaled(v: float | None, factor: float) -> float | None:
    return None if v is None else v * factor


class RunCollector(Collector):
    """The families of one run, built when collected (a registry of this one collector)."""

    def __init__(
        self,
        run: Run,
        runs_total: int | None = None,
        site: Site | None = None,
        offline_since: Mapping[str, dt.datetime] | None = None,
    ) -> None:
        self.run, self.runs_total, self.site = run, runs_total, site
        self.offline_since = offline_since or {}

    def collect(self) -> Iterator[Metric]:
        fams: dict[str, Metric] = {}
        for name, value, labels in self._samples():
            if value is None or not math.isfinite(value):
                continue  # not measured: absent, never a made-up 0 (missing is unknown)
            fam = fams.get(name)
            if fam is None:
                fam = fams[name] = _family(name)
            # A counter's samples carry the family name plus _total: SERIES names them so.
            fam.add_sample(name, labels, value)
        yield from fams.values()

    def _samples(self) -> Iterator[tuple[str, float | None, dict[str, str]]]:
        run = self.run
        site = {"site": run.site}
        yield "diag_info", 1.0, {**site, "version": __version__}
        yield "diag_last_run_timestamp_seconds", run.started_at.timestamp(), site
        yield "diag_run_duration_seconds", run.duration_s, site
        if self.runs_total is not None:
            yield "diag_runs_total", float(self.runs_total), site
        for r in run.checks:
            c = {**site, "check": r.check_id}
            for st in STATUSES:
                yield "diag_check_status", 1.0 if r.status == st else 0.0, {**c, "status": st}
            yield "diag_check_duration_seconds", r.duration_s, c
        facts = Facts(run.checks)
        yield from self._devices(facts)
        yield from self._site(facts)
        yield from self._plugins()

    def _devices(self, facts: Facts) -> Iterator[tuple[str, float | None, dict[str, str]]]:
        run = self.run
        for v in run.devices:
            d = {"site": run.site, "device": v.device}
            info = {**d, "kind": v.kind, "added_via": v.added_via}
            yield "diag_device_info", 1.0, info
            yield "diag_device_up", UP.get(v.state), d
            for s in DEVICE_STATES:
                yield "diag_device_state", 1.0 if v.state == s else 0.0, {**d, "state": s}
            since = self.offline_since.get(v.device)
            if v.state == "offline" and since is not None:
                yield "diag_device_offline_since_timestamp_seconds", since.timestamp(), d
            for c in v.causes:
                yield "diag_device_cause", c.confidence, {**d, "cause": c.id}
            yield (
                "diag_device_lan_rtt_seconds",
                _scaled(facts.num("device.rtt_ms", v.device), 1e-3),
                d,
            )
            loss = facts.num("device.icmp_loss_pct", v.device)
            yield "diag_device_lan_loss_ratio", _scaled(loss, 1e-2), d
            online = facts.flag("device.platform_online", v.device)
            yield "diag_device_platform_online", _bool(online), d
        for c in run.site_causes:
            yield "diag_site_cause", c.confidence, {"site": run.site, "cause": c.id}

    def _site(self, facts: Facts) -> Iterator[tuple[str, float | None, dict[str, str]]]:
        run, site = self.run, {"site": self.run.site}
        if self.site is not None:
            from diag.diagnosis.rules import relogin_window_s

            yield "diag_relogin_window_seconds", relogin_window_s(self.site), site
            th = self.site.thresholds
            yield "diag_threshold_loss_ratio", th.loss_pct / 100, site
            yield "diag_threshold_rtt_seconds", th.rtt_ms / 1000, site
        yield "diag_wan_gateway_up", _bool(facts.flag("wan.gateway_reachable")), site
        yield "diag_wan_internet_up", _bool(facts.flag("wan.internet_reachable")), site
        yield "diag_wan_captive_portal", _bool(facts.flag("wan.captive_portal")), site
        yield "diag_wan_gateway_rtt_seconds", _scaled(facts.num("wan.gateway_rtt_ms"), 1e-3), site
        yield "diag_wan_rtt_seconds", _scaled(facts.num("wan.rtt_ms"), 1e-3), site
        yield "diag_wan_jitter_seconds", _scaled(facts.num("wan.jitter_ms"), 1e-3), site
        yield "diag_wan_loss_ratio", _scaled(facts.num("wan.loss_pct"), 1e-2), site
        mbit = 1e6 / 8  # Mbit/s -> bytes/s
        yield "diag_upload_bytes_per_second", _scaled(facts.num("bw.upload_mbps"), mbit), site
        yield "diag_download_bytes_per_second", _scaled(facts.num("bw.download_mbps"), mbit), site
        need = facts.num("bw.needed_upload_mbps")
        yield "diag_upload_needed_bytes_per_second", _scaled(need, mbit), site
        yield "diag_bufferbloat_seconds", _scaled(facts.num("bw.bufferbloat_ms"), 1e-3), site
        dns = run.check("dns")
        if dns is not None:
            yield "diag_dns_names", _metric(dns.metrics, "names"), site
            yield "diag_dns_names_failed", _metric(dns.metrics, "site_failed"), site
            for resolver in ("site", "independent"):
                times = _nums(f.value for f in facts.all(f"dns.{resolver}.time_ms"))
                worst = max(times) / 1000 if times else None
                yield "diag_dns_lookup_max_seconds", worst, {**site, "resolver": resolver}
        reach = [f.value for f in facts.all("p2p.reachable") if isinstance(f.value, bool)]
        if reach:
            yield "diag_p2p_servers", float(len(reach)), site
            yield "diag_p2p_servers_reachable", float(sum(reach)), site
        rtts = _nums(f.value for f in facts.all("p2p.rtt_ms"))
        yield "diag_p2p_rtt_max_seconds", max(rtts) / 1000 if rtts else None, site
        ports = run.check("ports")
        if ports is not None:
            yield "diag_ports_open", _metric(ports.metrics, "ports_open"), site
            yield "diag_ports_blocked", _metric(ports.metrics, "ports_blocked"), site
        yield from self._nat(facts)
        yield from self._host(facts)
        heartbeat = run.check("heartbeat")
        if heartbeat is not None:
            yield "diag_lan_unknown_hosts", _metric(heartbeat.metrics, "unknown_hosts"), site
        vlan = run.check("vlan")
        if vlan is not None:
            gone = _metric(vlan.metrics, "devices_l2_unreachable")
            yield "diag_vlan_devices_unreachable", gone, site

    def _nat(self, facts: Facts) -> Iterator[tuple[str, float | None, dict[str, str]]]:
        site = {"site": self.run.site}
        mapping, filtering = facts.text("nat.mapping"), facts.text("nat.filtering")
        if mapping is not None or filtering is not None:
            labels = {
                **site,
                "mapping": mapping if mapping in MAPPINGS else "unknown",
                "filtering": filtering if filtering in FILTERINGS else "unknown",
            }
            yield "diag_nat_info", 1.0, labels
        yield "diag_nat_udp_blocked", _bool(facts.flag("nat.udp_blocked")), site
        yield "diag_nat_cgnat", _bool(facts.flag("nat.cgnat")), site
        yield "diag_nat_double", _bool(facts.flag("nat.double_nat")), site
        lifetime = facts.num("nat.mapping_lifetime_s")
        yield "diag_nat_mapping_lifetime_seconds", lifetime, site
        stun = self.run.check("stun")
        if stun is not None:
            yield "diag_stun_rtt_seconds", _scaled(_metric(stun.metrics, "rtt_ms"), 1e-3), site
        mappings = facts.value("upnp.mappings")
        if isinstance(mappings, list):
            yield "diag_upnp_mappings", float(len(mappings)), site

    def _host(self, facts: Facts) -> Iterator[tuple[str, float | None, dict[str, str]]]:
        site = {"site": self.run.site}
        iface = facts.text("host.default_interface")
        snap = facts.value("host.interface", iface) if iface else None
        if not isinstance(snap, dict):
            return
        for direction in ("in", "out"):
            d = {**site, "direction": direction}
            yield "diag_host_interface_errors_total", as_num(snap.get(f"errors_{direction}")), d
            yield "diag_host_interface_drops_total", as_num(snap.get(f"drops_{direction}")), d
        speed = _scaled(as_num(snap.get("speed_mbps")), 1e6 / 8)
        yield "diag_host_interface_speed_bytes_per_second", speed, site
        yield "diag_host_interface_mtu_bytes", as_num(snap.get("mtu")), site

    def _plugins(self) -> Iterator[tuple[str, float | None, dict[str, str]]]:
        """Third-party checks' metrics, one series each, when their names make a metric name."""
        site = {"site": self.run.site}
        for r in self.run.checks:
            check = r.check_id.replace("-", "_")
            if r.check_id in BUILTIN_CHECKS or not _NAME.fullmatch(check):
                continue
            for key, m in r.metrics.items():
                base = UNIT_BASE.get(m.unit)
                value = as_num(m.value)
                if base is None or value is None or not _NAME.fullmatch(key):
                    continue  # an unknown unit or a name with spaces: no honest series name
                suffix, factor = base
                name = f"{PLUGIN_PREFIX}{check}_{key}" + (f"_{suffix}" if suffix else "")
                if name.endswith("_total") or name in SERIES:
                    continue  # would pose as a counter or collide with a documented family
                yield name, value * factor, site


def _family(name: str) -> Metric:
    s = SERIES.get(name)
    if s is None:
        return GaugeMetricFamily(name, "A third-party check's measurement", labels=["site"])
    if s.kind == "counter":
        # No created timestamp: a `_created` series would change with every run.
        return CounterMetricFamily(name.removesuffix("_total"), s.help, labels=list(s.labels))
    return GaugeMetricFamily(name, s.help, labels=list(s.labels))


def _metric(metrics: Mapping[str, object], key: str) -> float | None:
    m = metrics.get(key)
    return as_num(getattr(m, "value", None))


def _nums(values: Iterable[object]) -> list[float]:
    return [n for n in (as_num(v) for v in values) if n is not None]


def registry_for(
    run: Run,
    runs_total: int | None = None,
    *,
    site: Site | None = None,
    offline_since: Mapping[str, dt.datetime] | None = None,
) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RunCollector(run, runs_total, site, offline_since))
    return reg


def write_textfile(
    run: Run,
    path: str,
    runs_total: int | None = None,
    *,
    site: Site | None = None,
    offline_since: Mapping[str, dt.datetime] | None = None,
) -> None:
    """For node_exporter's textfile collector; written to a temp file and renamed (atomic).

    The temp file has one fixed, hidden name beside the target (``.diag.prom.tmp``): the collector
    reads only ``*.prom``, and a run killed with -9 mid-write leaves at most that one file, which
    the next run overwrites. (``prometheus_client.write_to_textfile`` names it
    ``diag.prom.<pid>.<tid>``: every killed run left one more.) Those leftovers are swept here.
    """
    from prometheus_client import generate_latest

    data = generate_latest(registry_for(run, runs_total, site=site, offline_since=offline_since))
    target = Path(path)
    sweep_leftovers(target)
    write_atomic(target, data, tmp_name=f".{target.name}.tmp")


def sweep_leftovers(target: Path) -> list[Path]:
    """Removes ``<name>.<pid>.<tid>`` temp files that killed runs left beside ``target``."""
    pattern = re.compile(re.escape(target.name) + r"\.\d+\.\d+")
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        if pattern.fullmatch(p.name):
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def instance_of(site: str) -> str:
    """The Pushgateway ``instance`` of a site: its name as a slug (stable across site boxes)."""
    return re.sub(r"[^a-z0-9]+", "-", site.lower()).strip("-") or "site"


def push(
    run: Run,
    gateway: str,
    runs_total: int | None = None,
    timeout_s: float = 10.0,
    *,
    site: Site | None = None,
    offline_since: Mapping[str, dt.datetime] | None = None,
) -> None:
    """Replaces this site's group on the Pushgateway: job ``diag``, grouping key instance + site.

    ``instance`` is the site's slug, so a Prometheus scraping the Pushgateway with
    ``honor_labels: true`` keeps one instance per site instead of the Pushgateway's address.
    """
    from prometheus_client import push_to_gateway

    push_to_gateway(
        gateway,
        job="diag",
        registry=registry_for(run, runs_total, site=site, offline_since=offline_since),
        grouping_key={"instance": instance_of(run.site), "site": run.site},
        timeout=timeout_s,
    )
