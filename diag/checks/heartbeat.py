"""Device heartbeat: is each camera/recorder there (ARP, ICMP, TCP), does it take our credentials,
are its own network settings sane, does the platform see it, and what else is on the LAN.

Per device, concurrently (at most ``DEVICE_CONCURRENCY`` at a time): who answers ARP for its
address (two MACs: an IP conflict), ICMP loss/RTT/jitter, its TCP service ports, HTTP Digest login
with the site's credentials (one try only: devices lock out after five failures), its network
settings (gateway, DNS, P2P switch, clock) over its API (``diag.devices``), whether the NTP
servers it names answer an SNTP request, and the platform status API's view of its heartbeat.
One ARP sweep of the laptop's subnet lists hosts the site config does not know and finds a device
whose MAC (the site file's, or learnt by an earlier run: ``diag.devices.learnt``) moved.
With root the devices are asked first (up to eight times), and the echo requests then go straight
to the MAC that answered, so a lossy link shows its own loss, not the kernel's ARP giving up.

Without root, ARP and the sweep are skipped (a fact says so), ICMP uses unprivileged sockets if the
system allows them, TCP and HTTP run as usual. The password is resolved only to hand it to httpx;
it never goes into a fact, a metric, a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from diag.checks.base import NEED_ROOT, Check, Context
from diag.devices import DeviceReport, Target, isapi, learnt, read_device
from diag.devices import http as devhttp
from diag.i18n import N_, Message, msg
from diag.model import Device, Fact, JSONValue, Metric, Outcome, Site
from diag.net import sntp
from diag.net.addr import is_ip, join_host_port
from diag.net.arp import (
    DEVICE_ARP_PASSES,
    DEVICE_ARP_WAIT_S,
    ArpAnswer,
    ArpScan,
    aggregate_answers,
    arp_scan,
)
from diag.net.backend import Backend
from diag.net.http import CaFileError
from diag.net.http import client as http_client
from diag.net.icmp import L2Path, PingStats, icmp_available, ping
from diag.net.ifaces import LocalInterface, local_interfaces, pick_interface, sweep_targets
from diag.net.resolve import Resolver
from diag.net.route import default_route
from diag.net.sntp import SntpAnswer, sntp_query
from diag.net.target import Bounded, NotingTransport, bounded
from diag.net.tcp import tcp_connect

# At most this many devices are probed at once. Each device sees only its own few requests either
# way; the bound keeps the laptop's burst (32 x 50 echoes/s, 32 logins) polite on a big site's
# LAN. Measured on the 50-device lab: 16 -> 3.2 s, 32 -> 2.7 s, 64 -> 2.5 s for the whole check.
DEVICE_CONCURRENCY = 32
# ICMP: quick runs send 20 echoes 20 ms apart (0.4 s): enough to see a lossy radio link (20 %
# loss leaves all 20 answered with probability 1 %), short enough for a 3 s run. Deep runs send
# 100 echoes 50 ms apart (5 s) for a tighter loss figure.
PING_QUICK = (20, 0.020)
PING_DEEP = (100, 0.050)
# After the last echo, answers on a LAN come within milliseconds; 0.5 s also covers a radio bridge
# retransmitting (Wi-Fi retries take tens of ms) without stretching the run.
PING_WAIT_S = 0.5
# A TCP handshake on a LAN takes ~1 ms. 2.5 s lets a lossy radio link retry: the kernel's ARP
# (one try a second) and the SYN (retransmitted after 1 s) each get a second chance. A device
# that is off costs these 2.5 s once, in parallel with everything else.
TCP_TIMEOUT_S = 2.5
# HTTP on a camera: its web server is slow (embedded CPU, digest computed in CGI), 3 s per request.
HTTP_TIMEOUT_S = devhttp.HTTP_TIMEOUT_S
# The platform's status API is on the internet: 3 s covers a slow LTE uplink's RTT several times.
API_TIMEOUT_S = 3.0
# The whole of one device's API read (login plus its settings, every adapter ``auto`` tries), s.
# On a LAN it takes 0.1-1 s (a slow camera CGI: ~1 s per request); 8 s is several slow requests.
# httpx's timeouts are per read: a device trickling its answer at 1 byte/s never trips them, so
# this bound is what ends it, as that device's error alone ("device.auth_error" = timeout).
DEVICE_API_BOUND_S = 8.0
# One device's whole probe (LAN + platform), s: everything above plus pings and TCP; a device
# that still is not done when the check nears its deadline is that device's error, the others'
# results are kept.
DEVICE_BOUND_S = 15.0
# A DNS server the device names must answer within 1.5 s (resolvers retry after 1-2 s).
DNS_TIMEOUT_S = 1.5
DNS_PORT = 53
# An NTP server a device names must answer an SNTP request within 1.5 s, three tries 0.5 s apart:
# a LAN or ISP server answers in milliseconds, the tries cover a lossy link.
NTP_TIMEOUT_S = 1.5
NTP_TRIES = 3
NTP_PORT = sntp.NTP_PORT
# Replies from devices and the platform are small XML/JSON documents; anything bigger is hostile.
MAX_BODY = devhttp.MAX_BODY
IDENTITY = devhttp.IDENTITY
HTTP_PORT_NAMES = ("http", "web", "isapi", "onvif")
# The device-API helpers live in diag.devices; these names stay importable from here.
parse_xml = devhttp.parse_xml
xml_find = devhttp.xml_find
get_capped = devhttp.get_capped
device_client = devhttp.device_client
Reply = devhttp.Reply
parse_device_info = isapi.parse_device_info
parse_network = isapi.parse_network


def parse_p2p(body: bytes | str) -> bool | None:
    """Whether the device's P2P service is switched on (None: the reply does not say)."""
    parsed = isapi.parse_p2p(body)
    enabled = parsed.get("enabled") if parsed is not None else None
    return enabled if isinstance(enabled, bool) else None


