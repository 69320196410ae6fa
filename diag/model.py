"""The nouns of diag: site, devices, platform profile, check results, causes, verdicts, runs.

Everything here is a frozen dataclass: checks, diagnosis and reports pass these around and never
mutate them, so a result can be shared between the dashboard, the reports and the history safely.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias, get_args

from diag.i18n import Message

if TYPE_CHECKING:
    from diag.secrets import Secret

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]

Status = Literal["ok", "warn", "fail", "skip", "error"]
STATUSES: tuple[Status, ...] = get_args(Status)
# Worst first: used to sort and to pick a summary status.
STATUS_RANK: Mapping[Status, int] = {"error": 4, "fail": 3, "warn": 2, "skip": 1, "ok": 0}

Kind = Literal["ipc", "nvr"]
KINDS: tuple[Kind, ...] = get_args(Kind)
AddedVia = Literal["ip", "p2p", "p2p-account", "shared"]
ADDED_VIA: tuple[AddedVia, ...] = get_args(AddedVia)
# "unknown": what decides the device's state could not be measured (its check errored, timed out,
# was skipped or not run, or the device's own probe failed). Absence of evidence is never health.
DeviceState = Literal["online", "degraded", "unknown", "offline"]
DEVICE_STATES: tuple[DeviceState, ...] = get_args(DeviceState)
# Worst last: offline (measured: the app shows it grey) beats unknown (it may be offline), which
# beats degraded (measured: it works, badly). Picks the site's worst state and the exit codes.
STATE_RANK: Mapping[DeviceState, int] = {"online": 0, "degraded": 1, "unknown": 2, "offline": 3}
Icon = Literal["colour", "grey"]
Protocol = Literal["udp", "tcp", "https", "http"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
SPEEDTEST_METHODS = ("ndt7", "http")
# How a platform server is probed: "hello" sends the platform's UDP hello and expects a reply,
# "connect" is a TCP handshake, "https" a TLS + HTTP request with certificate checks,
# "udp-echo" any UDP datagram that must be answered.
ProbeKind = Literal["hello", "connect", "https", "udp-echo"]
PROBE_KINDS: tuple[ProbeKind, ...] = get_args(ProbeKind)


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret (``env:NAME`` or ``file:/path``); the secret itself is never stored.

    ``repr`` and ``str`` show only the reference kind so that a secret can never leak into logs,
    reports or tracebacks by accident.
    """

    ref: str

    def resolve(self) -> str | None:
        """The secret's value, or None when the reference cannot be resolved (``read()`` says
        why)."""
        return self.read().value

    def read(self) -> Secret:
        """The secret's value or why it cannot be read (``diag.secrets``); never raises, and the
        reason never quotes any of its bytes."""
        from diag.secrets import read_secret

        return read_secret(self.ref)

    def __repr__(self) -> str:
        return f"SecretRef({self.ref.partition(':')[0]}:…)"

    __str__ = __repr__


@dataclass(frozen=True)
class Credentials:
    username: str
    password: SecretRef


@dataclass(frozen=True)
class ServicePort:
    """A service a device offers on the LAN, e.g. ``http`` on 80/tcp."""

    name: str
    port: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class Device:
    name: str
    kind: Kind
    added_via: AddedVia
    address: str | None = None
    mac: str | None = None
    ports: tuple[ServicePort, ...] = ()
    serial: str | None = None
    credentials: Credentials | None = None
    share_expires: dt.date | None = None
    # Bitrates of the streams the site pulls from this device, kbit/s (main + sub streams).
    streams_kbps: tuple[int, ...] = ()
    # For devices added by IP: the address or DDNS name the app dials, and the port.
    public_host: str | None = None
    public_port: int | None = None
    channels: int = 1
    # The installer's observation: the app shows this device grey (None: not observed).
    app_shows_grey: bool | None = None
    # The device API diag reads it through (a ``diag.devices`` adapter name, or "auto").
    api: str = "auto"


@dataclass(frozen=True)
class P2PServer:
    host: str
    port: int
    protocol: Protocol
    probe: ProbeKind
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class StunServer:
    host: str
    port: int = 3478


