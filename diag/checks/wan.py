"""Internet path: the gateway and beyond, loss/RTT/jitter, captive portal, public address vs DDNS.

All probes run at once, each bounded by its own short timeout, so a dead link costs ~1.5 s:
- the gateway (``network.gateway`` or this namespace's default route): ICMP echo (unprivileged
  ping socket or raw), else a TCP connect to its port 80 (an RST proves it is there too);
- the platform: a series of UDP hellos (one nonce each) gives loss, RTT and jitter, and the
  public address the platform saw; without a hello server, ICMP echo to the first P2P server;
- other internet hosts of the profile: a STUN binding, TCP connects to the TCP servers;
- DNS: the site resolver and an independent resolver asked for a profile name, so "only DNS
  passes" (a walled garden of a used-up data plan) can be told from a dead link;
- the captive-portal probe URL, fetched without following redirects: a redirect or other content
  than ``captive_probe_expect`` (or 204) means a portal is in the way;
- DDNS: every IP-added device's ``public_host`` resolved through the site resolver and the
  independent one, compared with the public address.
Names are resolved through the site resolver only (dnspython), never the system's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from diag.checks.base import Check, Context
from diag.i18n import Message, msg
from diag.model import Device, Fact, JSONValue, Metric, Outcome, Site, Status
from diag.net.addr import is_ip, join_host_port, parse_resolver, split_host_port
from diag.net.answer import Answer, Series
from diag.net.backend import Backend
from diag.net.http import CaFileError, client, read_capped
from diag.net.icmp import icmp_ping, jitter_ms
from diag.net.resolve import ResolveError, resolve, site_resolver, system_resolver
from diag.net.route import default_gateway
from diag.net.tcp import tcp_connect
from diag.net.udp import udp_series

T = TypeVar("T")

# Every single probe waits at most this long, s: an internet host answers in < 0.5 s even over
# a loaded LTE link; a dead link must not cost more than this (all probes run at once).
PROBE_TIMEOUT_S = 1.2
# Gateway: a few echos, 50 ms apart (a LAN answers in < 5 ms; 3 tolerate one lost echo).
GATEWAY_PINGS = 3
# Platform series: 20 hellos 10 ms apart = 0.2 s of sending (100 pps of ~30-byte datagrams, no
# load on any link); 5% loss resolution (1% with --deep's 100).
SERIES_COUNT = 20
DEEP_SERIES_COUNT = 100
SERIES_INTERVAL_S = 0.01
# The captive probe is one small HTTP exchange; a portal answers at LAN/operator speed.
HTTP_TIMEOUT_S = 2.0
# The captive-portal judge reads at most this much of the probe page, bytes: enough for the
# expected text or a portal's meta refresh.
CAPTIVE_BODY_BYTES = 4096
# A resolver answers in tens of ms; DNS problems themselves are the dns check's job.
DNS_TIMEOUT_S = 1.5


@dataclass(frozen=True)
class Captive:
    """What the captive-portal probe saw: ``captive`` None when nothing answered."""

    captive: bool | None
    redirect: str | None = None
    status: int | None = None
    error: str | None = None


def judge_captive(status: int, location: str | None, body: bytes, expect: str | None) -> Captive:
    """A captive portal or walled garden from one HTTP answer (pure).

    204 or the expected content: the internet is there. A redirect, or any other content (a
    portal that answers 200 with its own page): something is in the way.
    """
    if 300 <= status < 400:
        return Captive(True, location or "", status)
    if status == 204:
        return Captive(False, status=status)
    if status == 200 and expect is not None and body.strip() == expect.strip().encode():
        return Captive(False, status=status)
    if status == 200 and expect is None and not body.strip():
        return Captive(False, status=status)
    return Captive(True, status=status)


async def fetch_captive(site: Site, url: str, net: Backend | None = None) -> Captive:
    """GET the probe URL (host resolved by the site resolver), never following redirects."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        addrs = await resolve(host, site_resolver(site), DNS_TIMEOUT_S, net)
    except ResolveError as exc:
        return Captive(None, error=f"dns: {exc.reason}")
    netloc = join_host_port(addrs[0], parts.port) if parts.port else addrs[0]
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    ext = {"sni_hostname": host} if parts.scheme == "https" else {}
    try:
        # Streamed, and only the first CAPTIVE_BODY_BYTES read: a captive portal is hostile by
        # definition, and an endless page never hits the per-read timeout.
        async with client(timeout=HTTP_TIMEOUT_S, ca_file=site.profile.ca_file) as http:
            r = await read_capped(
                http,
                "GET",
                target,
                CAPTIVE_BODY_BYTES,
                decoded=True,
                headers={"Host": parts.netloc.rpartition("@")[2]},
                extensions=ext,
            )
    except httpx.HTTPError as exc:
        return Captive(None, error=type(exc).__name__)
    except (CaFileError, OSError, ssl.SSLError):
        # The profile's ca_file is missing or not PEM: a local problem that must not take the
        # gateway, loss and address facts down with it.
        return Captive(None, error="ca-file")
    return judge_captive(
        r.status_code, r.headers.get("location"), r.content, site.profile.captive_probe_expect
    )