def parse_platform_status(body: bytes | str) -> tuple[bool, float | None] | None:
    """(online, seconds since the last heartbeat) from the status API's JSON; None if unusable."""
    try:
        data = json.loads(body[:MAX_BODY])
    except (ValueError, TypeError, RecursionError):
        # RecursionError: "[[[[…" a few thousand deep fits in MAX_BODY and exhausts the stack.
        return None
    if not isinstance(data, dict) or not isinstance(data.get("online"), bool):
        return None
    ago = data.get("last_heartbeat_s_ago")
    if isinstance(ago, bool) or not isinstance(ago, int | float) or ago < 0:
        ago = None
    return data["online"], (round(float(ago), 3) if ago is not None else None)


def parse_address_changes(body: bytes | str) -> int | None:
    """How often the platform saw the device's public address change (``address_changes``).

    A NAT that forgets the device's UDP mapping between heartbeats gives it a new public port each
    time: the platform counts those changes, evidence of mapping expiry without a deep run.
    """
    try:
        data = json.loads(body[:MAX_BODY])
    except (ValueError, TypeError, RecursionError):
        # RecursionError: "[[[[…" a few thousand deep fits in MAX_BODY and exhausts the stack.
        return None
    n = data.get("address_changes") if isinstance(data, dict) else None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return None
    return n


def gateway_matches(settings: Mapping[str, Any], site_gateway: str | None) -> bool:
    """The device's gateway is the site's and lies in the device's own subnet (pure)."""
    gw = settings.get("gateway")
    if not gw or gw in ("0.0.0.0",):
        return False
    if site_gateway is not None and gw != site_gateway:
        return False
    ip, mask = settings.get("ip"), settings.get("mask")
    if ip and mask:
        try:
            net = ipaddress.IPv4Interface(f"{ip}/{mask}").network
            if ipaddress.IPv4Address(gw) not in net:
                return False
        except ValueError:
            return False
    return True


def http_port(device: Device) -> int | None:
    for p in device.ports:
        if p.protocol == "tcp" and p.name.lower() in HTTP_PORT_NAMES:
            return p.port
    return next((p.port for p in device.ports if p.protocol == "tcp" and p.port == 80), None)


# --- probes -----------------------------------------------------------------------------------


