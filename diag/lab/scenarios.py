"""The lab's scenarios as data: each names the cause it injects and the knobs it turns.

A scenario is a row of ``SCENARIOS``: a name, the cause id of SPEC section 2 it injects (None for
``healthy`` and the NAT behaviours that are not a fault), a one-line description, the device it
breaks (if any) and a set of ``Faults`` overrides. Scenarios compose: ``compose(["a", "b"])``
applies both rows' overrides, so two faults can be injected at once. ``diag.lab.plan`` turns the
resulting ``Faults`` into namespaces, addresses, nftables rules, tc qdiscs and processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from diag.i18n import N_

NatMode = Literal["port-restricted", "none", "full-cone", "restricted", "symmetric", "udp-blocked"]
NAT_MODES: tuple[NatMode, ...] = get_args(NatMode)
DeviceFault = Literal[
    "no-power",
    "p2p-disabled",
    "net-config",
    "password-changed",
    "ip-conflict",
    "vlan",
    "radio",
    "clock-wrong",
    "address-changed",
]
DEVICE_FAULTS: tuple[DeviceFault, ...] = get_args(DeviceFault)
PhonePlace = Literal["", "lan", "mobile"]
MobileNat = Literal["port-restricted", "symmetric"]

# The healthy site's internet link, kbit/s: a decent fixed line (or good LTE). The lab's default
# streams (sum about 10 Mbit/s) fit into the upload with the default 1.25 headroom.
HEALTHY_UPLOAD_KBIT = 20_000
HEALTHY_DOWNLOAD_KBIT = 50_000
# low-bandwidth: a weak LTE cell, far below the streams' several Mbit/s.
WEAK_UPLOAD_KBIT = 1_000
# weak-uplink: an overloaded LTE cell (BTS overload): 256 kbit/s, a speed test must still measure.
BTS_OVERLOAD_UPLOAD_KBIT = 256
# mtu-blackhole: what a PPPoE-over-LTE path may carry; 1500-byte packets vanish silently.
MTU_BLACKHOLE_BYTES = 1400
# nat-mapping-expiry: the router forgets UDP mappings after this many seconds, well below the lab's
# heartbeat interval (diag.lab.plan.HEARTBEAT_INTERVAL_S = 10 s).
SHORT_UDP_TIMEOUT_S = 4


# The device an IP-added scenario is about (ip-access-broken has no device fault of its own).
IP_DEVICE = "ipc1"


@dataclass(frozen=True)
class Faults:
    """Everything a scenario can change in the lab; the defaults are the healthy site."""

    nat: NatMode = "port-restricted"
    cgnat: bool = False
    router_blocks_platform: bool = False
    isp_blocks_platform: bool = False
    wan_down: bool = False
    upload_kbit: int = HEALTHY_UPLOAD_KBIT
    download_kbit: int = HEALTHY_DOWNLOAD_KBIT
    # netem on the WAN link, each direction: one-way delay and jitter (ms), loss (%).
    wan_delay_ms: int = 0
    wan_jitter_ms: int = 0
    wan_loss_pct: float = 0.0
    captive_portal: bool = False
    platform_down: bool = False
    dns_isp_lies: bool = False
    udp_timeout_s: int | None = None
    ddns_stale: bool = False
    # profile-wrong: the site file names a P2P server the platform's zone does not have.
    profile_wrong: bool = False
    # mtu-blackhole: the operator's hop drops packets larger than this (bytes), without ICMP.
    mtu_blackhole_bytes: int | None = None
    # The device APIs every lab device speaks (ONVIF, ISAPI, Dahua; see docs/devices.md).
    device_apis: tuple[str, ...] = ("onvif", "isapi", "dahua")
    # Per device (by name), overriding ``device_apis`` for that device.
    apis_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # device name -> the faults injected into it
    devices: Mapping[str, frozenset[DeviceFault]] = field(default_factory=dict)
    # device name -> a hostile web server mode (diag.lab.emulators.hostile.MODES) instead of its
    # own: a broken or malicious device beside the healthy ones.
    hostile: Mapping[str, str] = field(default_factory=dict)
    # The customer's phone (``diag phone``): "" none, "lan" on the site LAN (its Wi-Fi), "mobile"
    # on a mobile carrier's network beyond the operator, behind the carrier's own NAT.
    phone: PhonePlace = ""
    mobile_nat: MobileNat = "port-restricted"
    mobile_blocks_udp: bool = False
    mobile_blocks_platform: bool = False

    def device_faults(self, name: str) -> frozenset[DeviceFault]:
        return self.devices.get(name, frozenset())


@dataclass(frozen=True)
class Scenario:
    name: str
    cause: str | None
    description: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # The device this scenario breaks, with the fault (None: a site-wide fault).
    device: str | None = None
    device_fault: DeviceFault | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cause": self.cause,
            "description": self.description,
            "device": self.device,
        }


def _s(
    name: str,
    cause: str | None,
    description: str,
    device: tuple[str, DeviceFault | None] | None = None,
    **overrides: Any,
) -> Scenario:
    return Scenario(
        name,
        cause,
        description,
        overrides,
        device[0] if device else None,
        device[1] if device else None,
    )


# fmt: off
SCENARIOS: tuple[Scenario, ...] = (
    _s("healthy", None, N_("a working site: port-restricted NAT, every device online")),
    # NAT behaviours (RFC 4787); the last two are the only ones that hurt direct P2P.
    _s("nat-none", None, N_("no NAT: the site LAN is routed with public addresses"), nat="none"),
    _s("nat-full-cone", None, N_("full cone NAT (EIM + EIF)"), nat="full-cone"),
    _s("nat-restricted", None, N_("restricted cone NAT (EIM + ADF)"), nat="restricted"),
    _s("nat-port-restricted", None, N_("port-restricted cone NAT (EIM + APDF)")),
    _s("nat-symmetric", "nat-unfriendly", N_("symmetric NAT (APDM)"), nat="symmetric"),
    _s("nat-udp-blocked", "nat-unfriendly", N_("the router drops all UDP except DNS"),
       nat="udp-blocked"),
    _s("nat-cgnat", "cgnat", N_("carrier-grade NAT: router WAN in 100.64.0.0/10"), cgnat=True),
    # One scenario per network-visible cause of SPEC section 2.
    _s("device-no-power", "device-no-power", N_("ipc2 is off: link down, nothing answers"),
       device=("ipc2", "no-power")),
    _s("device-p2p-disabled", "device-p2p-disabled",
       N_("ipc3 has its P2P service switched off"), device=("ipc3", "p2p-disabled")),
    _s("device-net-config", "device-net-config",
       N_("the NVR's gateway and DNS are wrong: it cannot reach the internet"),
       device=("nvr", "net-config")),
    _s("device-password-changed", "device-password-changed",
       N_("the NVR's password was changed: the site's credentials are rejected"),
       device=("nvr", "password-changed")),
    _s("ip-conflict", "ip-conflict", N_("a second host answers ARP for ipc3's address"),
       device=("ipc3", "ip-conflict")),
    _s("router-port-blocking", "router-port-blocking",
       N_("the router drops the platform's P2P ports (UDP 32100, TCP 443): probes die at hop 1"),
       router_blocks_platform=True),
    _s("vlan-misconfig", "vlan-misconfig",
       N_("ipc2's switch port is in VLAN 20; the laptop's trunk port sees its tagged frames"),
       device=("ipc2", "vlan")),
    _s("isp-p2p-blocking", "isp-p2p-blocking",
       N_("the operator drops the platform's P2P ports: probes die at hop 2"),
       isp_blocks_platform=True),
    _s("link-outage", "link-outage", N_("the internet link is down: the router answers, nothing "
       "beyond"), wan_down=True),
    _s("low-bandwidth", "low-bandwidth", N_("upload shaped to 1 Mbit/s, below the streams' need"),
       upload_kbit=WEAK_UPLOAD_KBIT),
    _s("weak-uplink", "low-bandwidth",
       N_("an overloaded LTE cell: upload shaped to 256 kbit/s, 50 times below the streams' need"),
       upload_kbit=BTS_OVERLOAD_UPLOAD_KBIT),
    _s("profile-wrong", "profile-wrong",
       N_("the site file names a P2P server that does not exist (both resolvers: NXDOMAIN)"),
       profile_wrong=True),
    _s("mtu-blackhole", "mtu-blackhole",
       N_("the operator drops packets above 1400 bytes without ICMP: small requests work, "
          "TLS and video stall"), mtu_blackhole_bytes=MTU_BLACKHOLE_BYTES),
    _s("wan-loss-latency", "wan-loss-latency",
       N_("the internet link loses 5 % each way, with 100 ms ± 40 ms delay each way"),
       wan_delay_ms=100, wan_jitter_ms=40, wan_loss_pct=5.0),
    _s("radio-link-interference", "radio-link-interference",
       N_("ipc3's radio bridge loses 25 % of packets each way"), device=("ipc3", "radio")),
    _s("data-plan-exhausted", "data-plan-exhausted",
       N_("mobile data used up: HTTP goes to the operator's portal, only DNS passes"),
       captive_portal=True),
    _s("p2p-server-unavailable", "p2p-server-unavailable",
       N_("the platform's servers are down; the rest of the internet works"),
       platform_down=True),
    _s("dns-failure", "dns-failure",
       N_("the operator's resolver lies about the platform names; the independent one is right"),
       dns_isp_lies=True),
    _s("nat-unfriendly", "nat-unfriendly", N_("symmetric NAT: direct P2P cannot work"),
       nat="symmetric"),
    _s("nat-mapping-expiry", "nat-mapping-expiry",
       N_("the router forgets UDP mappings after 4 s, before the 10 s heartbeat"),
       udp_timeout_s=SHORT_UDP_TIMEOUT_S),
    _s("cgnat", "cgnat", N_("double NAT: the router's WAN is behind the operator's CGNAT"),
       cgnat=True),
    _s("device-clock-wrong", "device-clock-wrong",
       N_("ipc2's clock fell back to 2000-01-01 after a power cut and NTP is off: its TLS login "
          "to the cloud fails"), device=("ipc2", "clock-wrong")),
    _s("device-address-changed", "device-address-changed",
       N_("DHCP moved ipc1 (added by IP) to another address; the site file and the port forward "
          "still name the old one"), device=(IP_DEVICE, "address-changed")),
    # Which device APIs the devices speak (not a fault): for comparing verdicts across APIs.
    _s("onvif-only", None, N_("every device speaks only ONVIF"), device_apis=("onvif",)),
    _s("isapi-only", None, N_("every device speaks only ISAPI"), device_apis=("isapi",)),
    _s("dahua-only", None, N_("every device speaks only the Dahua HTTP API"),
       device_apis=("dahua",)),
    _s("mixed-apis", None, N_("the NVR speaks only the Dahua API, ipc1 only ISAPI, ipc2 only "
       "ONVIF, the others all three"),
       apis_of={"nvr": ("dahua",), "ipc1": ("isapi",), "ipc2": ("onvif",)}),
    _s("ip-access-broken", "ip-access-broken",
       N_("ipc1's DDNS name points to a stale address and its port forward is gone"),
       device=(IP_DEVICE, None), ddns_stale=True),
    # Hostile devices (not a cause: one misbehaving device must stay its own finding, "unknown").
    _s("device-hostile-digest", None,
       N_("ipc1's web server answers every login with a malformed Digest challenge"),
       device=("ipc1", None), hostile={"ipc1": "digest-bare-token"}),
    _s("device-hostile-trickle", None,
       N_("ipc1's web server trickles its answers at 1 byte/s"),
       device=("ipc1", None), hostile={"ipc1": "trickle-headers"}),
    # The customer's phone (diag phone): measured by a real browser in the phone namespace.
    _s("phone-healthy", None, N_("the customer's phone on the site's Wi-Fi; nothing wrong"),
       phone="lan"),
    _s("phone-mobile-symmetric", "phone-side",
       N_("the phone on mobile data behind the carrier's symmetric NAT"),
       phone="mobile", mobile_nat="symmetric"),
    _s("phone-udp-blocked", "phone-side",
       N_("the phone's mobile network drops all UDP except DNS"),
       phone="mobile", mobile_blocks_udp=True),
    _s("phone-no-platform", "phone-side",
       N_("the phone's mobile network cannot reach the platform's servers"),
       phone="mobile", mobile_blocks_platform=True),
)
# fmt: on
BY_NAME: Mapping[str, Scenario] = {s.name: s for s in SCENARIOS}


class ScenarioError(ValueError):
    """An unknown scenario name (the only argument)."""


def parse_names(value: str | Sequence[str]) -> list[str]:
    """Scenario names from ``"a,b"`` or a list; unknown names raise ``ScenarioError``."""
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value)
    names = [n for n in names if n] or ["healthy"]
    for n in names:
        if n not in BY_NAME:
            raise ScenarioError(n)
    return names


def compose(names: Iterable[str]) -> Faults:
    """The ``Faults`` of several scenarios applied in order (later ones win on a conflict)."""
    faults = Faults()
    devices: dict[str, set[DeviceFault]] = {}
    for name in names:
        sc = BY_NAME[name]
        faults = dataclasses.replace(faults, **sc.overrides)
        if sc.device and sc.device_fault:
            devices.setdefault(sc.device, set()).add(sc.device_fault)
    return dataclasses.replace(faults, devices={k: frozenset(v) for k, v in devices.items()})


def devices_needed(names: Iterable[str]) -> set[str]:
    """The device names the scenarios refer to (they must exist in the lab)."""
    out = {BY_NAME[n].device for n in names if BY_NAME[n].device}
    if any(BY_NAME[n].overrides.get("ddns_stale") for n in names):
        out.add(IP_DEVICE)
    return {d for d in out if d}
