"""The lab's blueprint: scenario faults -> namespaces, links, rules, processes and site TOML.

``build(...)`` is pure: it decides every namespace, veth, address, route, nftables ruleset, tc
qdisc, daemon command line and generated file of one lab, so it can be read and tested without
root. ``diag.lab.runtime`` executes a plan. The address plan is documented in ``docs/lab.md``;
only 198.18.0.0/15, 198.51.100.0/24, 203.0.113.0/24 and 100.64.0.0/10 appear here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diag.lab.scenarios import BY_NAME, IP_DEVICE, Faults, compose

# Namespace prefix and state root. The environment overrides exist for the lab's own crash tests,
# which run `down --all` and must not take down labs other test runs have up at the same time.
NS_PREFIX = os.environ.get("DIAG_LAB_NS_PREFIX", "diag-")
# Every process and config of a lab lives below this directory (tmpfs: gone after a reboot).
STATE_ROOT = Path(os.environ.get("DIAG_LAB_STATE_ROOT", "/run/diag-lab"))
# `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: the laptop's and
# the devices' "system" resolver is the operator's, as on a real site.
NETNS_ETC = Path("/etc/netns")

# Address plan (docs/lab.md).
LAN = ipaddress.IPv4Network("198.18.0.0/24")
PUBLIC_LAN = ipaddress.IPv4Network("203.0.113.128/25")  # nat-none: the site LAN is public
WAN = ipaddress.IPv4Network("203.0.113.0/25")
CGNAT_WAN = ipaddress.IPv4Network("100.64.0.0/24")
CGNAT_RANGE = "100.64.0.0/10"
INET = ipaddress.IPv4Network("198.51.100.0/24")
ISP_PUBLIC = "203.0.113.1"  # the operator's address; the CGNAT's public side
ROUTER_WAN = "203.0.113.2"
STALE_PUBLIC = "203.0.113.99"  # a stale DDNS record: nobody answers there
DNS_LIE = "198.51.100.66"  # what a lying resolver answers: nobody answers there either
PLATFORM = "198.51.100.10"
STUN_A, STUN_B = "198.51.100.20", "198.51.100.21"
DNS_ISP, DNS_PUBLIC = "198.51.100.53", "198.51.100.54"
SPEEDTEST, PORTAL = "198.51.100.80", "198.51.100.90"
# The lab's ndt7 server (ws://, on the speed-test host) and its Locate API v2 stand-in.
NDT7_PORT = 8080
NDT7_LOCATE_URL = f"http://{SPEEDTEST}/v2/nearest/ndt/ndt7"
# Host offsets inside the site LAN (same in the public /25 of nat-none).
ROUTER_OFF, NVR_OFF, IPC_OFF, LAPTOP_OFF = 1, 10, 21, 100
VLAN_OTHER = 20

ZONE = "lab-cloud.test"
P2P_NAME, RELAY_NAME, API_NAME = f"p2p.{ZONE}", f"relay.{ZONE}", f"api.{ZONE}"
DDNS_NAME = f"{IP_DEVICE}.ddns.{ZONE}"
UDP_PORT, RELAY_PORT, API_PORT = 32100, 443, 8443
# Primary ports of the two STUN addresses (each instance's alternate port is the next one).
STUN_PORT, STUN_B_PORT = 3478, 3480
# The IP-added camera is published on the router's WAN at this port (forward to its HTTP port 80).
FORWARD_PORT = 8080
UPNP_PORT = 5000
# SNTP on the router (diag.lab.emulators.ntp), the NTP server every lab device names.
NTP_PORT = 123
# Devices report to the platform this often (s). Short so that a test sees a heartbeat, a lost
# mapping or a relogin within seconds; a real platform's is around 30 s.
HEARTBEAT_INTERVAL_S = 10
# DIAG_LAB_HEARTBEAT_S overrides it for a whole process (bench/campaign.py: 3 s, so a fault that
# began a few intervals before the run settles in seconds). Read at build time.
HEARTBEAT_ENV = "DIAG_LAB_HEARTBEAT_S"


def heartbeat_interval_s() -> int:
    raw = os.environ.get(HEARTBEAT_ENV, "")
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= 300 else HEARTBEAT_INTERVAL_S


# The platform's "sequential login": each device's login takes this long (s). Short enough that the
# default four devices are all logged in within a second of `diag lab up`.
LOGIN_DELAY_S = 0.2
# radio-link-interference: loss on the device's radio bridge, each direction (%).
RADIO_LOSS_PCT = 25
# address-changed: the device's new DHCP lease is this many host offsets above its old address.
MOVED_OFFSET = 100
# clock-wrong: the clock a camera without a backup battery falls back to after a power cut.
CLOCK_RESET = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
DEFAULT_DEVICES = 4
MAX_DEVICES = 79  # IPC offsets 21..99 stay below the laptop's .100
# The customer's phone (issue 16). On the site LAN it is host .150 (above the laptop, below the
# wrong gateway/DNS of net-config at .254/.253). On mobile data it sits behind a carrier gateway
# on the internet segment, in a carrier-internal range of its own (inside 100.64.0.0/10, apart
# from the operator CGNAT's 100.64.0.0/24), and reaches the laptop's page through a port forward
# on the site router: WAN:PHONE_PORT -> laptop:PHONE_PORT (`diag phone --port --url-host`).
PHONE_OFF = 150
MOBILE_GW = "198.51.100.30"
MOBILE_NET = ipaddress.IPv4Network("100.72.0.0/24")
PHONE_PORT = 8090


def ns_name(lab: str, role: str) -> str:
    return f"{NS_PREFIX}{lab}-{role}"


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    kind: str
    added_via: str
    address: str
    mac: str
    serial: str
    channels: int
    streams_kbps: tuple[int, ...] = ()
    public_host: str | None = None
    public_port: int | None = None
    share_expires: dt.date | None = None
    # address-changed: where the device really is (DHCP moved it); ``address`` stays what the
    # site file and the router's port forward say.
    actual_address: str | None = None

    @property
    def lives_at(self) -> str:
        return self.actual_address or self.address


@dataclass(frozen=True)
class Link:
    """A veth pair; each end lives directly in its namespace (never in the host's)."""

    a: str
    a_if: str
    b: str
    b_if: str
    a_mac: str | None = None
    b_mac: str | None = None


@dataclass(frozen=True)
class Daemon:
    name: str
    role: str
    argv: tuple[str, ...]
    # (proto, ip, port) sockets that must be bound before the lab counts as up.
    ready: tuple[tuple[str, str, int], ...] = ()


@dataclass
class Plan:
    lab: str
    scenarios: tuple[str, ...]
    faults: Faults
    state_dir: Path
    roles: list[str]
    links: list[Link]
    scripts: dict[str, list[str]]
    daemons: list[Daemon]
    devices: list[DeviceSpec]
    files: dict[str, str] = field(default_factory=dict)  # path relative to state_dir -> text
    resolv: dict[str, str] = field(default_factory=dict)  # role -> resolver address
    wan_address: str = ROUTER_WAN
    lan: ipaddress.IPv4Network = LAN
    # Devices expected to log in to the platform (the lab waits for them).
    expect_online: list[str] = field(default_factory=list)
    # Run once the daemons are ready: (role, argv, stdin), retried briefly until it succeeds.
    post: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return ns_name(self.lab, role)

    @property
    def site_path(self) -> Path:
        return self.state_dir / "site.toml"

    def lan_host(self, offset: int) -> str:
        return str(self.lan.network_address + offset)


def _mac(offset: int, group: int = 0x53) -> str:
    """Locally administered MACs, one per LAN host offset (group 0x54: the conflicting host)."""
    return f"02:00:5e:00:{group:02x}:{offset:02x}"


def make_devices(lan: ipaddress.IPv4Network, count: int, today: dt.date) -> list[DeviceSpec]:
    """The lab's devices: an NVR and IPCs added every way the app allows (SPEC section 1)."""
    base = lan.network_address
    out = [
        DeviceSpec(
            "nvr", "nvr", "p2p-account", str(base + NVR_OFF), _mac(NVR_OFF), "LABNVR0001", 4,
            (4096, 2048),
        )
    ]  # fmt: skip
    for i in range(1, count):
        off = IPC_OFF + i - 1
        addr = str(base + off)
        kw: dict[str, Any] = {}
        streams: tuple[int, ...]
        if i == 1:
            via, streams = "ip", (2048,)
            kw = {"public_host": DDNS_NAME, "public_port": FORWARD_PORT}
        elif i == 2:
            via, streams = "p2p", (1024,)
        elif i == 3:
            # Shares last a month by default; this one still has a while to go.
            via, streams = "shared", (1024,)
            kw = {"share_expires": today + dt.timedelta(days=30)}
        else:
            via, streams = "p2p-account", ()
        out.append(
            DeviceSpec(f"ipc{i}", "ipc", via, addr, _mac(off), f"LABIPC{i:04d}", 1, streams, **kw)
        )
    return out


def _q(argv: Sequence[str]) -> str:
    return shlex.join(argv)


# Frames a shaped link's queue holds at least (tbf_args): more than TCP's slow start overshoots.
MODEM_QUEUE_FRAMES = 32


def _tbf(dev: str, rate_kbit: int) -> list[str]:
    """A token bucket on ``dev``'s egress: the link's rate, with a modest modem-like queue.

    The lab's kernel may lack netem (and 802.1Q, and VLAN-aware bridges): loss is made with
    nftables (``numgen random``), rate with tbf, which every kernel has.
    """
    return [f"tc qdisc add dev {dev} root handle 10: {tbf_args(rate_kbit)}"]


def tbf_args(rate_kbit: int) -> str:
    """The lab's tbf recipe for ``rate_kbit`` (also used by bench/bench_bandwidth.py).

    10 ms worth of bytes per burst, at least two full frames; a queue of 50 ms, so that upload
    saturation shows as added latency (bufferbloat) as on a real modem, but never under 32 full
    frames (48 kB): a modem buffers packets, not milliseconds. At 64 kbit/s one frame takes
    189 ms, so a TCP sender's initial window (10 segments) and its first slow-start round (20)
    overflowed the old six-frame queue: the tail drops and spurious time-outs (the handshake's
    9 ms RTT sets a ~210 ms RTO) made the link carry each segment twice, and iperf3 and diag
    both read half the rate (0.030 Mbit/s). With 32 frames no segment is lost (0 retransmits in
    iperf3's 5 s, 0.060 Mbit/s); at 16 and 21 frames the halving remained. From 8 Mbit/s up the
    50 ms are the larger figure and nothing changes.
    """
    burst = max(rate_kbit * 1000 // 8 // 100, 3200)
    queue = max(rate_kbit * 1000 // 8 // 20, MODEM_QUEUE_FRAMES * 1514)
    return f"tbf rate {rate_kbit}kbit burst {burst} limit {queue + burst}"


def _loss_rules(match: str, pct: float) -> list[str]:
    """nft rules dropping ``pct`` % of the packets ``match`` selects (per mille resolution)."""
    permille = round(pct * 10)
    return [f"{match} numgen random mod 1000 < {permille} drop"] if permille else []


def _router_nft(p: Plan, f: Faults, forward: bool) -> str:
    lan = str(p.lan)
    laptop = p.lan_host(LAPTOP_OFF)
    ipc = next((d for d in p.devices if d.name == IP_DEVICE), None)
    pre: list[str] = []
    post: list[str] = []
    fwd: list[str] = []
    sets = ""
    if f.nat != "none":
        if forward and ipc is not None:
            pre.append(
                f"ip daddr {p.wan_address} tcp dport {FORWARD_PORT} dnat to {ipc.address}:80"
            )
            # Hairpin: the laptop dialling the public address from inside reaches the camera too.
            post.append(
                f"ip saddr {lan} ip daddr {ipc.address} tcp dport 80 ct status dnat masquerade"
            )
        flags = {"symmetric": " random,fully-random", "full-cone": " persistent",
                 "restricted": " persistent"}.get(f.nat, "")  # fmt: skip
        post.append(f'oifname "wan0" masquerade{flags}')
        if f.nat == "full-cone":
            # A "DMZ host": any UDP from outside goes to the laptop, whoever sent it (EIF).
            pre.append(f'iifname "wan0" meta l4proto udp dnat to {laptop}')
        if f.nat == "restricted":
            # Only peers the LAN has sent to may come in, from any port (ADF).
            sets = "  set peers { type ipv4_addr; flags dynamic, timeout; timeout 5m; }\n"
            fwd.append('oifname "wan0" meta l4proto udp update @peers { ip daddr }')
            pre.append(f'iifname "wan0" meta l4proto udp ip saddr @peers dnat to {laptop}')
    if f.nat == "udp-blocked":
        # A firewall that drops UDP but lets DNS through, as such sites do.
        fwd.append('oifname "wan0" meta l4proto udp udp dport != 53 drop')
        fwd.append('iifname "wan0" meta l4proto udp udp sport != 53 drop')
    fwd += _loss_rules('oifname "wan0"', f.wan_loss_pct)
    fwd += _loss_rules('iifname "wan0"', f.wan_loss_pct)
    if f.phone == "mobile" and f.nat != "none":
        pre.append(f"ip daddr {p.wan_address} tcp dport {PHONE_PORT} dnat to {laptop}:{PHONE_PORT}")
    if f.router_blocks_platform:
        fwd.append(f"ip daddr {PLATFORM} udp dport {UDP_PORT} drop")
        fwd.append(f"ip daddr {PLATFORM} tcp dport {RELAY_PORT} drop")
    return _nft_table("lab_router", sets, pre, post, fwd) + UPNP_TABLE


# The chains miniupnpd fills (names in miniupnpd.conf); an IGD's mappings go there.
UPNP_TABLE = """table inet lab_upnp {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd;
  }
  chain prerouting_miniupnpd { }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd;
  }
  chain postrouting_miniupnpd { }
}
"""


def _nft_table(name: str, sets: str, pre: list[str], post: list[str], fwd: list[str]) -> str:
    def chain(cname: str, hook: str, rules: list[str]) -> str:
        typ = "filter" if hook == "forward" else "nat"
        prio = {"prerouting": "dstnat", "postrouting": "srcnat", "forward": "filter"}[hook]
        body = "".join(f"    {r}\n" for r in rules)
        return (
            f"  chain {cname} {{\n    type {typ} hook {hook} priority {prio}; policy accept;\n"
            f"{body}  }}\n"
        )

    out = f"table ip {name} {{\n{sets}"
    if pre:
        out += chain("pre", "prerouting", pre)
    if post:
        out += chain("post", "postrouting", post)
    if fwd:
        out += chain("filter_fw", "forward", fwd)
    return out + "}\n"


def _isp_nft(f: Faults) -> str:
    pre: list[str] = []
    post: list[str] = []
    fwd: list[str] = []
    if f.cgnat:
        # The operator's CGNAT: one public address for the whole 100.64.0.0/10 access network.
        post.append(f'ip saddr {CGNAT_RANGE} oifname "inet0" snat to {ISP_PUBLIC}')
    if f.isp_blocks_platform:
        fwd.append(f'iifname "down0" ip daddr {PLATFORM} udp dport {UDP_PORT} drop')
        fwd.append(f'iifname "down0" ip daddr {PLATFORM} tcp dport {RELAY_PORT} drop')
    if f.mtu_blackhole_bytes:
        # A path MTU black hole: larger packets are dropped both ways, and no ICMP "fragmentation
        # needed" tells the sender (nft drops silently).
        n = f.mtu_blackhole_bytes
        fwd += [f'iifname "down0" ip length > {n} drop', f'oifname "down0" ip length > {n} drop']
    if f.captive_portal:
        # Walled garden: web goes to the portal, DNS passes, everything else is dropped.
        pre.append(f'iifname "down0" tcp dport 80 dnat to {PORTAL}:80')
        fwd += [
            'iifname "down0" udp dport 53 accept',
            'iifname "down0" tcp dport 53 accept',
            f'iifname "down0" ip daddr {PORTAL} tcp dport 80 accept',
            'iifname "down0" drop',
        ]
    return _nft_table("lab_isp", "", pre, post, fwd)


def _dns_args(p: Plan, listen: str, lying: bool, pidfile: Path) -> tuple[str, ...]:
    f = p.faults
    ddns = STALE_PUBLIC if f.ddns_stale else _public_address_of_ip_device(p)
    records = {
        P2P_NAME: PLATFORM,
        RELAY_NAME: PLATFORM,
        API_NAME: PLATFORM,
        f"stun.{ZONE}": STUN_A,
        f"stun2.{ZONE}": STUN_B,
        f"speedtest.{ZONE}": SPEEDTEST,
        f"portal.{ZONE}": PORTAL,
        DDNS_NAME: ddns,
    }
    argv = [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
        "--bind-interfaces", f"--listen-address={listen}", "--user=root", "--group=root",
        f"--pid-file={pidfile}", "--log-facility=-", "--log-queries", "--cache-size=0",
    ]  # fmt: skip
    for name, addr in records.items():
        if lying and name in (P2P_NAME, RELAY_NAME):
            addr = DNS_LIE
        if lying and name == API_NAME:
            # "#": the default upstreams, of which there are none: dnsmasq answers REFUSED.
            argv.append(f"--server=/{name}/#")
            continue
        argv.append(f"--host-record={name},{addr}")
    argv.append(f"--local=/{ZONE}/")  # anything else in the zone: NXDOMAIN, never forwarded
    return tuple(argv)


def _public_address_of_ip_device(p: Plan) -> str:
    if p.faults.nat == "none":
        dev = next((d for d in p.devices if d.name == IP_DEVICE), None)
        return dev.address if dev else ROUTER_WAN
    return ISP_PUBLIC if p.faults.cgnat else ROUTER_WAN


def build(
    lab: str,
    scenarios: Sequence[str],
    n_devices: int = DEFAULT_DEVICES,
    *,
    passwords: Mapping[str, str] | None = None,
    python: str = "python3",
    today: dt.date | None = None,
    state_root: Path = STATE_ROOT,
) -> Plan:
    """The whole lab for ``scenarios`` with ``n_devices`` devices (pure)."""
    faults = compose(scenarios)
    state = state_root / lab
    lan: ipaddress.IPv4Network = PUBLIC_LAN if faults.nat == "none" else LAN
    today = today or dt.date.today()
    devices = make_devices(lan, n_devices, today)
    devices = [
        dataclasses.replace(d, actual_address=str(ipaddress.ip_address(d.address) + MOVED_OFFSET))
        if "address-changed" in faults.device_faults(d.name)
        else d
        for d in devices
    ]
    p = Plan(lab, tuple(scenarios), faults, state, [], [], {}, [], devices, lan=lan)
    p.wan_address = "100.64.0.2" if faults.cgnat else ROUTER_WAN
    passwords = passwords or {}
    prefix = lan.prefixlen
    inet_roles = ["platform", "stun", "dns-isp", "dns-public", "speedtest", "portal"]
    conflict = any("ip-conflict" in faults.device_faults(d.name) for d in devices)
    p.roles = ["laptop", "switch", "router", "isp", *inet_roles, *(d.name for d in devices)]
    if conflict:
        p.roles.append("conflict")
    sysctl_base = [
        # No IPv6 chatter (RS, DAD, MLD) in captures: the lab is an IPv4 site.
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
        "ip link set lo up",
    ]
    scripts: dict[str, list[str]] = {r: list(sysctl_base) for r in p.roles}

    # --- site LAN: switch, laptop, router LAN side, devices ---------------------------------------
    sw = scripts["switch"]
    sw += [
        "ip link add br0 type bridge stp_state 0",
        "ip link set br0 up",
    ]
    lan_ports: list[tuple[str, str, str | None]] = [
        ("laptop", "eth0", _mac(LAPTOP_OFF)),
        ("router", "lan0", _mac(ROUTER_OFF)),
    ]
    lan_ports += [(d.name, "eth0", d.mac) for d in devices]
    if conflict:
        lan_ports.append(("conflict", "eth0", None))
    for role, ifname, mac in lan_ports:
        port = f"p-{role}"[:15]
        p.links.append(Link("switch", port, role, ifname, None, mac))
        in_vlan = role != "laptop" and "vlan" in faults.device_faults(role)
        # A port in VLAN 20 is not in br0 (VLAN 1): the vlan tagger joins it to the laptop's trunk.
        sw += (
            [f"ip link set {port} up"]
            if in_vlan
            else [f"ip link set {port} master br0", f"ip link set {port} up"]
        )
    radio: list[str] = []
    vlan_ports: list[str] = []
    for d in devices:
        df = faults.device_faults(d.name)
        if "vlan" in df:
            vlan_ports.append(f"p-{d.name}")
        if "radio" in df:
            radio += _loss_rules(f'iifname "p-{d.name}"', RADIO_LOSS_PCT)
            radio += _loss_rules(f'oifname "p-{d.name}"', RADIO_LOSS_PCT)
        if "no-power" in df:
            sw.append(f"ip link set p-{d.name} down")
    if radio:
        p.files["switch.nft"] = (
            "table bridge lab_radio {\n  chain fw {\n"
            "    type filter hook forward priority filter; policy accept;\n"
            + "".join(f"    {r}\n" for r in radio)
            + "  }\n}\n"
        )
        sw.append(f"nft -f {state / 'switch.nft'}")
    gateway = p.lan_host(ROUTER_OFF)
    laptop = p.lan_host(LAPTOP_OFF)
    scripts["laptop"] += [
        f"ip addr add {laptop}/{prefix} dev eth0",
        "ip link set eth0 up",
        f"ip route add default via {gateway}",
    ]
    p.resolv["laptop"] = DNS_ISP
    for d in devices:
        df = faults.device_faults(d.name)
        gw = str(lan.network_address + 254) if "net-config" in df else gateway
        scripts[d.name] += [f"ip addr add {d.lives_at}/{prefix} dev eth0"]
        if "no-power" not in df:
            scripts[d.name] += ["ip link set eth0 up", f"ip route add default via {gw}"]
        # net-config: the device's own resolver is as wrong as its gateway.
        p.resolv[d.name] = str(lan.network_address + 253) if "net-config" in df else DNS_ISP
        if "ip-conflict" in df:
            scripts["conflict"] += [
                f"ip link set eth0 address {_mac(int(d.address.split('.')[-1]) & 0x7F, 0x54)}",
                f"ip addr add {d.address}/{prefix} dev eth0",
                "ip link set eth0 up",
            ]

    # --- router --------------------------------------------------------------------------------
    rt = scripts["router"]
    wan_net = CGNAT_WAN if faults.cgnat else WAN
    isp_down = str(wan_net.network_address + 1)
    rt += [
        f"ip addr add {gateway}/{prefix} dev lan0",
        f"ip addr add {p.wan_address}/{wan_net.prefixlen} dev wan0",
        "ip link set lan0 up",
        "ip link set wan0 up",
        f"ip route add default via {isp_down}",
        "sysctl -qw net.ipv4.ip_forward=1",
        f"nft -f {state / 'router.nft'}",
    ]
    p.files["router.nft"] = _router_nft(p, faults, forward=not faults.ddns_stale)
    if faults.udp_timeout_s:
        t = faults.udp_timeout_s
        rt.append(
            f"sysctl -qw net.netfilter.nf_conntrack_udp_timeout={t} "
            f"net.netfilter.nf_conntrack_udp_timeout_stream={t}"
        )
    rt += _tbf("wan0", faults.upload_kbit)
    slow_wire = bool(faults.wan_delay_ms or faults.wan_jitter_ms)
    if slow_wire:
        # wan0 - w-router =wire= w-isp - down0: the delaying relay sits on the operator's side.
        p.links.append(Link("router", "wan0", "isp", "w-router", "02:00:5e:00:71:02"))
        p.links.append(Link("isp", "w-isp", "isp", "down0", None, "02:00:5e:00:71:01"))
        # Segmentation and checksum offload off at both ends: the relay copies frames as they
        # are, so they must fit the 1500-byte MTU and carry finished checksums.
        rt.append("ethtool -K wan0 tx off tso off gso off")
    else:
        p.links.append(
            Link("router", "wan0", "isp", "down0", "02:00:5e:00:71:02", "02:00:5e:00:71:01")
        )

    # --- isp and the internet segment ----------------------------------------------------------
    isp = scripts["isp"]
    isp += [
        "ip link add inet0 type bridge stp_state 0",
        "ip link set inet0 up",
        f"ip addr add {INET.network_address + 1}/{INET.prefixlen} dev inet0",
        f"ip addr add {isp_down}/{wan_net.prefixlen} dev down0",
        "sysctl -qw net.ipv4.ip_forward=1",
    ]
    if slow_wire:
        isp += [
            "ip link set w-router up",
            "ip link set w-isp up",
            "ethtool -K down0 tx off tso off gso off",
        ]
    if faults.cgnat:
        isp.append(f"ip addr add {ISP_PUBLIC}/32 dev lo")
    isp.append("ip link set down0 down" if faults.wan_down else "ip link set down0 up")
    if faults.nat == "none":
        # onlink: the route stays valid while the link is down (link-outage composed in).
        isp.append(f"ip route add {lan} via {p.wan_address} dev down0 onlink")
    isp.append(f"nft -f {state / 'isp.nft'}")
    p.files["isp.nft"] = _isp_nft(faults)
    isp += _tbf("down0", faults.download_kbit)
    host_addrs = {
        "platform": [PLATFORM],
        "stun": [STUN_A, STUN_B],
        "dns-isp": [DNS_ISP],
        "dns-public": [DNS_PUBLIC],
        "speedtest": [SPEEDTEST],
        "portal": [PORTAL],
    }
    for role in inet_roles:
        port = f"h-{role}"[:15]
        p.links.append(Link("isp", port, role, "eth0"))
        isp += [f"ip link set {port} master inet0", f"ip link set {port} up"]
        scripts[role] += [f"ip addr add {a}/{INET.prefixlen} dev eth0" for a in host_addrs[role]]
        scripts[role] += [
            "ip link set eth0 up",
            f"ip route add default via {INET.network_address + 1}",
        ]

    if faults.phone:
        _add_phone(p, faults, scripts, sysctl_base)

    # --- daemons -------------------------------------------------------------------------------
    run = state / "run"
    py = (python, "-m")
    ds: list[Daemon] = []
    p.files["turnserver.conf"] = "# empty: /etc/turnserver.conf turns RFC 5780 off (no-rfc5780)\n"
    # coturn 4.6.1 answers CHANGE-REQUEST "change IP" from its *second* listening address whatever
    # address was asked, so each STUN address gets its own instance with that address first:
    # 198.51.100.20:3478 (other address .21:3479) and 198.51.100.21:3480 (other .20:3481).
    for name, first, second, sport in (
        ("coturn-a", STUN_A, STUN_B, STUN_PORT),
        ("coturn-b", STUN_B, STUN_A, STUN_B_PORT),
    ):
        ds.append(Daemon(name, "stun", (
            "turnserver", "-c", str(state / "turnserver.conf"), "-L", first, "-L", second,
            "--listening-port", str(sport), "--alt-listening-port", str(sport + 1),
            "--no-auth", "--no-tls", "--no-dtls", "--no-cli", "-m", "1", "-r", ZONE,
            "--log-file", "stdout", "--simple-log", "--pidfile", str(run / f"{name}.pid"),
        ), (("udp", first, sport), ("udp", second, sport), ("udp", first, sport + 1),
            ("udp", second, sport + 1))))  # fmt: skip
    ds.append(Daemon("dnsmasq-isp", "dns-isp",
                    _dns_args(p, DNS_ISP, faults.dns_isp_lies, run / "dnsmasq-isp.pid"),
                    (("udp", DNS_ISP, 53),)))  # fmt: skip
    ds.append(Daemon("dnsmasq-public", "dns-public",
                    _dns_args(p, DNS_PUBLIC, False, run / "dnsmasq-public.pid"),
                    (("udp", DNS_PUBLIC, 53),)))  # fmt: skip
    if not faults.platform_down:
        ds.append(Daemon("platform", "platform", (
            *py, "diag.lab.emulators.platform", "--bind", PLATFORM,
            "--udp-port", str(UDP_PORT), "--relay-port", str(RELAY_PORT),
            "--api-port", str(API_PORT), "--cert", str(state / "pki" / "api.crt"),
            "--key", str(state / "pki" / "api.key"), "--login-delay", str(LOGIN_DELAY_S),
            "--heartbeat-timeout", str(2.5 * heartbeat_interval_s()),
            "--state-dump", str(state / "platform-state.json"),
        ), (("udp", PLATFORM, UDP_PORT), ("tcp", PLATFORM, RELAY_PORT),
            ("tcp", PLATFORM, API_PORT))))  # fmt: skip
    ds.append(Daemon("speedtest", "speedtest",
                    (*py, "diag.lab.emulators.speedtest", "--bind", SPEEDTEST, "--port", "80",
                     "--ndt7", f"ws://{SPEEDTEST}:{NDT7_PORT}"),
                    (("tcp", SPEEDTEST, 80),)))  # fmt: skip
    ds.append(Daemon("ndt7", "speedtest",
                    (*py, "diag.lab.emulators.ndt7", "--bind", SPEEDTEST, "--port", str(NDT7_PORT)),
                    (("tcp", SPEEDTEST, NDT7_PORT),)))  # fmt: skip
    ds.append(Daemon("portal", "portal",
                    (*py, "diag.lab.emulators.portal", "--bind", PORTAL, "--port", "80"),
                    (("tcp", PORTAL, 80),)))  # fmt: skip
    p.files["miniupnpd.conf"] = _miniupnpd_conf(p)
    ds.append(Daemon("miniupnpd", "router", (
        "miniupnpd", "-f", str(state / "miniupnpd.conf"), "-d", "-P", str(run / "miniupnpd.pid"),
    ), (("tcp", gateway, UPNP_PORT),)))  # fmt: skip
    # The NTP server every lab device names: the router, as on most small sites' LANs.
    ds.append(Daemon("ntp", "router",
                    (*py, "diag.lab.emulators.ntp", "--bind", gateway, "--port", str(NTP_PORT)),
                    (("udp", gateway, NTP_PORT),)))  # fmt: skip
    ds.append(Daemon("lldpd", "switch", (
        "lldpd", "-d", "-k", "-u", str(run / "lldpd.socket"), "-I", "p-*",
        "-S", "diag lab switch", "-P", "lab-switch",
    )))  # fmt: skip
    for port in vlan_ports:
        ds.append(Daemon(f"vlan-tagger-{port}", "switch", (
            *py, "diag.lab.vlantag", "--access", port, "--trunk", "p-laptop",
            "--vid", str(VLAN_OTHER),
        )))  # fmt: skip
    if slow_wire:
        ds.append(Daemon("wan-wire", "isp", (
            *py, "diag.lab.wire", "--a", "w-router", "--b", "w-isp",
            "--delay-ms", str(faults.wan_delay_ms), "--jitter-ms", str(faults.wan_jitter_ms),
        )))  # fmt: skip
    p.post.append(("switch", ("lldpcli", "-u", str(run / "lldpd.socket")), _lldp_config(p)))
    net_ok = not (
        faults.wan_down
        or faults.platform_down
        or faults.captive_portal
        or faults.router_blocks_platform
        or faults.isp_blocks_platform
        or faults.nat == "udp-blocked"
        or faults.wan_loss_pct
    )
    for dev in devices:
        df = faults.device_faults(dev.name)
        if "no-power" in df:
            continue
        cfg = _device_config(p, dev, passwords.get(dev.name, "admin"), df, today)
        p.files[f"devices/{dev.name}.json"] = json.dumps(cfg, indent=1) + "\n"
        ds.append(Daemon(f"device-{dev.name}", dev.name, (
            *py, "diag.lab.emulators.device", "--config",
            str(state / "devices" / f"{dev.name}.json"),
        ), (("tcp", dev.lives_at, 80), ("tcp", dev.lives_at, 554))))  # fmt: skip
        if net_ok and not df & {"p2p-disabled", "net-config", "vlan", "ip-conflict", "clock-wrong"}:
            p.expect_online.append(dev.name)
    p.daemons = ds
    p.scripts = scripts
    p.files["site.toml"] = site_toml(p)
    return p


def _add_phone(p: Plan, f: Faults, scripts: dict[str, list[str]], base: list[str]) -> None:
    """The phone namespace: on the site LAN, or behind a mobile carrier's NAT (issue 16)."""
    p.roles.append("phone")
    scripts["phone"] = list(base)
    p.resolv["phone"] = DNS_ISP
    if f.phone == "lan":
        p.links.append(Link("switch", "p-phone", "phone", "eth0", None, _mac(PHONE_OFF)))
        scripts["switch"] += ["ip link set p-phone master br0", "ip link set p-phone up"]
        scripts["phone"] += [
            f"ip addr add {p.lan_host(PHONE_OFF)}/{p.lan.prefixlen} dev eth0",
            "ip link set eth0 up",
            f"ip route add default via {p.lan_host(ROUTER_OFF)}",
        ]
        return
    p.roles.append("mobile")
    gw_in = str(MOBILE_NET.network_address + 1)
    scripts["mobile"] = [
        *base,
        f"ip addr add {MOBILE_GW}/{INET.prefixlen} dev eth0",
        f"ip addr add {gw_in}/{MOBILE_NET.prefixlen} dev ran0",
        "ip link set eth0 up",
        "ip link set ran0 up",
        f"ip route add default via {INET.network_address + 1}",
        "sysctl -qw net.ipv4.ip_forward=1",
        f"nft -f {p.state_dir / 'mobile.nft'}",
    ]
    p.links.append(Link("isp", "h-mobile", "mobile", "eth0"))
    p.links.append(Link("mobile", "ran0", "phone", "eth0"))
    scripts["isp"] += ["ip link set h-mobile master inet0", "ip link set h-mobile up"]
    scripts["phone"] += [
        f"ip addr add {MOBILE_NET.network_address + 10}/{MOBILE_NET.prefixlen} dev eth0",
        "ip link set eth0 up",
        f"ip route add default via {gw_in}",
    ]
    fwd: list[str] = []
    if f.mobile_blocks_udp:
        # A carrier APN that lets DNS through and nothing else over UDP.
        fwd += ['iifname "ran0" udp dport != 53 drop', 'oifname "ran0" udp sport != 53 drop']
    if f.mobile_blocks_platform:
        fwd.append(f'iifname "ran0" ip daddr {PLATFORM} drop')
    flags = " random,fully-random" if f.mobile_nat == "symmetric" else ""
    p.files["mobile.nft"] = _nft_table(
        "lab_mobile", "", [], [f'oifname "eth0" masquerade{flags}'], fwd
    )


# LLDP: how often the switch announces itself (s). lldpd's minimum, so a check that listens for a
# couple of seconds hears the port's VLANs (a real switch: 30 s, with fast-start on link-up).
LLDP_TX_INTERVAL_S = 1
LLDP_VLAN_NAMES = {1: "default", VLAN_OTHER: "cameras"}


def _vlan_tlvs(port: str, pvid: int, vids: Sequence[int]) -> list[str]:
    """IEEE 802.1 organisationally specific TLVs (OUI 00-80-C2): port VLAN id and VLAN names.

    lldpd learns VLANs from 802.1Q interfaces, which the lab's kernel may not have, so the switch's
    port VLANs are announced as custom TLVs in exactly the standard's encoding.
    """

    def hexs(b: bytes) -> str:
        return ",".join(f"{x:02x}" for x in b)

    out = [
        f"configure ports {port} lldp custom-tlv add oui 00,80,c2 subtype 1 "
        f"oui-info {hexs(pvid.to_bytes(2, 'big'))}"
    ]
    for vid in vids:
        name = LLDP_VLAN_NAMES.get(vid, f"vlan{vid}").encode()
        info = vid.to_bytes(2, "big") + bytes([len(name)]) + name
        out.append(
            f"configure ports {port} lldp custom-tlv add oui 00,80,c2 subtype 3 "
            f"oui-info {hexs(info)}"
        )
    return out


def _lldp_config(p: Plan) -> str:
    lines = [
        "configure system hostname lab-switch",
        f"configure lldp tx-interval {LLDP_TX_INTERVAL_S}",
        *_vlan_tlvs("p-laptop", 1, [1, VLAN_OTHER]),
        *_vlan_tlvs("p-router", 1, [1]),
    ]
    for d in p.devices:
        vid = VLAN_OTHER if "vlan" in p.faults.device_faults(d.name) else 1
        lines += _vlan_tlvs(f"p-{d.name}", vid, [vid])
    return "\n".join(lines) + "\n"


def _device_config(
    p: Plan, dev: DeviceSpec, password: str, df: frozenset[str], today: dt.date
) -> dict[str, Any]:
    wrong = "net-config" in df
    secrets = p.state_dir / "secrets"
    clock: dict[str, Any] = {"ntp": {"enabled": True, "servers": [p.lan_host(ROUTER_OFF)]}}
    if "clock-wrong" in df:
        start = dt.datetime.combine(today, dt.time(), dt.UTC)
        clock = {
            "clock_offset_s": (CLOCK_RESET - start).total_seconds(),
            "ntp": {"enabled": False, "servers": []},
        }
    return {
        **clock,
        "vendor": "DIAG Lab",
        "apis": list(p.faults.apis_of.get(dev.name, p.faults.device_apis)),
        "hostile": p.faults.hostile.get(dev.name, ""),
        "name": dev.name,
        "serial": dev.serial,
        "kind": dev.kind,
        "channels": dev.channels,
        "model": "DS-LAB-NVR" if dev.kind == "nvr" else "DS-LAB-IPC",
        "mac": dev.mac,
        "bind": dev.lives_at,
        "http_port": 80,
        "rtsp_port": 554,
        "username": "admin",
        # password-changed: the device's own password differs from the site's copy.
        "password_file": str(secrets / f"{dev.name}.device.pass"),
        "platform": f"{PLATFORM}:{UDP_PORT}",
        "heartbeat_interval_s": heartbeat_interval_s(),
        "p2p_enabled": "p2p-disabled" not in df,
        "reported": {
            "ip": dev.lives_at,
            "mask": str(p.lan.netmask),
            "gateway": str(p.lan.network_address + 254) if wrong else p.lan_host(ROUTER_OFF),
            "dns": [str(p.lan.network_address + 253)] if wrong else [DNS_ISP],
        },
    }


def _miniupnpd_conf(p: Plan) -> str:
    lan = p.lan
    return "\n".join(
        [
            "ext_ifname=wan0",
            "listening_ip=lan0",
            f"port={UPNP_PORT}",
            "enable_upnp=yes",
            "enable_natpmp=yes",
            "secure_mode=yes",
            "system_uptime=yes",
            "notify_interval=30",
            f"uuid=8a5f0c1e-{p.lab[:4].ljust(4, '0')}-4b1e-9f00-000000000001",
            "friendly_name=diag lab router",
            "upnp_table_name=lab_upnp",
            "upnp_nat_table_name=lab_upnp",
            "upnp_forward_chain=miniupnpd",
            "upnp_nat_chain=prerouting_miniupnpd",
            "upnp_nat_postrouting_chain=postrouting_miniupnpd",
            f"allow 1024-65535 {lan} 1-65535",
            "deny 0-65535 0.0.0.0/0 0-65535",
            "",
        ]
    )


def _toml_str(s: str) -> str:
    return json.dumps(s)


def site_toml(p: Plan) -> str:
    """The site config describing the lab (parsed by ``diag.config.load_site``)."""
    names = ",".join(p.scenarios)
    causes = [BY_NAME[n].cause for n in p.scenarios if BY_NAME[n].cause]
    secrets = p.state_dir / "secrets"
    # profile-wrong: an outdated server name, NXDOMAIN from every resolver (the zone is --local).
    p2p_name = f"p2p-v1.{ZONE}" if p.faults.profile_wrong else P2P_NAME
    lines = [
        f"# Generated by `diag lab up` for lab {p.lab} (scenario {names}); "
        "removed by `diag lab down`.",
        f"# Injected causes: {', '.join(c for c in causes if c) or 'none'}.",
        "",
        "[site]",
        f"name = {_toml_str(f'Lab {p.lab} ({names})')}",
        'profile = "generic"',
        'lang = "en"',
        "",
        "[network]",
        'interface = "eth0"',
        f"site_resolver = {_toml_str(DNS_ISP)}",
        f"gateway = {_toml_str(p.lan_host(ROUTER_OFF))}",
        f"subnets = [{_toml_str(str(p.lan))}]",
        f"wan_address = {_toml_str(p.wan_address)}",
        "",
        "[profile]",
        'name = "lab"',
        # The lab's zone is lab-cloud.test: here .test names resolve (diag.profiles.placeholders).
        "test_network = true",
        f"dns_names = [{', '.join(_toml_str(n) for n in (p2p_name, RELAY_NAME, API_NAME))}]",
        f"independent_resolvers = [{_toml_str(DNS_PUBLIC)}]",
        # ndt7 through the lab's own Locate stand-in, as a user's run goes through M-Lab's;
        # speedtest_method = "http" in a site file picks the plain HTTP endpoint instead.
        'speedtest_method = "ndt7"',
        f"speedtest_locate_url = {_toml_str(NDT7_LOCATE_URL)}",
        f'speedtest_url = "http://{SPEEDTEST}/"',
        f'status_api_url = "https://{API_NAME}:{API_PORT}/api/v1"',
        f"ca_file = {_toml_str(str(p.state_dir / 'pki' / 'ca.crt'))}",
        f'captive_probe_url = "http://{SPEEDTEST}/generate_204"',
        f"heartbeat_interval_s = {heartbeat_interval_s()}",
        "p2p_servers = [",
        f'  {{ name = "P2P login", host = "{p2p_name}", port = {UDP_PORT}, protocol = "udp", '
        'probe = "hello" },',
        f'  {{ name = "P2P relay", host = "{RELAY_NAME}", port = {RELAY_PORT}, protocol = "tcp", '
        'probe = "connect" },',
        f'  {{ name = "Status API", host = "{API_NAME}", port = {API_PORT}, protocol = "https", '
        'probe = "https" },',
        "]",
        "stun_servers = [",
        f'  {{ host = "{STUN_A}", port = {STUN_PORT} }},',
        f'  {{ host = "{STUN_B}", port = {STUN_B_PORT} }},',
        "]",
    ]
    for dev in p.devices:
        lines += [
            "",
            "[[devices]]",
            f"name = {_toml_str(dev.name)}",
            f'kind = "{dev.kind}"',
            f'added_via = "{dev.added_via}"',
            f'address = "{dev.address}"',
            f'mac = "{dev.mac}"',
            f'serial = "{dev.serial}"',
            f"channels = {dev.channels}",
            "ports = { http = 80, rtsp = 554 }",
            'credentials = { username = "admin", password = '
            f"{_toml_str('file:' + str(secrets / f'{dev.name}.pass'))} }}",
        ]
        if dev.streams_kbps:
            lines.append(f"streams_kbps = [{', '.join(str(s) for s in dev.streams_kbps)}]")
        if dev.public_host:
            lines += [f'public_host = "{dev.public_host}"', f"public_port = {dev.public_port}"]
        if dev.share_expires:
            lines.append(f"share_expires = {dev.share_expires.isoformat()}")
    return "\n".join(lines) + "\n"


def describe(p: Plan) -> dict[str, Any]:
    """The plan's facts a test or a person needs (stored in the lab's state file)."""
    faults = []
    for n in p.scenarios:
        sc = BY_NAME[n]
        faults.append({"scenario": n, "cause": sc.cause, "device": sc.device})
    out = {
        "name": p.lab,
        "scenarios": list(p.scenarios),
        "faults": faults,
        "site_config": str(p.site_path),
        "state_dir": str(p.state_dir),
        "lan": str(p.lan),
        "gateway": p.lan_host(ROUTER_OFF),
        "laptop": p.lan_host(LAPTOP_OFF),
        "wan_address": p.wan_address,
        "devices": [
            {
                "name": d.name,
                "address": d.address,
                "lives_at": d.lives_at,
                "mac": d.mac,
                "serial": d.serial,
            }
            for d in p.devices
        ],
        "roles": {r: p.ns(r) for r in p.roles},
    }
    if p.faults.phone:
        # Where `diag phone` serves and what URL host the phone dials (issue 16).
        out["phone"] = {
            "place": p.faults.phone,
            "port": PHONE_PORT,
            "url_host": p.wan_address if p.faults.phone == "mobile" else None,
        }
    return out


def script_text(lines: list[str]) -> str:
    return "set -e\n" + "\n".join(lines) + "\n"


__all__ = ["Daemon", "DeviceSpec", "Link", "Plan", "build", "describe", "ns_name"]