@dataclass
class Env:
    """What the check found out about the laptop before probing (per run)."""

    root: bool
    iface: LocalInterface | None
    site_gateway: str | None
    deep: bool
    arp: dict[str, list[str]] | None = None
    # The OS backend pings go through (the context's World.net).
    net: Backend | None = None
    # False when the ARP answers come from the OS (one MAC per address): a conflict is unseen.
    arp_conflicts: bool = True
    arp_ready: asyncio.Event = field(default_factory=asyncio.Event)
    # One client for every device: building one costs ~50 ms of CPU (its TLS context loads the
    # system CA store), which for 50 devices was most of the check's time.
    http: httpx.AsyncClient | None = None
    dns_cache: dict[str, asyncio.Task[bool]] = field(default_factory=dict)
    # One SNTP exchange per NTP server, however many devices name it.
    ntp_cache: dict[str, asyncio.Future[SntpAnswer]] = field(default_factory=dict)
    # Seconds left before the check's deadline (the context's clock); caps the per-target bounds.
    remaining: Callable[[], float] = field(default=lambda: math.inf)

    def bound(self, limit_s: float) -> float:
        """A per-target time bound: ``limit_s``, or less when the check's deadline is nearer (a
        second is kept to gather and summarize what the other targets found)."""
        return max(0.1, min(limit_s, self.remaining() - 1.0))


async def tcp_open(ip: str, port: int) -> bool:
    return (await tcp_connect(ip, port, TCP_TIMEOUT_S)).ok


async def dns_answers(server: str, name: str) -> bool:
    """Whether ``server`` answers a DNS query at all (any rcode but REFUSED/SERVFAIL)."""
    if not is_ip(server):
        return False
    resolver = Resolver(join_host_port(server, DNS_PORT), (DNS_TIMEOUT_S,))
    ans = await resolver.query(name, "A" if name != "." else "NS")
    return ans.rcode in ("NOERROR", "NXDOMAIN")


def credential_facts(device: Device) -> list[Fact]:
    """What keeps a login from being tried, known without the network: no credentials in the
    site file, or credentials that cannot be read (a per-device finding, the reason a fixed word:
    never a byte of the secret nor an error about its bytes). Empty: a login can be tried."""
    name = device.name
    creds = device.credentials
    if creds is None:
        return [Fact("device.auth", "no-credentials", target=name)]
    secret = creds.password.read()
    if secret.error is not None:
        return [
            Fact("device.auth", "no-credentials", target=name),
            Fact("device.credentials_error", secret.error, target=name),
        ]
    return []


async def http_probe(device: Device, port: int, env: Env, site: Site) -> list[Fact]:
    """The device's own API (``device.api``, default ``auto``): one login, then its settings."""
    name = device.name
    creds = device.credentials
    password = creds.password.resolve() if creds is not None else None
    if creds is None or password is None:
        return credential_facts(device) or [Fact("device.auth", "no-credentials", target=name)]
    async with contextlib.AsyncExitStack() as stack:
        client = env.http
        if client is None:
            client = await stack.enter_async_context(device_client())
        target = Target(name, device.address or "", port, creds.username, password, client)
        del password
        read: Bounded[DeviceReport] = await bounded(
            name, read_device(device.api, target), env.bound(DEVICE_API_BOUND_S)
        )
    if read.value is None:
        # Slow (trickling) or a library choking on its answer: this device's login error only.
        return [
            Fact("device.auth", "error", target=name),
            Fact("device.auth_error", read.reason() or "crash", target=name),
        ]
    report = read.value
    facts = report.facts(name)
    if report.auth == "error":
        facts.append(Fact("device.auth_error", _auth_reason(read, report), target=name))
    if report.auth != "ok":
        return facts
    facts.extend(await ntp_facts(name, report.clock, env, site))
    net = report.network
    p2p = report.p2p
    if net is None and p2p is None:
        return facts
    raw_dns = (net or {}).get("dns")
    dns_list = [d for d in raw_dns if isinstance(d, str)] if isinstance(raw_dns, list) else []
    settings: dict[str, JSONValue] = {
        "gateway": net.get("gateway") if net else None,
        "dns": list[JSONValue](dns_list),
        "p2p_enabled": p2p.get("enabled") if p2p else None,
    }
    facts.append(Fact("device.settings", settings, target=name))
    if net is not None:
        gw_ok = gateway_matches(net, env.site_gateway)
        qname = site.profile.dns_names[0] if site.profile.dns_names else "."
        dns_ok: bool | None = False
        asked = [srv for srv in dns_list if may_query(srv, site, env)]
        for server in asked:
            if server not in env.dns_cache:
                env.dns_cache[server] = asyncio.ensure_future(dns_answers(server, qname))
            if await env.dns_cache[server]:
                dns_ok = True
                break
        if not asked and dns_list:
            # Only resolvers the site names or that sit on the site's own subnets are asked (SPEC
            # section 7: the tool probes what the config names and the local subnets); a device
            # pointing elsewhere is judged by its gateway alone and the servers are reported.
            dns_ok = None
            facts.append(Fact("device.dns_not_asked", list[JSONValue](dns_list), target=name))
        facts.append(Fact("device.gateway_ok", gw_ok and dns_ok is not False, target=name))
    return facts