def ddns_devices(site: Site) -> list[Device]:
    """Devices the app dials by address or name from outside (pure)."""
    return [d for d in site.devices if d.added_via == "ip" and d.public_host]


def public_ip_of(address: str) -> str:
    """``ip:port`` / ``[v6]:port`` -> ip."""
    try:
        return split_host_port(address)[0]
    except ValueError:
        return address


async def _quiet(aw: Awaitable[T]) -> T | BaseException:
    try:
        return await aw
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return exc


class WanCheck(Check):
    id = "wan"
    title = msg("Internet path")
    # No dependency: it runs from the start, beside stun and ports (its series sends to the
    # platform and the first STUN address only, which the stun check contacts itself). The ICMP
    # errors its hellos draw from a refused port are why ``locate`` takes the plain probe's
    # refusal into account. Bandwidth waits for it, so the link is quiet while it measures.
    timeout_s = 8.0

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        prof = site.profile
        resolver = site_resolver(site)
        net = ctx.world.net
        clock = ctx.world.monotonic
        facts: list[Fact] = []
        gateway = site.network.gateway or default_gateway(net)
        count = DEEP_SERIES_COUNT if ctx.deep else SERIES_COUNT
        root = ctx.world.is_root()

        # What needs no resolved profile host starts at once: the gateway, DNS, the captive
        # probe (it resolves its own name), DDNS; a dead resolver then costs its timeout once.
        tasks: dict[str, asyncio.Future[Any]] = {}

        def start(key: str, aw: Awaitable[Any]) -> None:
            tasks[key] = asyncio.ensure_future(_quiet(aw))

        if gateway:
            start("gateway", self._gateway(gateway, root, net, clock))
        hello = next(
            (s for s in prof.p2p_servers if s.protocol == "udp" and s.probe == "hello"), None
        )
        tcp_servers = [s for s in prof.p2p_servers if s.protocol in ("tcp", "https", "http")]
        hosts = sorted({s.host for s in prof.p2p_servers} | {s.host for s in prof.stun_servers})
        name = next(iter(prof.dns_names), None) or next((h for h in hosts if not is_ip(h)), None)
        dns_specs = {"site": resolver}
        if prof.independent_resolvers:
            dns_specs["independent"] = prof.independent_resolvers[0]
        if name:
            for label, spec in dns_specs.items():
                start(f"dns-{label}", resolve(name, spec, DNS_TIMEOUT_S, net))
        if prof.captive_probe_url:
            start("captive", fetch_captive(site, prof.captive_probe_url, net))
        ddns = ddns_devices(site)
        for d in ddns:
            for label, spec in dns_specs.items():
                start(
                    f"ddns-{label}-{d.name}",
                    resolve(d.public_host or "", spec, DNS_TIMEOUT_S, net),
                )

        try:
            # Hosts of the profile, resolved once through the site resolver.
            got = await asyncio.gather(
                *(_quiet(resolve(h, resolver, DNS_TIMEOUT_S, net)) for h in hosts)
            )
            addr = {h: r[0] for h, r in zip(hosts, got, strict=True) if isinstance(r, list) and r}
            ctx.progress(0.2, msg("probing the gateway and the internet"))
            series_names: dict[str, str] = {}
            probe_addr = next((addr[x.host] for x in prof.p2p_servers if x.host in addr), None)
            if hello is not None and hello.host in addr:
                start(
                    "series",
                    udp_series(
                        addr[hello.host],
                        hello.port,
                        "hello",
                        count,
                        SERIES_INTERVAL_S,
                        PROBE_TIMEOUT_S,
                        clock,
                    ),
                )
                series_names["series"] = f"{hello.host}:{hello.port}/udp hello"
            elif probe_addr is not None:
                start(
                    "series",
                    icmp_ping(probe_addr, count, SERIES_INTERVAL_S, PROBE_TIMEOUT_S, root, net),
                )
                host = next(x.host for x in prof.p2p_servers if addr.get(x.host) == probe_addr)
                series_names["series"] = f"{host} icmp"
            for st in prof.stun_servers[:1]:
                if st.host in addr:
                    # A second series to another internet host: when the platform's port is
                    # blocked its series measures the block, not the link.
                    start(
                        "stun",
                        udp_series(
                            addr[st.host],
                            st.port,
                            "stun",
                            count,
                            SERIES_INTERVAL_S,
                            PROBE_TIMEOUT_S,
                            clock,
                        ),
                    )
                    series_names["stun"] = f"{st.host}:{st.port}/udp stun"
            for i, s in enumerate(tcp_servers):
                if s.host in addr:
                    start(f"tcp{i}", tcp_connect(addr[s.host], s.port, PROBE_TIMEOUT_S, clock))
            await asyncio.gather(*tasks.values())
        finally:
            # Cancelled (the runner's deadline): no probe outlives the check.
            for f in tasks.values():
                f.cancel()
        res: dict[str, Any] = {k: f.result() for k, f in tasks.items()}
        ctx.progress(0.9)

        metrics: dict[str, Metric] = {}
        # Gateway.
        gw_ok: bool | None = None
        if gateway:
            g = res["gateway"]
            gw_ok = isinstance(g, tuple) and g[0]
            facts.append(Fact("wan.gateway", gateway))
            facts.append(Fact("wan.gateway_reachable", bool(gw_ok)))
            if isinstance(g, tuple) and g[1] is not None:
                facts.append(Fact("wan.gateway_rtt_ms", g[1], "ms"))
                metrics["gateway_rtt"] = Metric(g[1], "ms")

        # Loss, RTT, jitter: the platform series when the platform answered at all, else the
        # STUN series; the public address from the platform's WELCOME, else from STUN.
        public: str | None = None
        public_source: str | None = None
        reached: list[str] = []
        runs: dict[str, Series] = {
            k: v for k in ("series", "stun") if isinstance(v := res.get(k), Series) and v.available
        }
        for k, label in (("series", "platform"), ("stun", "stun")):
            if k in runs and runs[k].answered:
                reached.append(label)
                addrs = [i for i in runs[k].infos if i]
                if addrs and public is None:
                    public, public_source = public_ip_of(addrs[-1]), label
        if public_source == "platform":
            public_source = "hello"
        for i, _s in enumerate(tcp_servers):
            a = res.get(f"tcp{i}")
            if isinstance(a, Answer) and a.ok:
                reached.append("tcp")

        # Captive portal.
        cap = res.get("captive")
        captive: bool | None = None
        if isinstance(cap, Captive):
            if cap.captive is None:
                facts.append(Fact("wan.captive_probe_error", cap.error or "error"))
            else:
                captive = cap.captive
                facts.append(Fact("wan.captive_portal", cap.captive))
                if cap.redirect is not None:
                    facts.append(Fact("wan.http_redirect", cap.redirect[:300]))
                if cap.captive is False:
                    reached.append("http")

        # Loss, RTT, jitter from the series that got answers. When both UDP series got none
        # while TCP or HTTP got through, UDP is blocked: that is no loss figure for the link, so
        # ICMP to the platform is tried instead, and without it no loss is reported.
        chosen = next((k for k in runs if runs[k].answered), None)
        if chosen is None and reached and probe_addr is not None:
            icmp = await icmp_ping(probe_addr, count, SERIES_INTERVAL_S, PROBE_TIMEOUT_S, root, net)
            if icmp.answered:
                runs["icmp"] = icmp
                series_names["icmp"] = f"{probe_addr} icmp"
                chosen = "icmp"
            else:
                facts.append(Fact("wan.series_blocked", True))
        elif chosen is None:
            chosen = next(iter(runs), None)
        series = runs.get(chosen) if chosen else None
        if series is not None and chosen is not None:
            facts.append(Fact("wan.series_target", series_names[chosen]))
            loss = series.loss_pct
            facts.append(Fact("wan.loss_pct", loss, "%"))
            # How many probes the rate comes from: the diagnosis weighs it by its interval.
            facts.append(Fact("wan.loss_probes", len(series.rtts)))
            metrics["loss"] = Metric(loss, "%")
            ok = series.answered
            if ok:
                rtt = round(statistics.median(ok), 3)
                facts.append(Fact("wan.rtt_ms", rtt, "ms"))
                metrics["rtt"] = Metric(rtt, "ms")
                jit = jitter_ms(ok)
                if jit is not None:
                    facts.append(Fact("wan.jitter_ms", jit, "ms"))
                    metrics["jitter"] = Metric(jit, "ms")

        # DNS: does any resolver beyond the gateway answer?
        dns_passes = False
        for label, spec in dns_specs.items():
            r = res.get(f"dns-{label}")
            if r is None:
                continue
            answered = isinstance(r, list) or (
                isinstance(r, ResolveError) and r.reason in ("NXDOMAIN", "NODATA")
            )
            facts.append(Fact(f"wan.dns_{label}_answers", answered))
            if answered and resolver_beyond_gateway(spec, gateway, net):
                dns_passes = True

        internet = bool(reached)
        facts.append(Fact("wan.internet_reachable", internet))
        reached_list: list[JSONValue] = [*sorted(set(reached))]
        facts.append(Fact("wan.reached", reached_list))
        facts.append(Fact("wan.only_dns_passes", dns_passes and not internet))
        if public is not None:
            facts.append(Fact("wan.public_ip", public))
            facts.append(Fact("wan.public_ip_source", public_source))

        # DDNS names of IP-added devices.
        mismatched: list[str] = []
        for d in ddns:
            site_ans = res.get(f"ddns-site-{d.name}")
            ind_ans = res.get(f"ddns-independent-{d.name}")
            site_addrs = site_ans if isinstance(site_ans, list) else None
            ind_addrs = ind_ans if isinstance(ind_ans, list) else None
            if site_addrs is not None:
                facts.append(Fact("ddns.resolved", site_addrs, target=d.name))
            elif isinstance(site_ans, ResolveError):
                facts.append(Fact("ddns.error", site_ans.reason, target=d.name))
            if ind_addrs is not None:
                facts.append(Fact("ddns.resolved_independent", ind_addrs, target=d.name))
            known = set(site_addrs or ()) | set(ind_addrs or ())
            if public is not None and known:
                match = public in known
                facts.append(Fact("ddns.matches_public", match, target=d.name))
                if not match:
                    mismatched.append(d.name)

        status, summary = _verdict(
            site, gw_ok, internet, captive, dns_passes, series, mismatched, public
        )
        return Outcome(status, summary, metrics, tuple(facts))

    async def _gateway(
        self, gateway: str, root: bool, net: Backend, clock: Callable[[], float]
    ) -> tuple[bool, float | None]:
        ping = await icmp_ping(gateway, GATEWAY_PINGS, 0.05, PROBE_TIMEOUT_S, root, net)
        if ping.available:
            ok = ping.answered
            return bool(ok), (round(statistics.median(ok), 3) if ok else None)
        # No ICMP socket allowed: a TCP handshake or an RST from port 80 proves the router is up.
        a = await tcp_connect(gateway, 80, PROBE_TIMEOUT_S, clock)
        if a.status in ("open", "refused"):
            return True, a.rtt_ms
        return False, None