@dataclass(frozen=True)
class Profile:
    """A P2P platform: its servers, STUN servers, DNS names, speed-test endpoint and timing."""

    name: str
    p2p_servers: tuple[P2PServer, ...] = ()
    stun_servers: tuple[StunServer, ...] = ()
    dns_names: tuple[str, ...] = ()
    # The speed test: "ndt7" (M-Lab's protocol: a ws[s]:// speedtest_url names a server, else
    # speedtest_locate_url finds one) or "http" (the lab's plain HTTP endpoint at speedtest_url).
    # None: by the URL (http[s]:// speedtest_url: http; otherwise ndt7).
    speedtest_method: str | None = None
    speedtest_url: str | None = None
    speedtest_locate_url: str | None = None
    status_api_url: str | None = None
    # CA bundle (PEM path) the platform's HTTPS endpoints are checked against; None: system store.
    ca_file: str | None = None
    # Devices send a heartbeat this often, s; a NAT that forgets mappings sooner breaks them.
    heartbeat_interval_s: float = 30.0
    # Resolvers independent of the site's operator: tell a lying resolver from a real answer.
    independent_resolvers: tuple[str, ...] = ()
    # A URL whose content is known: a captive portal or walled garden answers it differently.
    captive_probe_url: str | None = None
    captive_probe_expect: str | None = None
    # True for a test network (the diag lab) where names under .test resolve: they are then not
    # placeholders (diag.profiles.placeholders).
    test_network: bool = False


@dataclass(frozen=True)
class Thresholds:
    loss_pct: float = 2.0
    rtt_ms: float = 150.0
    jitter_ms: float = 30.0
    dns_ms: float = 500.0
    # Upload must exceed the streams' need by this factor (video bitrate peaks on motion).
    upload_headroom: float = 1.25
    # Latency added under load beyond this is bufferbloat, ms.
    bufferbloat_ms: float = 100.0
    share_warn_days: int = 7
    # A device clock further than this from the laptop's breaks TLS and token logins, s.
    clock_skew_s: float = 300.0


@dataclass(frozen=True)
class Network:
    """How the laptop sees the site's network."""

    interface: str | None = None
    # "system" means the resolver in the laptop's resolv.conf; otherwise an IP address.
    site_resolver: str = "system"
    gateway: str | None = None
    # Subnets the tool may sweep (ARP/ICMP) besides those of its own interfaces.
    subnets: tuple[str, ...] = ()
    # The router's WAN address if known (from its UI or UPnP), for double-NAT detection.
    wan_address: str | None = None


@dataclass(frozen=True)
class Site:
    name: str
    devices: tuple[Device, ...]
    profile: Profile
    thresholds: Thresholds = field(default_factory=Thresholds)
    network: Network = field(default_factory=Network)
    path: str | None = None
    lang: str = "en"

    def device(self, name: str) -> Device | None:
        return next((d for d in self.devices if d.name == name), None)


@dataclass(frozen=True)
class Metric:
    value: JSONScalar
    unit: str = ""


@dataclass(frozen=True)
class Fact:
    """One measurement or observation, with a stable key the diagnosis rules match on.

    ``target`` names what it is about: a device name, ``host:port/proto``, a DNS name, or "" for
    the site.
    """

    key: str
    value: JSONValue
    unit: str = ""
    target: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a check returns; the runner adds id, timing and the shared fields."""

    status: Status
    summary: Message
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class CheckResult:
    check_id: str
    status: Status
    summary: Message
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    facts: tuple[Fact, ...] = ()
    duration_s: float = 0.0
    targets: tuple[str, ...] = ()

    def facts_for(self, key: str, target: str | None = None) -> list[Fact]:
        return [f for f in self.facts if f.key == key and (target is None or f.target == target)]

    def fact(self, key: str, target: str | None = None) -> Fact | None:
        found = self.facts_for(key, target)
        return found[0] if found else None


@dataclass(frozen=True)
class Cause:
    id: str
    confidence: float
    evidence: tuple[Fact, ...] = ()
    fix: tuple[Message, ...] = ()
    # What the cause says to a person, beyond its catalogue title (e.g. which port, which hop).
    detail: Message | None = None


@dataclass(frozen=True)
class Verdict:
    device: str
    kind: Kind
    added_via: AddedVia
    state: DeviceState
    icon: Icon
    causes: tuple[Cause, ...] = ()
    # What could not be measured: why the state is "unknown" (first), and for every state the
    # evidence a device cause needs that is missing (diag.diagnosis.unmeasured).
    unmeasured: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Run:
    site: str
    started_at: dt.datetime
    duration_s: float
    checks: tuple[CheckResult, ...]
    devices: tuple[Verdict, ...] = ()
    site_causes: tuple[Cause, ...] = ()
    lang: str = "en"
    site_path: str | None = None
    tool_version: str = ""

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.check_id == check_id), None)

    @property
    def worst_state(self) -> DeviceState:
        return max((v.state for v in self.devices), key=STATE_RANK.__getitem__, default="online")