async def ntp_facts(
    name: str, clock: Mapping[str, JSONValue] | None, env: Env, site: Site
) -> list[Fact]:
    """Whether the NTP servers a device sets its clock from answer (SNTP from the laptop).

    Only servers the site may probe are asked (``may_query``: named by the site or on its
    subnets, SPEC section 7), by IP; a name or an outside address is reported as not asked.
    ``device.ntp_reachable``: some asked server gave a synchronized time (a kiss-o'-death or an
    unsynchronized server is no time source).
    """
    if not clock or clock.get("ntp") is not True:
        return []
    raw = clock.get("ntp_servers")
    servers = (
        list(dict.fromkeys(s for s in raw if isinstance(s, str))) if isinstance(raw, list) else []
    )
    asked = [s for s in servers if is_ip(s) and may_query(s, site, env)]
    out: list[Fact] = []
    not_asked = [s for s in servers if s not in asked]
    if not_asked:
        out.append(Fact("device.ntp_not_asked", list[JSONValue](not_asked), target=name))
    if not asked:
        return out
    for server in asked:
        if server not in env.ntp_cache:
            env.ntp_cache[server] = asyncio.ensure_future(
                sntp_query(server, NTP_PORT, NTP_TIMEOUT_S, NTP_TRIES)
            )
    answers = [await env.ntp_cache[s] for s in asked]
    probes: list[JSONValue] = [
        {
            "server": s,
            "status": a.status,
            "offset_s": a.offset_s,
            "stratum": a.stratum,
            "rtt_ms": a.rtt_ms,
        }
        for s, a in zip(asked, answers, strict=True)
    ]
    out.append(Fact("device.ntp_probe", probes, target=name))
    out.append(Fact("device.ntp_reachable", any(a.ok for a in answers), target=name))
    return out


def _auth_reason(read: Bounded[DeviceReport], report: DeviceReport) -> str:
    """Why a login ended in "error", as a safe word (``diag.diagnosis.unmeasured``)."""
    noted = read.reason()
    if noted is not None:
        return noted
    if any(str(v).startswith("http-") for v in report.errors.values()):
        return "http-error"
    return "protocol"


def may_query(server: str, site: Site, env: Env) -> bool:
    """Whether a resolver a device reports may be asked: named by the site, or on its subnets."""
    from diag.config import parse_resolver

    named = {env.site_gateway, site.network.gateway}
    for spec in (site.network.site_resolver, *site.profile.independent_resolvers):
        with contextlib.suppress(ValueError):
            named.add(parse_resolver(spec)[0])
    if server in named:
        return True
    try:
        ip = ipaddress.ip_address(server)
    except ValueError:
        return False
    if env.iface is not None and env.iface.onlink(server) is not None:
        return True
    for subnet in site.network.subnets:
        with contextlib.suppress(ValueError):
            if ip in ipaddress.ip_network(subnet, strict=False):
                return True
    return False