def resolver_beyond_gateway(spec: str, gateway: str | None, net: Backend | None = None) -> bool:
    """Whether an answer from this resolver proves DNS gets past the gateway (pure but for
    reading the OS's resolver configuration for ``system``).

    A resolver on the gateway, or the laptop's own stub (``system`` pointing at 127.0.0.53 and
    the like), answers from its cache, or NXDOMAIN, even with the link down.
    """
    ip = probe_host(spec, net)
    if not ip or ip == gateway:
        return False
    if spec == "system":
        try:
            return not ipaddress.ip_address(ip).is_loopback
        except ValueError:
            return False
    return True


def probe_host(spec: str, net: Backend | None = None) -> str:
    """The IP of a resolver spec (``ip`` / ``ip:port`` / ``system``)."""
    if spec == "system":
        spec = system_resolver(net) or ""
    try:
        return parse_resolver(spec)[0]
    except ValueError:
        return spec


def _verdict(
    site: Site,
    gw_ok: bool | None,
    internet: bool,
    captive: bool | None,
    dns_passes: bool,
    series: object,
    mismatched: list[str],
    public: str | None,
) -> tuple[Status, Message]:
    th = site.thresholds
    if gw_ok is False:
        return "fail", msg("the gateway does not answer")
    if captive:
        return "fail", msg("a captive portal or walled garden intercepts web traffic")
    if not internet:
        if dns_passes:
            return "fail", msg("only DNS passes: the internet is blocked beyond it")
        return "fail", msg("no internet host answers beyond the gateway")
    if isinstance(series, Series) and series.rtts:
        loss = series.loss_pct or 0.0
        ok = series.answered
        rtt = statistics.median(ok) if ok else None
        jit = jitter_ms(ok)
        if (
            loss > th.loss_pct
            or (rtt is not None and rtt > th.rtt_ms)
            or (jit is not None and jit > th.jitter_ms)
        ):
            return "warn", msg(
                "internet path degraded: loss {loss}%, RTT {rtt} ms, jitter {jitter} ms",
                loss=loss,
                rtt=round(rtt, 1) if rtt is not None else "-",
                jitter=round(jit, 1) if jit is not None else "-",
            )
    if mismatched:
        return "warn", msg(
            "DDNS name does not point at the public address {ip}: {devices}",
            ip=public or "?",
            devices=", ".join(mismatched),
        )
    if public is None:
        return "ok", msg("internet reachable; public address unknown (no UDP answer)")
    return "ok", msg("internet reachable, public address {ip}", ip=public)