async def platform_probe(client: httpx.AsyncClient, base: str, device: Device) -> list[Fact]:
    """The status API's view of the device's heartbeat (serial from the site config)."""
    name = device.name
    serial = device.serial or ""
    root = base.rstrip("/")
    # The profile may name the API's root or its versioned base; both mean the same endpoint.
    if not root.endswith("/api/v1"):
        root += "/api/v1"
    url = f"{root}/devices/{urllib.parse.quote(serial, safe='')}"
    try:
        r = await get_capped(client, url)
    except httpx.TimeoutException:
        return [Fact("device.platform_error", "timeout", target=name)]
    except httpx.ConnectError as exc:
        kind = (
            "tls" if "ssl" in str(exc).lower() or "certificate" in str(exc).lower() else "connect"
        )
        return [Fact("device.platform_error", kind, target=name)]
    except httpx.HTTPError:
        return [Fact("device.platform_error", "error", target=name)]
    if r.status_code == 404:
        # Never seen by the platform: offline, and no heartbeat to date.
        return [
            Fact("device.platform_online", False, target=name),
            Fact("device.platform_last_seen_s", None, "s", target=name),
        ]
    if r.status_code != 200:
        return [Fact("device.platform_error", f"http-{r.status_code}", target=name)]
    parsed = None if r.truncated else parse_platform_status(r.content)
    if parsed is None:
        return [Fact("device.platform_error", "bad-reply", target=name)]
    online, ago = parsed
    facts = [
        Fact("device.platform_online", online, target=name),
        Fact("device.platform_last_seen_s", ago, "s", target=name),
    ]
    changes = parse_address_changes(r.content)
    if changes is not None:
        facts.append(Fact("device.platform_address_changes", changes, target=name))
    return facts


async def lan_probe(device: Device, env: Env, site: Site) -> list[Fact]:
    """ARP (from the shared scan), ICMP, TCP ports and HTTP for one device with an address."""
    name, ip = device.name, device.address or ""
    facts: list[Fact] = []
    count, interval = PING_DEEP if env.deep else PING_QUICK

    async def icmp() -> PingStats | None:
        if _is_loopback(ip) or ":" in ip:
            # Loopback: the laptop itself answers, a ping would measure nothing about a device.
            # IPv6: no ICMPv6 prober here; TCP still tells whether the device answers.
            return None
        # With root, wait for our own ARP (~0.2 s) and send the echoes straight to the MAC.
        await env.arp_ready.wait()
        l2: L2Path | None = None
        known = (env.arp or {}).get(ip)
        src = env.iface.onlink(ip) if env.iface is not None else None
        if env.root and known and src is not None and env.iface is not None:
            l2 = L2Path(env.iface, str(src.ip), known[0])
        return await ping(ip, count, interval, PING_WAIT_S, env.root, l2, backend=env.net)

    ping_task = asyncio.ensure_future(icmp())
    tcp_ports = [p for p in device.ports if p.protocol == "tcp"]
    tcp_results = await asyncio.gather(*(tcp_open(ip, p.port) for p in tcp_ports))
    ports = {p.name: ok for p, ok in zip(tcp_ports, tcp_results, strict=True)}
    if ports:
        facts.append(Fact("device.ports", dict(ports), target=name))
    hport = http_port(device)
    missing = credential_facts(device) if hport is not None else []
    if missing:
        # Known without touching the network: say so even when the device is off.
        facts.extend(missing)
    elif hport is not None and ports.get(next(p.name for p in tcp_ports if p.port == hport)):
        facts.extend(await http_probe(device, hport, env, site))
    stats = await ping_task
    if stats is not None:
        facts.append(Fact("device.icmp_loss_pct", stats.loss_pct, "%", target=name))
        facts.append(Fact("device.icmp_probes", stats.sent, target=name))
        if stats.rtt_ms is not None:
            facts.append(Fact("device.rtt_ms", stats.rtt_ms, "ms", target=name))
        if stats.jitter_ms is not None:
            facts.append(Fact("device.jitter_ms", stats.jitter_ms, "ms", target=name))
    await env.arp_ready.wait()
    macs: list[str] | None = None
    if env.arp is not None and env.iface is not None and env.iface.onlink(ip):
        macs = env.arp.get(ip, [])
        facts.append(Fact("device.arp_macs", list(macs), target=name))
        if env.arp_conflicts:
            facts.append(Fact("device.ip_conflict", len(macs) > 1, target=name))
    reachable = bool(macs) or any(ports.values()) or bool(stats and stats.received)
    facts.append(Fact("device.reachable", reachable, target=name))
    return facts


# --- the check --------------------------------------------------------------------------------


class HeartbeatCheck(Check):
    id = "heartbeat"
    title: ClassVar[Message] = msg(N_("Device heartbeat"))
    needs = (NEED_ROOT,)
    root_optional = True
    # Quick: ~1.5 s on a LAN (ARP sweep of a /24 ~1 s, pings 0.4 s + wait, logins in parallel);
    # 20 s leaves room for deep pings (5 s) and slow device web servers.
    timeout_s = 20.0

    def targets(self, site: Site) -> tuple[str, ...]:
        api = bool(site.profile.status_api_url)
        return tuple(d.name for d in site.devices if d.address or (api and d.serial))

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        root = ctx.world.is_root()
        devices = [d for d in site.devices if d.name in ctx.targets]
        net = ctx.world.net
        default_gw = default_route(net).ipv4_gateway
        iface = pick_interface(site, local_interfaces(net))
        env = Env(
            net=net,
            root=root,
            iface=iface,
            site_gateway=site.network.gateway or default_gw,
            deep=ctx.deep,
            remaining=ctx.remaining,
        )
        facts: list[Fact] = []
        # The MACs earlier runs learnt for this site's devices (device-address-changed).
        store_path = learnt.state_path()
        store, note = await ctx.run_blocking(learnt.load, store_path)
        if note is not None:
            facts.append(Fact("lan.learnt_macs_error", note))
        was_learnt = store.get(site.name, {})
        if any(d.address and not _is_loopback(d.address) for d in devices):
            icmp = icmp_available(root, net)
            facts.append(Fact("lan.icmp", icmp or "unavailable"))

        # ARP: the configured devices in a short scan of their own (their MACs feed the ICMP
        # probes), the sweep of the subnet alongside it.
        dev_task: asyncio.Future[ArpScan] | None = None
        sweep_task: asyncio.Future[ArpScan] | None = None
        if iface is not None and not net.packet_sockets:
            # Windows and macOS: no raw Ethernet (also as Administrator / with sudo), so no sweep
            # and no conflict detection. Windows' own ARP (SendARP) still finds the configured
            # devices' MACs; it keeps one MAC per address, so no ip_conflict fact comes of it.
            facts.append(Fact("lan.arp_skipped", "no-packet-sockets"))
            env.arp_conflicts = False
            dev_ips = [d.address for d in devices if d.address and iface.onlink(d.address)]
            if dev_ips and net.arp_service:
                dev_task = asyncio.ensure_future(os_arp(net, iface, list(dict.fromkeys(dev_ips))))
        elif not root:
            facts.append(Fact("lan.arp_skipped", "needs-root"))
        elif iface is None:
            facts.append(Fact("lan.arp_skipped", "no-interface"))
        else:
            dev_ips = list(
                dict.fromkeys(d.address for d in devices if d.address and iface.onlink(d.address))
            )
            sweep, swept, offlink = sweep_targets(iface, site.network.subnets)
            sweep = [ip for ip in sweep if ip not in set(dev_ips)]
            facts.append(Fact("lan.swept", list[JSONValue](swept)))
            if offlink:
                facts.append(Fact("lan.not_swept", list[JSONValue](offlink)))
            deadline = ctx.world.monotonic() + max(0.1, ctx.remaining() - 1.0)
            dev_task = asyncio.ensure_future(
                ctx.run_blocking(
                    lambda: arp_scan(
                        iface,
                        dev_ips,
                        passes=DEVICE_ARP_PASSES,
                        min_passes=2,
                        wait_s=DEVICE_ARP_WAIT_S,
                        deadline=deadline,
                    )
                )
            )
            sweep_task = asyncio.ensure_future(
                ctx.run_blocking(lambda: arp_scan(iface, sweep, deadline=deadline))
            )
        if dev_task is None:
            env.arp_ready.set()
        else:

            def _arp_done(fut: asyncio.Future[ArpScan]) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    env.arp = fut.result().by_ip()
                env.arp_ready.set()

            dev_task.add_done_callback(_arp_done)

        sem = asyncio.Semaphore(DEVICE_CONCURRENCY)
        api_client: httpx.AsyncClient | None = None
        if site.profile.status_api_url:
            try:
                api_client = http_client(
                    timeout=API_TIMEOUT_S, ca_file=site.profile.ca_file, headers=IDENTITY
                )
            except CaFileError:
                # The CA bundle is unreadable: a local problem, not the platform's verdict.
                facts.extend(
                    Fact("device.platform_error", "ca-file", target=d.name)
                    for d in devices
                    if d.serial
                )
        done = 0

        async def one(d: Device) -> list[Fact]:
            nonlocal done
            async with sem:
                # Each part under its own bound: one device's exception or slowness is its own
                # error fact; its other part and the other devices' results are kept.
                bound = env.bound(DEVICE_BOUND_S)
                jobs: list[Any] = []
                if d.address:
                    jobs.append(bounded(d.name, lan_probe(d, env, site), bound))
                if api_client is not None and site.profile.status_api_url and d.serial:
                    url = site.profile.status_api_url
                    jobs.append(bounded(d.name, platform_probe(api_client, url, d), bound))
                parts: list[Bounded[list[Fact]]] = await asyncio.gather(*jobs)
            done += 1
            ctx.progress(done / max(1, len(devices)), msg(N_("probed {device}"), device=d.name))
            out: list[Fact] = []
            for i, part in enumerate(parts):
                if part.value is not None:
                    out.extend(part.value)
                elif d.address and i == 0:
                    out.extend(part.error_facts("device.error"))
                else:
                    out.extend(part.error_facts("device.platform_error"))
            return out

        # Notes why a device's request failed (timeout, connect...) for its error fact.
        env.http = device_client(NotingTransport())
        try:
            per_device = await asyncio.gather(*(one(d) for d in devices))
        finally:
            await env.http.aclose()
            if api_client is not None:
                await api_client.aclose()
        for fs in per_device:
            facts.extend(fs)

        arp_s: float | None = None
        found: dict[str, list[str]] = {}
        if dev_task is not None and sweep_task is not None:
            dev_scan, sweep_scan = await dev_task, await sweep_task
            arp_s = round(max(dev_scan.duration_s, sweep_scan.duration_s), 3)
            known = {d.address for d in site.devices if d.address}
            known |= {site.network.gateway, env.site_gateway} - {None}  # type: ignore[arg-type]
            known |= iface.addresses if iface else set()
            found = aggregate_answers([*dev_scan.answers, *sweep_scan.answers])
            unknown = [
                {"ip": ip, "mac": macs[0]}
                for ip, macs in sorted(found.items(), key=lambda kv: _ipkey(kv[0]))
                if ip not in known
            ]
            facts.append(Fact("lan.unknown_hosts", unknown))  # type: ignore[arg-type]
            facts.append(Fact("lan.hosts_found", len(found)))
            facts.extend(moved_devices(devices, found, was_learnt))
        seen = {m.lower() for macs in found.values() for m in macs}
        now = learnt.update(was_learnt, observed_macs(devices, facts), seen, ctx.world.now().date())
        if now != was_learnt:
            store[site.name] = now
            note = await ctx.run_blocking(learnt.save, store_path, store)
            if note is not None:
                facts.append(Fact("lan.learnt_macs_error", note))
        return summarize(devices, facts, arp_s, site)


async def os_arp(net: Backend, iface: LocalInterface, ips: Sequence[str]) -> ArpScan:
    """The configured devices' MACs from the OS's own ARP (Windows ``SendARP``), concurrently."""
    t0 = time.monotonic()

    async def one(ip: str) -> ArpAnswer | None:
        src = iface.onlink(ip)
        mac = await asyncio.to_thread(net.arp_request, ip, str(src.ip) if src else None)
        return None if mac is None else ArpAnswer(ip, mac, None, time.monotonic() - t0)

    got = await asyncio.gather(*(one(ip) for ip in ips))
    return ArpScan([a for a in got if a is not None], len(ips), time.monotonic() - t0)


def moved_devices(
    devices: Sequence[Device],
    found: Mapping[str, Sequence[str]],
    known: Mapping[str, learnt.Learnt] | None = None,
) -> list[Fact]:
    """``device.seen_at``: a device whose MAC (the site file's, else the one an earlier run learnt
    at its address: ``device.mac_learnt``) answers ARP at another address and not at its own
    (DHCP moved it). Pure."""
    out: list[Fact] = []
    for d in devices:
        entry = (known or {}).get(d.name)
        if not d.address or not (d.mac or entry):
            continue
        if d.mac:
            mac = d.mac.lower()
        else:
            assert entry is not None
            mac = entry.mac
            evidence: dict[str, JSONValue] = {"mac": mac, "learnt": entry.learnt}
            out.append(Fact("device.mac_learnt", evidence, target=d.name))
        if mac in (m.lower() for m in found.get(d.address, ())):
            continue
        elsewhere = sorted(
            (ip for ip, macs in found.items() if mac in (m.lower() for m in macs)), key=_ipkey
        )
        if elsewhere:
            out.append(Fact("device.seen_at", elsewhere[0], target=d.name))
    return out


def observed_macs(devices: Sequence[Device], facts: Sequence[Fact]) -> dict[str, tuple[str, str]]:
    """Device -> (MAC, address) that answered at its configured address this run (pure): the one
    MAC ARP heard there (two: an IP conflict, nothing is learnt), else, when this run had no ARP
    for it, the MAC the device's own API reports (it answered at that address)."""
    arp: dict[str, list[str]] = {}
    api: dict[str, str] = {}
    for f in facts:
        if f.key == "device.arp_macs" and isinstance(f.value, list):
            arp[f.target] = [m for m in f.value if isinstance(m, str)]
        elif f.key == "device.info" and isinstance(f.value, dict):
            mac = f.value.get("mac")
            if isinstance(mac, str) and mac:
                api[f.target] = mac
    out: dict[str, tuple[str, str]] = {}
    for d in devices:
        if not d.address:
            continue
        macs = arp.get(d.name)
        if macs is not None:
            if len(macs) == 1:
                out[d.name] = (macs[0], d.address)
        elif d.name in api:
            out[d.name] = (api[d.name], d.address)
    return out


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _ipkey(ip: str) -> tuple[int, int]:
    try:
        return (0, int(ipaddress.ip_address(ip)))
    except ValueError:
        return (1, 0)


def summarize(
    devices: Sequence[Device], facts: Sequence[Fact], arp_s: float | None, site: Site
) -> Outcome:
    """Status, summary and metrics from the facts (pure)."""
    by = {(f.key, f.target): f.value for f in facts}
    lan_devices = [d for d in devices if d.address]
    up = sum(1 for d in lan_devices if by.get(("device.reachable", d.name)) is True)
    problems: list[str] = []
    for d in devices:
        n = d.name
        loss = by.get(("device.icmp_loss_pct", n))
        if (
            by.get(("device.ip_conflict", n)) is True
            or by.get(("device.auth", n)) in ("rejected", "error")
            or ("device.error", n) in by
            or by.get(("device.gateway_ok", n)) is False
            or by.get(("device.platform_online", n)) is False
            or (isinstance(loss, int | float) and loss > site.thresholds.loss_pct)
        ):
            problems.append(n)
    status: Any
    if up < len(lan_devices):
        status = "fail"
    elif problems:
        status = "warn"
    else:
        status = "ok"
    unknown = by.get(("lan.unknown_hosts", ""))
    metrics: dict[str, Metric] = {
        "devices_reachable": Metric(up),
        "devices_on_lan": Metric(len(lan_devices)),
        "devices_with_problems": Metric(len(problems)),
    }
    if isinstance(unknown, list):
        metrics["unknown_hosts"] = Metric(len(unknown))
    if arp_s is not None:
        metrics["arp_scan_s"] = Metric(arp_s, "s")
    if lan_devices and problems:
        summary = msg(
            N_("{up} of {total} devices answer on the LAN; problems on {problems} of them"),
            up=up,
            total=len(lan_devices),
            problems=len(problems),
        )
    elif lan_devices:
        summary = msg(
            N_("{up} of {total} devices answer on the LAN"), up=up, total=len(lan_devices)
        )
    else:
        summary = msg(
            N_("{problems} of {total} devices with problems at the platform"),
            problems=len(problems),
            total=len(devices),
        )
    return Outcome(status, summary, metrics, tuple(facts))
