"""The rules from facts to causes, as data: one ``Rule`` per way a cause shows in the facts.

A rule names its cause (a catalogue id), the fact keys it reads (its default evidence), a base
confidence, and a predicate ``when(env, device) -> Hit | None``. Device rules run once per device
whose ``added_via`` they apply to; site rules run once per run. A ``Hit`` may sharpen the rule's
confidence, pick the evidence, and carry a detail message naming specifics (which port, which hop,
which resolver). Fix steps come from the catalogue unless the rule has its own.

Third-party packages add rules through the ``diag.rules`` entry-point group (see
``diag.diagnosis.engine.load_rules``); they use the same ``Rule`` type and catalogue ids.

A rule judges its own cause only: the likelihood of the facts under that cause (0.9 the facts
show it directly; 0.7–0.85 they fit well; 0.5–0.6 likely but not proven; below 0.5 a note) and the
symptoms it observed (``shows``: ids of ``catalog.SYMPTOMS``). It never looks at rival causes: the
engine explains a cause away when a stronger rival predicts all of its observed symptoms
(``CauseInfo.predicts``; docs/diagnosis.md, "The cause model"). Rates measured from a few probes
count by their Wilson interval (``stats``), not by their point value. A healthy site must give
nothing at or above 0.5.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from diag.diagnosis.catalog import (
    CATALOG,
    IP_VIA,
    LOST_SERIES,
    P2P_VIA,
    PHONE_CHECKLIST,
    PHONE_MEASURED_FIX,
    Effect,
    Scope,
)
from diag.diagnosis.facts import Facts, as_num
from diag.diagnosis.history import SITE, History
from diag.diagnosis.stats import median_low, rate_interval_pct, spread_low
from diag.i18n import Message, msg
from diag.model import ADDED_VIA, AddedVia, Cause, Device, Fact, Site

# After an outage a device notices it lost the platform after this many unanswered heartbeats and
# logs in again (the lab's device emulator and most P2P firmwares use 3).
RELOGIN_HEARTBEATS = 3
# The platform serves logins one at a time ("sequential login" in the vendor guide); a slot per
# device of this many seconds bounds how long the last device in the queue waits, s.
LOGIN_SLOT_S = 2.0
# A link outage that ended this recently is still worth a note on a healthy site, s.
RECENT_OUTAGE_S = 3600.0
RCODE_OK = "NOERROR"
# Public address changes of one device at the platform that mean "mappings expire": one change is
# a router reboot or a new WAN lease, three in the platform's memory is a pattern.
ADDRESS_CHURN = 3
CGNAT_NET = ipaddress.ip_network("100.64.0.0/10")
# One speed test (a transfer of about a second) measures the upload to within this share: a
# healthy 20 Mbit/s lab link read 15.8-19.4 Mbit/s over the fault campaign on a loaded laptop.
SPEEDTEST_TOLERANCE = 0.25
# An upload below this share of the streams' need is beyond what moderate loss does to TCP.
VERY_SLOW_SHARE = 0.25
# Loss whose interval's low end is above this (%) collapses TCP (retransmission timeouts):
# then it accounts for an upload of any speed, or a speed test that did not complete.
COLLAPSE_LOSS_PCT = 10.0
# A probe series (a platform server's hello with its retransmissions, a port probe, a DNS query
# and its retry, a NAT keepalive) is lost whole when each of about this many tries is lost.
SERIES_TRIES = 3
# The loss accounts for a symptom of lost series when that is at least this likely (chance, 0..1)
# at the high end of the loss's 95 % interval: 60 % loss of 20 probes (up to 78 %) loses a
# three-try series 47 % of the time and every one of three platform servers' 10 % of the time;
# 10 % loss (up to 30 %) loses a series 2.7 % of the time.
SERIES_CHANCE = 0.05
# The TCP throughput loss allows (Mathis et al., "The macroscopic behavior of the TCP congestion
# avoidance algorithm", 1997): MSS / RTT * C / sqrt(p). MSS of a 1500-byte Ethernet path, bytes;
# C = sqrt(3/2) for Reno with delayed ACKs off. CUBIC and BBR do better, so the ceiling is used
# only as an upper bound taken at the loss interval's low end and the lowest RTT seen.
MATHIS_MSS_BYTES = 1448
MATHIS_C = math.sqrt(1.5)
# A slow resolver is a cause when at least this many names were slow: one slow answer in a run is
# one query that needed its retry (3 % DNS loss does that to one of three names now and then).
SLOW_NAMES = 2
SLOW_NOTE = 0.3
# device-net-config when the device's settings are the site's own and only the resolver they name
# did not answer the laptop: a note (the campaign's dead or slow operator resolvers gave it 0.85
# on every device, wrong each time).
SITE_SETTINGS_NOTE = 0.3
# Bufferbloat without loss, latency or jitter at idle: a note (advice), not a verdict.
BLOAT_ONLY = 0.45
# What latency or jitter alone accounts for (no packet is lost).
LATENCY_ONLY_PREDICTS = ("wan.latency", "wan.bufferbloat", "dns.site-slow")
# Probes in a quick run's loss series (wan and per-device pings) when a run does not say.
QUICK_SERIES = 20
# An operator blocks ports, not whole hosts: when the platform host answers on no port at all
# while other hosts beyond the operator do, the host being down is far likelier. This is the
# operator-blocking reading's confidence then (named second, after p2p-server-unavailable).
HOST_DARK_BLOCKING = 0.3
# Phone side. Android's battery saver turns itself on at 15 % by default and iOS offers Low Power
# Mode at 20 %: at or below 20 % and not charging, the phone is likely saving power, %.
PHONE_BATTERY_LOW_PCT = 20.0
# A phone clock this far off the laptop's breaks token logins (they allow a few minutes at most)
# and, further off, TLS certificate checks; well above the offset's own error on a LAN, s.
PHONE_CLOCK_MAX_S = 120.0
# NetInfo's effective types this slow cannot carry a video stream (2g: about 70 kbit/s).
PHONE_SLOW_TYPES = ("slow-2g", "2g")


@dataclass(frozen=True)
class Env:
    """What a rule sees: the site, the facts, the time, the history, and (phase 2) the causes."""

    site: Site
    facts: Facts
    now: dt.datetime
    history: History | None = None
    # Phase 2 only: causes found in phase 1, by device name ("" for the site).
    found: Mapping[str, tuple[Cause, ...]] = field(default_factory=dict)

    @property
    def today(self) -> dt.date:
        return self.now.date()


@dataclass(frozen=True)
class Hit:
    """A rule that fired: confidence (None: the rule's), evidence (None: the rule's keys)."""

    confidence: float | None = None
    evidence: tuple[Fact, ...] | None = None
    detail: Message | None = None
    # What this occurrence does to the icon, when it differs from the catalogue's effect.
    effect: Effect | None = None
    # The symptoms (catalog.SYMPTOMS ids) this occurrence observed; None: the rule's ``shows``.
    shows: tuple[str, ...] | None = None
    # What this occurrence predicts when it is milder than the cause at its worst (a subset of
    # the catalogue's ``predicts``; None: all of them): jitter alone loses no DNS query.
    predicts: tuple[str, ...] | None = None
    # Fix steps for this occurrence (English templates marked with N_); None: the rule's.
    fix: tuple[str, ...] | None = None


Predicate = Callable[[Env, Device | None], Hit | None]


@dataclass(frozen=True)
class Rule:
    cause: str
    when: Predicate
    keys: tuple[str, ...] = ()
    confidence: float = 0.8
    scope: Scope = "device"
    # Device rules: the devices (by how they were added) this rule is evaluated for.
    applies_to: tuple[AddedVia, ...] = ADDED_VIA
    # Own fix steps (English templates marked with N_); empty: the catalogue's.
    fix: tuple[str, ...] = ()
    # 2: runs after every phase-1 rule and sees their causes in ``Env.found``.
    phase: int = 1
    name: str = ""
    # The symptoms (catalog.SYMPTOMS ids) a hit of this rule observed, unless the Hit says;
    # empty: the cause is never explained away by a rival.
    shows: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Small readers shared by the predicates


def _platform_reachable(env: Env) -> bool | None:
    """True: some platform server answered; False: none did; None: not probed."""
    vals = [f.value for f in env.facts.all("p2p.reachable") if isinstance(f.value, bool)]
    if not vals:
        return None
    return any(vals)


def _site_gateway(env: Env) -> str | None:
    return env.site.network.gateway or env.facts.text("host.default_gateway")


def _blocked_ports(env: Env, where: str) -> list[Fact]:
    """``port.blocked_at`` facts equal to ``where`` whose port is not open.

    Ports of a server that is itself down do not count: its host answers (a TCP port is refused,
    or the probe reached it) yet none of its ports is open, so a silent UDP port there is the
    service being down, not the path dropping it.
    """
    down = _hosts_down(env)
    return [
        f
        for f in env.facts.all("port.blocked_at")
        if f.value == where
        and env.facts.flag("port.open", f.target) is not True
        and _port_host(env, f.target) not in down
    ]


def _port_host(env: Env, target: str) -> str:
    """The address a ``host:port/proto`` target was probed at (its name when unknown)."""
    return env.facts.text("port.address", target) or target.rsplit(":", 1)[0]


def _hosts_down(env: Env) -> set[str]:
    reached: set[str] = set()
    open_: set[str] = set()
    for f in env.facts.all("port.open"):
        host = _port_host(env, f.target)
        if f.value is True:
            open_.add(host)
        elif env.facts.text("port.result", f.target) == "refused" or (
            env.facts.text("port.blocked_at", f.target) == "beyond"
        ):
            reached.add(host)
    return reached - open_


def _dark_hosts(env: Env) -> set[str]:
    """Hosts probed on two or more ports of which none answered at all (open or refused)."""
    ports: dict[str, int] = {}
    answered: set[str] = set()
    for f in env.facts.all("port.open"):
        host = _port_host(env, f.target)
        ports[host] = ports.get(host, 0) + 1
        if f.value is True or env.facts.text("port.result", f.target) in ("refused", "bad-reply"):
            answered.add(host)
    return {h for h, n in ports.items() if n >= 2 and h not in answered}


def _probes(env: Env, key: str, target: str = "") -> int:
    """How many probes a rate fact comes from (older runs: the quick series' 20)."""
    n = env.facts.num(key, target)
    return int(n) if n is not None and n >= 1 else QUICK_SERIES


def _low_pct(pct: float | None, n: int) -> float | None:
    return None if pct is None else rate_interval_pct(pct, n)[0]


def _internet_up(env: Env) -> bool | None:
    inet = env.facts.flag("wan.internet_reachable")
    if env.facts.flag("wan.captive_portal") or env.facts.flag("wan.only_dns_passes"):
        # A walled garden answers some probes; that is not "the internet works".
        return False
    return _beyond_answers(env) if inet is None else inet


# The other checks' facts that say whether anything beyond the operator answered.
BEYOND_KEYS = ("p2p.reachable", "port.open", "nat.mapped_address", "dns.independent.rcode")


def _beyond_answers(env: Env) -> bool | None:
    """Whether the internet answers, from the other checks when the wan check said nothing.

    A wan check that ran out of time on a loaded laptop leaves no ``wan.internet_reachable``;
    a platform server, a port, the STUN server or the independent resolver that answered says
    the internet works; all of the platform's servers and the STUN server silent (and the
    independent resolver, when it was asked) says it does not. Anything less: unknown.
    """
    f = env.facts
    if (
        any(x.value is True for x in (*f.all("p2p.reachable"), *f.all("port.open")))
        or f.text("nat.mapped_address")
        or any(x.value == RCODE_OK for x in f.all("dns.independent.rcode"))
    ):
        return True
    p2p = [x.value for x in f.all("p2p.reachable")]
    indep = [x.value for x in f.all("dns.independent.rcode")]
    silent = (
        bool(p2p)
        and not any(p2p)
        and f.flag("nat.udp_blocked") is True
        and all(isinstance(v, str) and _dns_symptom(v) == "dns.site-timeout" for v in indep)
    )
    return False if silent else None


def _exceeds(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


def _wan_idle_bad(env: Env) -> bool:
    """Loss, RTT or jitter (not under load) beyond the site's thresholds."""
    t = env.site.thresholds
    return (
        _exceeds(env.facts.num("wan.loss_pct"), t.loss_pct)
        or _exceeds(env.facts.num("wan.rtt_ms"), t.rtt_ms)
        or _exceeds(env.facts.num("wan.jitter_ms"), t.jitter_ms)
    )


def _needed_upload(env: Env) -> float | None:
    need = env.facts.num("bw.needed_upload_mbps")
    if need is not None:
        return need
    kbps = sum(sum(d.streams_kbps) for d in env.site.devices)
    return kbps / 1000.0 * env.site.thresholds.upload_headroom if kbps else None


def _upload_short(env: Env) -> bool:
    up, need = env.facts.num("bw.upload_mbps"), _needed_upload(env)
    return up is not None and need is not None and up < need


def relogin_window_s(site: Site) -> float:
    """How long devices may stay grey after an outage while they log in again one by one, s.

    Public: the monitor exports it, and the alert rules page for a device grey for longer.
    """
    n = sum(1 for d in site.devices if d.added_via in P2P_VIA) or 1
    return RELOGIN_HEARTBEATS * site.profile.heartbeat_interval_s + LOGIN_SLOT_S * n


def _relogin_window_s(env: Env) -> float:
    return relogin_window_s(env.site)


def _recent_outage_end(env: Env, device: str) -> dt.datetime | None:
    """End of the latest finished outage of the device or the site link, if any."""
    if env.history is None:
        return None
    ends: list[dt.datetime] = []
    for name in (device, SITE):
        try:
            out = env.history.last_outage(name)
        except Exception:
            # A broken history must not stop the diagnosis; the cause just isn't found.
            out = None
        if out is None:
            continue
        if out[1] is not None:
            ends.append(out[1])
        elif _back_now(env, name):
            # The history still holds the outage open (its last sample was down) but this run
            # sees the link back: the outage ended just now.
            ends.append(env.now)
    return max(ends) if ends else None


def _back_now(env: Env, name: str) -> bool:
    # Only the link: a device's recorded outage follows its verdict, which stays "offline" while
    # it logs in again, so "reachable now" cannot tell "just back" from "back long ago".
    return name == SITE and env.facts.flag("wan.internet_reachable") is True


def _config_fact(key: str, value: Any, target: str, unit: str = "") -> Fact:
    """Evidence that comes from the site config or the history rather than from a check."""
    return Fact(key, value, unit, target)


def _ip_of(hostport: str | None) -> str | None:
    if not hostport:
        return None
    host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport
    return host.strip("[]")


def _in_cgnat(addr: str | None) -> bool:
    try:
        return addr is not None and ipaddress.ip_address(addr) in CGNAT_NET
    except ValueError:
        return False


def _foreign_vids(env: Env) -> list[int]:
    """VLAN ids seen tagged on the laptop's port that are not its own port VLAN."""
    pvid = as_num(env.facts.mapping("lldp.neighbor").get("pvid"))
    tags = env.facts.value("vlan.tags_seen")
    vids: list[int] = []
    if isinstance(tags, list):
        for t in tags:
            vid = as_num(t.get("vid")) if isinstance(t, dict) else None
            if vid is not None and vid != pvid and int(vid) not in vids:
                vids.append(int(vid))
    return vids


def _vid_of_mac(env: Env, mac: str | None) -> int | None:
    if not mac:
        return None
    tags = env.facts.value("vlan.tags_seen")
    if isinstance(tags, list):
        for t in tags:
            if not isinstance(t, dict):
                continue
            macs = t.get("macs")
            vid = as_num(t.get("vid"))
            if isinstance(macs, list) and vid is not None:
                if mac.lower() in {str(m).lower() for m in macs}:
                    return int(vid)
    return None


# ---------------------------------------------------------------------------------------------
# Device rules


def _device_no_power(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    if f.flag("device.reachable", d.name) is not False:
        return None
    if f.strings("device.arp_macs", d.name):
        return None  # something answers ARP for it: not a dead device
    if f.num("vlan.device_vid", d.name) is not None or _vid_of_mac(env, d.mac) is not None:
        return None  # its frames are seen, tagged: vlan-misconfig
    conf = 0.85
    seen = f.num("device.platform_last_seen_s", d.name)
    hb = env.site.profile.heartbeat_interval_s
    if f.flag("device.platform_online", d.name) is True and (seen is None or seen <= 0.5 * hb):
        # The platform heard it moments ago (the LAN probes ran in the same seconds): powered,
        # just not reachable from here. Heard longer ago, "online" is only the platform not
        # having timed it out yet (2.5 intervals): a device that just went off looks so.
        conf = 0.3
    elif _foreign_vids(env):
        conf = 0.55  # tagged frames of unknown origin: it may sit in another VLAN
    return Hit(
        conf,
        shows=("device.silent",),
        detail=msg(
            "{device} ({address}) answered neither ARP, ping nor any of its service ports",
            device=d.name,
            address=d.address or "?",
        ),
    )


def _vlan_misconfig(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    unreachable = (
        f.flag("device.reachable", d.name) is False
        or f.flag("vlan.device_l2_unreachable", d.name) is True
    )
    vid_num = f.num("vlan.device_vid", d.name)
    vid = int(vid_num) if vid_num is not None else _vid_of_mac(env, d.mac)
    pvid = as_num(f.mapping("lldp.neighbor").get("pvid"))
    evidence = f.pick(
        ("device.reachable", "vlan.device_l2_unreachable", "vlan.device_vid"), d.name
    ) + f.pick(("vlan.tags_seen", "lldp.neighbor"), "")
    if vid is not None and pvid is not None and vid == pvid:
        return None  # tagged with the site's own VLAN: nothing wrong with the VLAN
    if vid is not None:
        detail = (
            msg(
                "{device}'s frames are tagged with VLAN {vid}; the laptop's switch port is in "
                "VLAN {pvid}",
                device=d.name,
                vid=vid,
                pvid=int(pvid),
            )
            if pvid is not None
            else msg(
                "{device}'s frames are tagged with VLAN {vid}, not the site's VLAN",
                device=d.name,
                vid=vid,
            )
        )
        return Hit(
            0.9 if unreachable else 0.4,
            evidence,
            detail,
            shows=("device.tagged", "device.silent") if unreachable else ("device.tagged",),
        )
    foreign = _foreign_vids(env)
    if unreachable and foreign and not f.strings("device.arp_macs", d.name):
        return Hit(
            0.6,
            evidence,
            shows=("device.tagged", "device.silent"),
            detail=msg(
                "{device} does not answer on the local network, and frames of VLAN {vids} are "
                "seen on this port",
                device=d.name,
                vids=", ".join(str(v) for v in foreign),
            ),
        )
    return None


def _ip_conflict(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    macs = sorted({m.lower() for m in f.strings("device.arp_macs", d.name)})
    if f.flag("device.ip_conflict", d.name) is True or len(macs) > 1:
        return Hit(
            0.9,
            shows=("device.two-macs",),
            detail=msg(
                "{count} network cards answer for {address}: {macs}",
                count=max(len(macs), 2),
                address=d.address or "?",
                macs=", ".join(macs) or "?",
            ),
        )
    if d.mac and macs and d.mac.lower() not in macs:
        return Hit(
            0.6,
            shows=("device.foreign-mac",),
            detail=msg(
                "{address} is answered by {macs}, not by the device's own MAC {mac}",
                address=d.address or "?",
                macs=", ".join(macs),
                mac=d.mac,
            ),
        )
    return None


def _clock_wrong(env: Env, d: Device | None) -> Hit | None:
    """The device's clock is off by more than ``thresholds.clock_skew_s``, or it keeps no time
    by NTP (off, no server, or no server it names answers SNTP) and its clock could not be
    compared (an API that gives local time only)."""
    assert d is not None
    f = env.facts
    offset = f.num("device.clock_offset_s", d.name)
    clock = f.mapping("device.clock", d.name)
    servers = [s for s in clock.get("ntp_servers") or [] if isinstance(s, str)]
    ntp = f.flag("device.ntp_enabled", d.name)
    # NTP on, but none of its servers gave the laptop a synchronized time: the clock drifts.
    ntp_dead = ntp is True and bool(servers) and f.flag("device.ntp_reachable", d.name) is False
    ntp_off = ntp is False or (ntp is True and not servers) or ntp_dead
    online = f.flag("device.platform_online", d.name)
    ntp_word = (
        msg("on, but its server does not answer")
        if ntp_dead
        else msg("off")
        if ntp_off
        else msg("on")
        if ntp is True
        else msg("unknown")
    )
    if offset is not None and abs(offset) > env.site.thresholds.clock_skew_s:
        minutes = round(abs(offset) / 60)
        detail = (
            msg(
                "{device}'s clock is {minutes} min ahead of the laptop's (NTP {ntp})",
                device=d.name,
                minutes=minutes,
                ntp=ntp_word,
            )
            if offset > 0
            else msg(
                "{device}'s clock is {minutes} min behind the laptop's (NTP {ntp})",
                device=d.name,
                minutes=minutes,
                ntp=ntp_word,
            )
        )
        if online is True:
            # The cloud takes it anyway (this platform does not check): a note, not the cause.
            return Hit(0.45, detail=detail, effect="none")
        return Hit(0.9 if online is False or d.added_via == "ip" else 0.75, detail=detail)
    if offset is None and ntp_dead and online is not True:
        return Hit(
            0.4,
            detail=msg(
                "{device} sets its clock by NTP from {servers}, which does not answer, and its "
                "clock could not be compared",
                device=d.name,
                servers=", ".join(servers),
            ),
        )
    if offset is None and ntp_off and online is not True:
        return Hit(
            0.4,
            detail=msg(
                "{device} keeps no time by NTP and its clock could not be compared", device=d.name
            ),
        )
    return None


def _address_changed(env: Env, d: Device | None) -> Hit | None:
    """The device's MAC (the site file's, or the one an earlier run learnt at its address) answers
    at another address and not at its own: DHCP moved it."""
    assert d is not None
    seen = env.facts.text("device.seen_at", d.name)
    if not seen or seen == d.address:
        return None
    was = env.facts.mapping("device.mac_learnt", d.name)
    learnt_mac, learnt_on = was.get("mac"), was.get("learnt")
    if not d.mac and isinstance(learnt_mac, str) and isinstance(learnt_on, str):
        detail = msg(
            "{device}'s network card ({mac}, learnt on {date} at {old}) now answers at {new}",
            device=d.name,
            mac=learnt_mac,
            date=learnt_on,
            new=seen,
            old=d.address or "?",
        )
    else:
        detail = msg(
            "{device}'s network card ({mac}) now answers at {new}, not at {old}",
            device=d.name,
            mac=d.mac or "?",
            new=seen,
            old=d.address or "?",
        )
    if d.added_via == "ip":
        return Hit(0.9, detail=detail, effect="offline")
    # The app finds P2P devices by serial, wherever they are: only the site file is out of date.
    return Hit(0.8, detail=detail, effect="none")


def _password_changed(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    if env.facts.text("device.auth", d.name) != "rejected":
        return None
    user = d.credentials.username if d.credentials else "?"
    return Hit(
        0.9,
        detail=msg("{device} rejected the login of user {user}", device=d.name, user=user),
    )


def _p2p_disabled(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    settings = f.mapping("device.settings", d.name)
    enabled = settings.get("p2p_enabled")
    if enabled is False:
        return Hit(
            0.9,
            detail=msg("{device}'s own settings say its P2P service is off", device=d.name),
            shows=("device.p2p-off",),
        )
    if enabled is True:
        return None
    if f.flag("device.reachable", d.name) is not True:
        return None
    if f.flag("device.platform_online", d.name) is not False:
        return None
    if _platform_reachable(env) is not True:
        return None  # the site itself cannot reach the platform: a site cause
    # Any site cause that keeps heartbeats away (blocking, UDP, short NAT mappings, a lossy
    # link or radio bridge, a relogin) predicts this symptom too and explains it away.
    conf = 0.7
    seen = f.num("device.platform_last_seen_s", d.name)
    detail = (
        msg(
            "{device} answers on the local network and the site reaches the platform, but the "
            "platform last heard its heartbeat {seconds} s ago",
            device=d.name,
            seconds=round(seen),
        )
        if seen is not None
        else msg(
            "{device} answers on the local network and the site reaches the platform, but the "
            "platform hears no heartbeat from it",
            device=d.name,
        )
    )
    return Hit(conf, detail=detail, shows=("device.no-heartbeat",))


def _net_config(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    if f.flag("device.reachable", d.name) is False:
        return None
    settings = f.mapping("device.settings", d.name)
    dev_gw = settings.get("gateway") if isinstance(settings.get("gateway"), str) else None
    dns = [x for x in settings.get("dns", []) if isinstance(x, str)] if settings else []
    site_gw = _site_gateway(env)
    gw_mismatch = bool(dev_gw and site_gw and dev_gw != site_gw)
    if f.flag("device.gateway_ok", d.name) is not False and not gw_mismatch:
        return None
    if gw_mismatch:
        detail = msg(
            "{device} uses gateway {device_gateway}; the site's gateway is {site_gateway}",
            device=d.name,
            device_gateway=dev_gw,
            site_gateway=site_gw,
        )
        shows: tuple[str, ...] = ("device.gateway-wrong",)
    else:
        detail = msg(
            "{device}'s gateway or DNS ({gateway}; DNS {dns}) gives it no way to the internet",
            device=d.name,
            gateway=dev_gw or "?",
            dns=", ".join(dns) or "-",
        )
        # Its DNS is the site's own resolver (or the router): when that is dead for everyone,
        # the site's dns-failure accounts for it; any other DNS server is its own setting.
        shared = {x for x in (site_gw, env.site.network.site_resolver) if x}
        shared.update(x for x in (env.facts.text("dns.resolver.site"),) if x)
        if set(dns) <= shared:
            # Its settings are the site's own (right gateway, the site's resolver): what failed
            # is the resolver the laptop asked for it, a site matter (or a query lost under
            # load), not this device's configuration: a note.
            return Hit(
                SITE_SETTINGS_NOTE,
                detail=detail,
                effect="none",
                shows=("device.dns-dead", "device.no-path-out"),
            )
        shows = ("device.gateway-wrong",)
    return Hit(0.85, detail=detail, shows=shows)


def _radio_link(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    t = env.site.thresholds
    if f.flag("device.reachable", d.name) is False:
        return None
    loss = f.num("device.icmp_loss_pct", d.name)
    jitter = f.num("device.jitter_ms", d.name)
    n = _probes(env, "device.icmp_probes", d.name)
    # Loss counts by the lower end of its interval: one echo lost in twenty is no radio fault.
    loss_low = rate_interval_pct(loss, n)[0] if loss is not None else None
    # Jitter counts beyond what the other devices show: the same spread everywhere is the
    # laptop's own (a loaded CPU, its own Wi-Fi), not this device's radio link.
    other_jitter = sorted(
        j
        for x in env.site.devices
        if x.name != d.name
        and f.flag("device.reachable", x.name) is not False
        and (j := f.num("device.jitter_ms", x.name)) is not None
    )
    base = other_jitter[len(other_jitter) // 2] if other_jitter else 0.0
    jitter_low = spread_low(jitter, n) - base if jitter is not None else None
    if not (_exceeds(loss_low, t.loss_pct) or _exceeds(jitter_low, t.jitter_ms)):
        return None
    others = [
        x
        for x in env.site.devices
        if x.name != d.name and f.num("device.icmp_loss_pct", x.name) is not None
    ]
    lossy_others = [
        x
        for x in others
        if _exceeds(
            _low_pct(
                f.num("device.icmp_loss_pct", x.name), _probes(env, "device.icmp_probes", x.name)
            ),
            t.loss_pct,
        )
    ]
    conf = 0.8
    if others and len(lossy_others) == len(others):
        conf = 0.45  # every device loses packets: more likely the laptop's own link
    if f.flag("wan.gateway_reachable") is False:
        conf = min(conf, 0.4)
    lost = loss if loss is not None else 0.0
    return Hit(
        conf,
        evidence=f.pick(("device.icmp_loss_pct", "device.rtt_ms", "device.jitter_ms"), d.name)
        + f.pick(("wan.gateway_reachable", "wan.gateway_rtt_ms"), ""),
        detail=msg(
            "{loss} % of pings to {device} were lost on the local network (jitter {jitter} ms), "
            "while the router answers",
            loss=lost,
            device=d.name,
            jitter=jitter if jitter is not None else "?",
        ),
        effect="offline" if lost >= 50 else "degraded",
        shows=("device.lan-loss",),
    )


def _ip_access_broken(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    f = env.facts
    matches = f.flag("ddns.matches_public", d.name)
    if matches is False and d.address and d.address in f.strings("ddns.resolved", d.name):
        matches = True  # no NAT: the name points at the device's own (public) address
    public_ip = f.text("wan.public_ip") or "?"
    no_mapping = False
    if d.public_port and f.flag("upnp.present") is True:
        maps = f.value("upnp.mappings")
        if isinstance(maps, list):
            ports = {as_num(m.get("external_port")) for m in maps if isinstance(m, dict)}
            no_mapping = float(d.public_port) not in ports
    evidence = f.pick(("ddns.resolved", "ddns.matches_public"), d.name) + f.pick(
        ("wan.public_ip", "upnp.mappings"), ""
    )
    if matches is False:
        resolved = ", ".join(f.strings("ddns.resolved", d.name)) or "-"
        conf = 0.9 if no_mapping else 0.85
        if f.flag("device.reachable", d.name) is False:
            conf = 0.5  # the device itself is down on the LAN: fix that first
        return Hit(
            conf,
            evidence,
            shows=("device.ddns-stale",),
            detail=msg(
                "{host} resolves to {resolved}, but the site's public address is {public_ip}",
                host=d.public_host or "?",
                resolved=resolved,
                public_ip=public_ip,
            ),
        )
    if no_mapping:
        # Most installers forward ports statically, which UPnP does not show: only a hint,
        # wrong far more often than right (every campaign lab has a static forward).
        return Hit(
            0.05,
            evidence,
            msg(
                "The router has no UPnP mapping for port {port} (a static forward may still exist)",
                port=d.public_port,
            ),
        )
    return None


def _share_expired(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    if d.share_expires is None or d.share_expires >= env.today:
        return None
    days = (env.today - d.share_expires).days
    return Hit(
        1.0,
        (_config_fact("config.share_expires", d.share_expires.isoformat(), d.name),),
        msg(
            "The share ended on {date} ({days} days ago)",
            date=d.share_expires.isoformat(),
            days=days,
        ),
        effect="offline",
        shows=("device.share-ended",),
    )


def _share_expires_soon(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    if d.share_expires is None or d.share_expires < env.today:
        return None
    days = (d.share_expires - env.today).days
    if days > env.site.thresholds.share_warn_days:
        return None
    # A warning, not a cause of a grey icon today: stays below 0.5 so it never alarms.
    return Hit(
        0.3,
        (
            _config_fact("config.share_expires", d.share_expires.isoformat(), d.name),
            _config_fact("config.share_days_left", days, d.name, "d"),
        ),
        msg(
            "The share ends on {date}, in {days} days: ask the owner to extend it",
            date=d.share_expires.isoformat(),
            days=days,
        ),
        effect="none",
    )


def _share_not_possible(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    return Hit(
        0.2,
        (_config_fact("config.added_via", d.added_via, d.name),),
        msg("{device} was added by P2P without an account", device=d.name),
        effect="none",
    )


def _relogin_delay(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    end = _recent_outage_end(env, d.name)
    if end is None:
        return None
    since = (env.now - end).total_seconds()
    window = _relogin_window_s(env)
    if since < 0 or since > window:
        return None
    online = env.facts.flag("device.platform_online", d.name)
    if online is True:
        return None  # already back
    return Hit(
        0.8 if online is False else 0.6,
        (
            _config_fact("history.outage_end", end.isoformat(), d.name),
            _config_fact("history.since_outage_s", round(since, 1), d.name, "s"),
            *env.facts.pick(("device.platform_online", "device.platform_last_seen_s"), d.name),
        ),
        msg(
            "The outage ended {seconds} s ago; logging in again may take up to {window} s",
            seconds=round(since),
            window=round(window),
        ),
        shows=("device.outage-just-ended", "device.no-heartbeat"),
    )


@dataclass(frozen=True)
class PhoneFinding:
    """One phone-side problem the phone's own measurements show (``diag phone``)."""

    id: str  # a key of catalog.PHONE_MEASURED_FIX
    detail: Message
    evidence: tuple[Fact, ...]
    confidence: float


def phone_findings(env: Env) -> list[PhoneFinding]:
    """What the phone measured that keeps the app from showing devices (pure, facts only)."""
    f = env.facts
    out: list[PhoneFinding] = []

    def add(fid: str, conf: float, keys: tuple[str, ...], detail: Message) -> None:
        out.append(PhoneFinding(fid, detail, f.pick(keys, ""), conf))

    pct, charging = f.num("phone.battery_pct"), f.flag("phone.battery_charging")
    if pct is not None and pct <= PHONE_BATTERY_LOW_PCT and charging is not True:
        add("battery-low", 0.7, ("phone.battery_pct", "phone.battery_charging"), msg(
            "The phone's battery is at {pct} % and not charging: its battery saver is likely "
            "on and stops the app in the background",
            pct=pct,
        ))  # fmt: skip
    if f.flag("phone.save_data") is True:
        add("data-saver", 0.8, ("phone.save_data",), msg(
            "Data saver is on on the phone: it cuts the app's background data"
        ))  # fmt: skip
    on_lan = f.flag("phone.on_site_lan")
    where = (
        msg("the phone is on the site's network")
        if on_lan is True
        else msg("the phone is on another network than the site's")
        if on_lan is False
        else msg("the phone's network is not known")
    )
    if f.flag("phone.udp_blocked") is True:
        add("udp-blocked", 0.85, ("phone.udp_blocked", "phone.stun_answered", "phone.on_site_lan"),
            msg(
            "No STUN server answered the phone over UDP ({where}): its network blocks UDP, so "
            "the app cannot reach the cameras directly, only through the relay",
            where=where,
        ))  # fmt: skip
    elif f.text("phone.nat_mapping") == "dependent":
        add("symmetric-nat", 0.6, ("phone.nat_mapping", "phone.srflx", "phone.on_site_lan"), msg(
            "The phone's network gives every server another public port (symmetric NAT, "
            "{where}): direct connections to the cameras fail and the app falls back to the "
            "relay, slower and prone to time-outs",
            where=where,
        ))  # fmt: skip
    if f.flag("phone.platform_reachable") is False:
        urls = [x.target for x in f.all("phone.endpoint")]
        add("no-platform", 0.85, ("phone.platform_reachable", "phone.on_site_lan"), msg(
            "The phone does not reach the platform's servers ({urls}), {where}",
            urls=", ".join(urls) or "?",
            where=where,
        ))  # fmt: skip
        out[-1] = PhoneFinding(
            out[-1].id,
            out[-1].detail,
            out[-1].evidence + tuple(f.all("phone.endpoint")),
            out[-1].confidence,
        )
    off = f.num("phone.clock_offset_s")
    if off is not None and abs(off) > PHONE_CLOCK_MAX_S:
        add("clock", 0.8, ("phone.clock_offset_s", "phone.clock_uncertainty_s"), msg(
            "The phone's clock is {seconds} s {direction} the laptop's: logins to the platform "
            "fail with a clock this far off",
            seconds=round(abs(off)),
            direction=msg("ahead of") if off > 0 else msg("behind"),
        ))  # fmt: skip
    if f.text("phone.effective_type") in PHONE_SLOW_TYPES:
        add("slow-link", 0.6, ("phone.effective_type", "phone.downlink_mbps", "phone.rtt_ms"), msg(
            "The phone's browser rates its connection as {type}: too slow for video",
            type=f.text("phone.effective_type") or "?",
        ))  # fmt: skip
    return out


def _join(messages: list[Message]) -> Message:
    out = messages[0]
    for m in messages[1:]:
        out = msg("{first}; {second}", first=out, second=m)
    return out


def _phone_hit(findings: list[PhoneFinding], bonus: float = 0.0) -> Hit:
    fixes = tuple(dict.fromkeys(s for x in findings for s in PHONE_MEASURED_FIX.get(x.id, ())))
    evidence: list[Fact] = []
    for e in (e for x in findings for e in x.evidence):
        if e not in evidence:  # facts may hold lists and dicts: compared, never hashed
            evidence.append(e)
    conf = min(0.95, max(x.confidence for x in findings) + bonus)
    return Hit(
        conf,
        tuple(evidence),
        _join([x.detail for x in findings]),
        fix=fixes,
        shows=("phone.measured",),
    )


def _phone_measured(env: Env, _d: Device | None) -> Hit | None:
    """Site rule: the phone's own measurements show a phone-side problem."""
    findings = phone_findings(env)
    return _phone_hit(findings) if findings else None


def phone_checklist(env: Env) -> tuple[str, ...]:
    """The phone-side steps nothing measured (all of them without a phone result)."""
    return tuple(
        item.step
        for item in PHONE_CHECKLIST
        if not any(env.facts.value(k) is not None for k in item.measured_by)
    )


def _phone_side(env: Env, d: Device | None) -> Hit | None:
    assert d is not None
    if d.app_shows_grey is not True:
        return None
    f = env.facts
    if (
        f.flag("device.reachable", d.name) is False
        or f.flag("device.platform_online", d.name) is False
    ):
        return None
    strong = [c for c in env.found.get(d.name, ()) if c.confidence >= 0.5]
    strong += [c for c in env.found.get(SITE, ()) if c.confidence >= 0.5 and c.id != "phone-side"]
    if strong:
        return None
    findings = phone_findings(env)
    if findings:
        # The site is fine, the device is online, and the phone showed why it cannot see it.
        return _phone_hit(findings, bonus=0.1)
    return Hit(
        0.6,
        (
            _config_fact("config.app_shows_grey", True, d.name),
            *f.pick(("device.reachable", "device.platform_online"), d.name),
        ),
        msg(
            "The site looks healthy and {device} answers, yet the app shows it grey",
            device=d.name,
        )
        if f.status("phone") not in ("ok", "warn")
        else msg(
            "The site looks healthy and {device} answers, yet the app shows it grey; the "
            "phone's measurements show nothing wrong, so check what a browser cannot measure",
            device=d.name,
        ),
        shows=("device.app-grey",),
        fix=phone_checklist(env),
    )


# ---------------------------------------------------------------------------------------------
# Site rules


def _link_outage(env: Env, _d: Device | None) -> Hit | None:
    f = env.facts
    inet = f.flag("wan.internet_reachable")
    walled = f.flag("wan.captive_portal") is True or f.flag("wan.only_dns_passes") is True
    if inet is None and _beyond_answers(env) is False:
        # The wan check said nothing (out of time under load); every other probe beyond the
        # operator went unanswered.
        return Hit(
            0.7,
            f.pick(BEYOND_KEYS, None),
            msg("No internet host answers"),
            shows=("internet.down",),
        )
    gw = f.flag("wan.gateway_reachable")
    gateway = _site_gateway(env) or "?"
    if inet is False and not walled:
        if gw is True:
            rtt = f.num("wan.gateway_rtt_ms")
            return Hit(
                0.9,
                shows=("internet.down",),
                detail=msg(
                    "The router {gateway} answers ({rtt} ms), but no internet host does",
                    gateway=gateway,
                    rtt=rtt if rtt is not None else "?",
                ),
            )
        if gw is False:
            return Hit(
                0.55,
                shows=("internet.down", "gateway.silent"),
                detail=msg(
                    "Not even the router {gateway} answers: check the laptop's connection and "
                    "the router",
                    gateway=gateway,
                ),
            )
        return Hit(0.7, detail=msg("No internet host answers"), shows=("internet.down",))
    if inet is True and env.history is not None:
        try:
            out = env.history.last_outage(SITE)
        except Exception:
            out = None
        if out is not None and out[1] is not None:
            ago = (env.now - out[1]).total_seconds()
            if 0 <= ago <= RECENT_OUTAGE_S:
                return Hit(
                    0.35,
                    (
                        _config_fact("history.outage_start", out[0].isoformat(), SITE),
                        _config_fact("history.outage_end", out[1].isoformat(), SITE),
                    ),
                    msg(
                        "The link was down from {start} to {end}",
                        start=out[0].strftime("%H:%M:%S"),
                        end=out[1].strftime("%H:%M:%S"),
                    ),
                    effect="none",
                    shows=("history.link-outage",),
                )
    return None


def _data_plan(env: Env, _d: Device | None) -> Hit | None:
    f = env.facts
    captive = f.flag("wan.captive_portal") is True
    only_dns = f.flag("wan.only_dns_passes") is True
    if not (captive or only_dns):
        return None
    redirect = f.text("wan.http_redirect")
    if redirect:
        detail = msg("Web requests are redirected to {url}", url=redirect)
    elif captive:
        detail = msg("A captive portal answers instead of the internet")
    else:
        detail = msg("DNS answers, but nothing else passes")
    return Hit(0.95 if captive and only_dns else 0.9, detail=detail, shows=("internet.walled",))


def _server_unavailable(env: Env, _d: Device | None) -> Hit | None:
    f = env.facts
    # A server whose name did not resolve was never probed: that is the resolver's silence (the
    # dns rule's), not the platform's.
    servers = [
        x
        for x in f.all("p2p.reachable")
        if isinstance(x.value, bool) and f.text("p2p.error", x.target) != "dns"
    ]
    if not servers:
        return None
    down = [x.target for x in servers if x.value is False]
    if not down:
        return None
    inet = _internet_up(env)
    if inet is False:
        return None  # link outage or walled garden explain it
    evidence = f.pick(("p2p.reachable", "p2p.error", "wan.internet_reachable"), None)
    names = ", ".join(down)
    if len(down) < len(servers):
        return Hit(
            0.35,
            evidence,
            msg("Some of the platform's servers do not answer: {servers}", servers=names),
            effect="degraded",
            shows=("platform.partial",),
        )
    # DNS failure and port blocking predict a silent platform too; they explain this away
    # when their own symptoms (a lying resolver, probes dying at a hop) are there.
    conf = 0.85 if inet is True else 0.6
    return Hit(
        conf,
        evidence,
        msg(
            "None of the platform's servers answer ({servers}); other internet hosts do",
            servers=names,
        ),
        shows=("platform.silent",),
    )


def _blocking(where: str) -> Predicate:
    def predicate(env: Env, _d: Device | None) -> Hit | None:
        f = env.facts
        blocked = _blocked_ports(env, where)
        unknown = _blocked_ports(env, "unknown") if where == "router" else []
        if not blocked and not unknown:
            return None
        passes = any(x.value is True for x in f.all("port.open")) or _internet_up(env) is True
        targets = [x.target for x in (blocked or unknown)]
        evidence: tuple[Fact, ...] = ()
        for t in targets:
            evidence += f.pick(("port.open", "port.blocked_at", "port.blocked_hop"), t)
        hops = sorted({int(h) for t in targets if (h := f.num("port.blocked_hop", t)) is not None})
        hop = ", ".join(str(h) for h in hops) or "?"
        ports = ", ".join(targets)
        udp_only = all(t.endswith("/udp") for t in targets)
        if not blocked:
            # The probes die, but where is unknown: a hint, not a verdict.
            return Hit(
                0.45,
                evidence,
                msg("{ports} blocked somewhere on the way (hop unknown)", ports=ports),
                shows=("ports.blocked-unknown",),
            )
        if where == "router":
            detail = msg("{ports} blocked at the site's router (hop {hop})", ports=ports, hop=hop)
        else:
            detail = msg(
                "{ports} pass the site's router and are blocked in the operator's network "
                "(hop {hop})",
                ports=ports,
                hop=hop,
            )
        conf = 0.88 if passes else 0.6
        shows: tuple[str, ...] = (
            f"ports.blocked-{where}-udp" if udp_only else f"ports.blocked-{where}",
        )
        if all(f.flag("port.address_matches_independent", t) is False for t in targets):
            # The site resolver sent every probe to an address the independent resolver does not
            # give: the "block" is a dead address, which only the resolver's answer shows.
            conf = min(conf, 0.3)
            shows = ("ports.dead-address",)
        refs = [f.flag("port.reference_passes", t) for t in targets]
        if False in refs and True not in refs:
            # The walk's reference (a destination that should pass) died too: the measurement
            # shows a dead path, not a port filter.
            conf = min(conf, 0.35)
        dark = _dark_hosts(env)
        if where != "router" and passes and all(_port_host(env, t) in dark for t in targets):
            # Every port of the host is silent while other hosts answer: operators block ports,
            # not hosts (base rate); the host being down comes first.
            conf = min(conf, HOST_DARK_BLOCKING)
            shows = ("ports.host-dark",)
        return Hit(conf, evidence, detail, shows=shows)

    return predicate


def _dns_symptom(rcode: str) -> str:
    """A resolver that says no (SERVFAIL, REFUSED) fails; one that does not answer may be the
    path losing its packets (a lossy link predicts that too)."""
    return "dns.site-timeout" if rcode.upper() in ("TIMEOUT", "NO-ANSWER", "") else "dns.site-fails"


def _dns_hit(env: Env) -> Hit | None:
    f = env.facts
    site_res = f.text("dns.resolver.site") or "?"
    ind_res = f.text("dns.resolver.independent")
    best: Hit | None = None

    def better(h: Hit) -> None:
        nonlocal best
        if best is None or (h.confidence or 0) > (best.confidence or 0):
            best = h

    inet = _internet_up(env)
    for rc in f.all("dns.site.rcode"):
        name = rc.target
        site_rc = rc.value if isinstance(rc.value, str) else None
        ind_rc = f.text("dns.independent.rcode", name)
        ev = f.pick(
            (
                "dns.site.rcode",
                "dns.independent.rcode",
                "dns.site.answer",
                "dns.independent.answer",
                "dns.site.time_ms",
                "dns.mismatch",
                "dns.site.slow",
            ),
            name,
        ) + f.pick(("dns.resolver.site", "dns.resolver.independent"), "")
        if site_rc and site_rc != RCODE_OK and ind_rc == RCODE_OK:
            better(
                Hit(
                    0.9,
                    ev,
                    shows=(_dns_symptom(site_rc),),
                    detail=msg(
                        "The site's resolver {resolver} answers {rcode} for {name}; the "
                        "independent resolver {independent} answers {answer}",
                        resolver=site_res,
                        rcode=site_rc,
                        name=name,
                        independent=ind_res or "?",
                        answer=", ".join(f.strings("dns.independent.answer", name)) or "-",
                    ),
                )
            )
        elif (
            f.flag("dns.mismatch", name) is True
            and f.strings("dns.site.answer", name)
            and f.strings("dns.independent.answer", name)
        ):
            # Two answers that differ; an empty one (a lost query) is no lie.
            better(
                Hit(
                    0.85,
                    ev,
                    shows=("dns.site-lies",),
                    detail=msg(
                        "The site's resolver {resolver} answers {site_answer} for {name}, the "
                        "independent resolver {independent} answers {independent_answer}",
                        resolver=site_res,
                        site_answer=", ".join(f.strings("dns.site.answer", name)) or "-",
                        name=name,
                        independent=ind_res or "?",
                        independent_answer=", ".join(f.strings("dns.independent.answer", name))
                        or "-",
                    ),
                )
            )
        elif site_rc and site_rc != RCODE_OK and ind_rc is None and not ind_res and inet:
            # No independent resolver to compare with, but the internet works.
            better(
                Hit(
                    0.6,
                    ev,
                    shows=(_dns_symptom(site_rc),),
                    detail=msg(
                        "The site's resolver {resolver} answers {rcode} for {name}",
                        resolver=site_res,
                        rcode=site_rc,
                        name=name,
                    ),
                )
            )
        elif f.flag("dns.site.slow", name) is True and _slower_than_independent(env, name):
            better(
                Hit(
                    0.55 if _slow_names(env) >= SLOW_NAMES else SLOW_NOTE,
                    ev,
                    shows=("dns.site-slow",),
                    detail=msg(
                        "The site's resolver {resolver} took {ms} ms to answer for {name}",
                        resolver=site_res,
                        ms=f.num("dns.site.time_ms", name) or "?",
                        name=name,
                    ),
                    effect="degraded",
                )
            )
    return best


def _slow_names(env: Env) -> int:
    """How many of the names asked the site's resolver answered slowly by itself."""
    return sum(
        1
        for x in env.facts.all("dns.site.slow")
        if x.value is True and _slower_than_independent(env, x.target)
    )


def _slower_than_independent(env: Env, name: str) -> bool:
    """The site resolver is slow by itself, not just because the path to any resolver is."""
    site_ms = env.facts.num("dns.site.time_ms", name)
    ind_ms = env.facts.num("dns.independent.time_ms", name)
    if site_ms is None or ind_ms is None:
        return True
    # Both equally slow means a slow path (e.g. an LTE link), which wan-loss-latency covers.
    return site_ms > 2 * ind_ms and site_ms - ind_ms > env.site.thresholds.dns_ms / 2


def _dns_failure(env: Env, _d: Device | None) -> Hit | None:
    return _dns_hit(env) or _platform_names_unresolved(env)


def _platform_names_unresolved(env: Env) -> Hit | None:
    """Platform servers whose names did not resolve through the site's resolver in the p2p
    check (each lookup with its retry), while the internet answers and the independent resolver
    does too: the resolver is failing, even when the dns check's own questions got through."""
    f = env.facts
    servers = f.all("p2p.reachable")
    unresolved = [x.target for x in servers if f.text("p2p.error", x.target) == "dns"]
    if not unresolved or _internet_up(env) is not True:
        return None
    site_rc = f.all("dns.site.rcode")
    if any(x.value != RCODE_OK for x in f.all("dns.independent.rcode")):
        return None  # the independent resolver fails too: not the site's resolver alone
    # The dns check saw the site's resolver struggle too (slow, failed or an empty answer), or
    # said nothing (out of time): a lookup the p2p check lost under load alone is not enough.
    struggled = not site_rc or any(
        x.value != RCODE_OK
        or f.flag("dns.site.slow", x.target) is True
        or getattr(f.get("dns.site.answer", x.target), "value", None) == []
        for x in site_rc
    )
    if not struggled:
        return None
    return Hit(
        0.6,
        f.pick(("p2p.reachable", "p2p.error", *BEYOND_KEYS), None),
        msg(
            "The platform's names for {servers} did not resolve through the site's resolver "
            "{resolver}; other internet hosts answer",
            servers=", ".join(unresolved),
            resolver=f.text("dns.resolver.site") or env.site.network.site_resolver or "?",
        ),
        shows=("dns.site-timeout",),
    )


def _digits(value: float | None) -> str:
    return "?" if value is None else str(int(value))


def _mtu_blackhole(env: Env, _d: Device | None) -> Hit | None:
    """Large packets vanish without ICMP while small ones pass (DF probes or a TCP stall)."""
    f = env.facts
    if f.flag("mtu.blackhole") is not True:
        return None
    ev = f.pick(
        ("mtu.path_mtu", "mtu.smallest_lost", "mtu.icmp_error", "mtu.tcp_acked_bytes",
         "mtu.tcp_stalled"),
        None,
    )  # fmt: skip
    both = f.flag("mtu.tcp_stalled") is True and f.num("mtu.smallest_lost") is not None
    return Hit(
        0.95 if both else 0.85,
        ev,
        msg(
            "Packets above {size} bytes to the platform get no answer and no ICMP error; "
            "{acked} of 32768 bytes of a TCP transfer were acknowledged",
            # Sizes as plain digits: "1398 bytes", not "1,398".
            size=_digits(f.num("mtu.path_mtu")),
            acked=_digits(f.num("mtu.tcp_acked_bytes")),
        ),
    )


def _profile_wrong(env: Env, _d: Device | None) -> Hit | None:
    """Both resolvers say a platform name does not exist: the name is wrong, not the DNS."""
    f = env.facts
    missing = [
        rc.target
        for rc in f.all("dns.site.rcode")
        if rc.value == "NXDOMAIN" and f.text("dns.independent.rcode", rc.target) == "NXDOMAIN"
    ]
    if not missing:
        return None
    ev: list[Fact] = []
    for name in missing:
        ev += f.pick(("dns.site.rcode", "dns.independent.rcode"), name)
    ev += f.pick(("dns.resolver.site", "dns.resolver.independent"), "")
    return Hit(
        0.9,
        tuple(ev),
        msg(
            "The site's resolver and the independent resolver both say {names} does not exist",
            names=", ".join(missing),
        ),
    )


def _nat_unfriendly(env: Env, _d: Device | None) -> Hit | None:
    f = env.facts
    ev = f.pick(
        ("nat.udp_blocked", "nat.mapping", "nat.filtering", "nat.rfc3489", "upnp.present"), ""
    )
    if f.flag("nat.udp_blocked") is True:
        if _internet_up(env) is not True:
            return None  # nothing passes: link outage or walled garden, not UDP
        return Hit(
            0.85,
            ev,
            msg("No UDP answer from the STUN servers while TCP works: UDP is blocked"),
            effect="offline",
            shows=("udp.blocked",),
        )
    mapping = f.text("nat.mapping")
    classic = f.text("nat.rfc3489")
    filtering = f.text("nat.filtering") or "?"
    if mapping == "APDM" or (mapping is None and classic in ("Symmetric",)):
        conf = 0.65 if f.flag("upnp.present") is True else 0.75
        return Hit(
            conf,
            ev,
            msg(
                "The NAT is symmetric ({mapping} mapping, {filtering} filtering): a new port "
                "for every destination",
                mapping=mapping or classic or "?",
                filtering=filtering,
            ),
            shows=("nat.symmetric",),
        )
    if mapping == "ADM":
        return Hit(
            0.5,
            ev,
            msg(
                "The NAT maps per destination address ({mapping} mapping, {filtering} filtering)",
                mapping=mapping,
                filtering=filtering,
            ),
            shows=("nat.adm",),
        )
    return None


def _mapping_expires(env: Env) -> tuple[float, float] | None:
    life = env.facts.num("nat.mapping_lifetime_s")
    hb = env.facts.num("nat.heartbeat_interval_s") or env.site.profile.heartbeat_interval_s
    if life is not None and life < hb:
        return life, hb
    return None


def _mapping_expiry(env: Env, _d: Device | None) -> Hit | None:
    found = _mapping_expires(env)
    if found is None:
        return None
    life, hb = found
    return Hit(
        0.85,
        detail=msg(
            "The NAT forgot a UDP mapping after {lifetime} s; devices send a heartbeat every "
            "{heartbeat} s",
            lifetime=life,
            heartbeat=hb,
        ),
        shows=("nat.short-lifetime",),
    )


def _address_churn(env: Env, _d: Device | None) -> Hit | None:
    """Devices whose public address keeps changing at the platform: mappings expire."""
    if _mapping_expires(env) is not None:
        return None  # the measured lifetime says it better
    if env.facts.num("nat.mapping_lifetime_s") is not None:
        return None  # measured, and long enough
    churn = [
        f
        for f in env.facts.all("device.platform_address_changes")
        if (n := as_num(f.value)) is not None and n >= ADDRESS_CHURN
    ]
    if not churn:
        return None
    return Hit(
        0.8 if len(churn) >= 2 else 0.65,
        tuple(churn) + env.facts.pick(("nat.heartbeat_interval_s",), ""),
        msg(
            "The platform saw the public address of {devices} change again and again: the NAT "
            "drops their UDP mappings between heartbeats",
            devices=", ".join(f.target for f in churn),
        ),
        shows=("nat.address-churn",),
    )


def _cgnat(env: Env, _d: Device | None) -> Hit | None:
    f = env.facts
    mapped = _ip_of(f.text("nat.mapped_address"))
    wan = env.site.network.wan_address or f.text("upnp.external_ip")
    public = f.text("wan.public_ip") or mapped
    if _in_cgnat(wan) or _in_cgnat(public):
        return Hit(
            0.9,
            shows=("nat.shared-address",),
            detail=msg(
                "The site's address {address} is not a public address: the operator shares "
                "it (CGNAT)",
                address=wan if _in_cgnat(wan) else public,
            ),
        )
    double = f.flag("nat.double_nat") is True
    if double or f.flag("nat.cgnat") is True:
        detail = (
            msg(
                "Two NATs in a row: the router's WAN address {wan} differs from the public "
                "address {public}",
                wan=wan or "?",
                public=public or "?",
            )
            if double and wan
            else msg(
                "The site has no public address of its own (public address seen: {address})",
                address=public or "?",
            )
        )
        # The check's own verdict (it knows the private ranges) is as good as the address test.
        return Hit(
            0.9 if f.flag("nat.cgnat") is True else 0.8,
            detail=detail,
            shows=("nat.shared-address",),
        )
    return None


def _low_bandwidth(env: Env, _d: Device | None) -> Hit | None:
    up, need = env.facts.num("bw.upload_mbps"), _needed_upload(env)
    if up is None and need and _upload_timed_out(env):
        return Hit(
            0.65,
            env.facts.pick(("bw.upload_error", "bw.download_mbps", "bw.bufferbloat_ms"), ""),
            msg(
                "The upload test did not complete in its window while the download did: the "
                "upload is far below the {needed} Mbit/s the streams need",
                needed=round(need, 2),
            ),
            shows=("upload.very-slow",),
        )
    if up is None or need is None or need <= 0 or up >= need:
        return None
    if up * (1 + SPEEDTEST_TOLERANCE) >= need:
        # Within what one short transfer can tell from the need: a note, not a verdict.
        return Hit(
            0.3,
            env.facts.pick(("bw.upload_mbps", "bw.needed_upload_mbps"), ""),
            msg(
                "Upload {upload} Mbit/s, just below the {needed} Mbit/s the streams need (within "
                "the speed test's tolerance): run --deep for a longer test",
                upload=round(up, 2),
                needed=round(need, 2),
            ),
            effect="none",
            shows=("upload.slow",),
        )
    conf = 0.75 + 0.15 * (1 - up / need)
    # Packet loss throttles TCP, so a lossy link predicts a moderately slow upload (and explains
    # it away); nothing but a slow link cuts it below a quarter of the need.
    shows = ("upload.slow",) if up / need > VERY_SLOW_SHARE else ("upload.very-slow",)
    return Hit(
        conf,
        env.facts.pick(("bw.upload_mbps", "bw.needed_upload_mbps", "bw.download_mbps"), ""),
        msg(
            "Upload {upload} Mbit/s; the streams need {needed} Mbit/s",
            upload=round(up, 2),
            needed=round(need, 2),
        ),
        shows=shows,
    )


def _upload_timed_out(env: Env) -> bool:
    """The upload transfer timed out while the download measured (the link is up, slow up)."""
    err = env.facts.text("bw.upload_error") or ""
    return "timeout" in err.lower() and env.facts.num("bw.download_mbps") is not None


def _wan_loss_latency(env: Env, _d: Device | None) -> Hit | None:
    f = env.facts
    t = env.site.thresholds
    if _internet_up(env) is False:
        return None  # nothing passes: no loss figure of a working link
    items: list[tuple[float, Message, str]] = []
    loss = f.num("wan.loss_pct")
    if loss is not None and loss >= 99 and _internet_up(env) is True:
        # Every probe of the series lost while other internet hosts answer: the series' own
        # target is blocked (e.g. all UDP), which the blocking rules explain; not a lossy link.
        loss = None
    n = _probes(env, "wan.loss_probes")
    inconclusive: Message | None = None
    if loss is not None and loss > t.loss_pct:
        low, high = rate_interval_pct(loss, n)
        if low > t.loss_pct:
            items.append(
                (
                    low / t.loss_pct,
                    msg(
                        "Packet loss to the internet is {value} % ({low}–{high} % from {n} "
                        "probes; threshold {limit} %)",
                        value=loss,
                        low=low,
                        high=high,
                        n=n,
                        limit=t.loss_pct,
                    ),
                    "wan.heavy-loss" if loss >= 50 else "wan.loss",
                )
            )
        else:
            inconclusive = msg(
                "Packet loss to the internet was {value} % of {n} probes, which does not show "
                "loss above {limit} % ({low}–{high} %). Not measured in a quick run: press d / "
                "run --deep",
                value=loss,
                n=n,
                limit=t.loss_pct,
                low=low,
                high=high,
            )
    rtt = f.num("wan.rtt_ms")
    jitter = f.num("wan.jitter_ms")
    # The median RTT counts by the low end of what its n probes can tell with the jitter seen
    # (a loaded laptop's 146 ms jitter puts a 150 ms median anywhere from 79 ms).
    rtt_low = median_low(rtt, jitter or 0.0, n) if rtt is not None else None
    if rtt is not None and rtt_low is not None and rtt_low > t.rtt_ms:
        items.append(
            (
                rtt_low / t.rtt_ms,
                msg(
                    "Round-trip time to the internet is {value} ms (threshold {limit} ms)",
                    value=rtt,
                    limit=t.rtt_ms,
                ),
                "wan.latency",
            )
        )
    # Jitter counts by the low end of what its n probes can tell, and only beyond the jitter the
    # laptop sees on its own LAN: a loaded laptop's scheduling delays spread RTTs as much as a
    # congested link does, and then they spread the LAN's too.
    jitter_low = spread_low(jitter, n) - _lan_jitter(env) if jitter is not None else None
    if jitter is not None and jitter_low is not None and jitter_low > t.jitter_ms:
        items.append(
            (
                jitter_low / t.jitter_ms,
                msg(
                    "Jitter to the internet is {value} ms (threshold {limit} ms)",
                    value=jitter,
                    limit=t.jitter_ms,
                ),
                "wan.latency",
            )
        )
    bloat = f.num("bw.bufferbloat_ms")
    bloated = bloat is not None and bloat > t.bufferbloat_ms
    evidence = f.pick(
        (
            "wan.loss_pct",
            "wan.loss_probes",
            "wan.rtt_ms",
            "wan.jitter_ms",
            "bw.idle_rtt_ms",
            "bw.loaded_rtt_ms",
        ),
        "",
    ) + f.pick(("bw.bufferbloat_ms",), "")
    if not items and not bloated:
        if inconclusive is not None:
            return Hit(0.3, evidence, inconclusive, effect="none", shows=("wan.loss",))
        return None
    if not items:
        assert bloat is not None
        detail = msg(
            "Latency grows by {value} ms under load (threshold {limit} ms)",
            value=bloat,
            limit=t.bufferbloat_ms,
        )
        # Latency under load alone is advice (SQM), not why a device is in trouble: one speed
        # test's few RTT samples grow as much when the laptop's CPU is busy with the transfer.
        return Hit(
            BLOAT_ONLY,
            evidence,
            detail,
            effect="none",
            shows=("wan.bufferbloat",),
            predicts=LATENCY_ONLY_PREDICTS,
        )
    ratio, detail, _ = max(items, key=lambda x: x[0])
    conf = 0.6 + 0.3 * min(1.0, (ratio - 1.0) / 2.0)
    shows = tuple(dict.fromkeys(sym for _, _, sym in items))
    lossy = [low for low, _, sym in items if sym in ("wan.loss", "wan.heavy-loss")]
    low, high = rate_interval_pct(loss or 0.0, n)
    predicts: tuple[str, ...] | None = LATENCY_ONLY_PREDICTS  # delay loses nothing
    if lossy:
        predicts = _loss_predicts(env, low, high)
    return Hit(
        conf,
        evidence,
        detail,
        effect="offline" if loss is not None and loss >= 50 else "degraded",
        shows=shows,
        predicts=predicts,
    )


def tcp_ceiling_mbps(loss_pct: float, rtt_ms: float) -> float | None:
    """The most TCP gets through a path losing ``loss_pct`` % at ``rtt_ms`` ms RTT, Mbit/s."""
    if loss_pct <= 0 or rtt_ms <= 0:
        return None
    bits_per_s = MATHIS_MSS_BYTES * 8 / (rtt_ms / 1000.0) * MATHIS_C / math.sqrt(loss_pct / 100.0)
    return bits_per_s / 1e6


def _loss_caps_upload(env: Env, loss_low_pct: float) -> bool:
    """True when the loss alone keeps TCP below a quarter of the streams' need.

    Then a very slow upload is what the loss predicts (a link losing 5 % at 55 ms RTT carries
    about 1.2 Mbit/s of TCP whatever its rate), not a second cause beside it.
    """
    need = _needed_upload(env)
    rtts = [
        r for k in ("bw.idle_rtt_ms", "wan.rtt_ms") if (r := env.facts.num(k)) is not None and r > 0
    ]
    if need is None or need <= 0 or not rtts:
        return False
    ceiling = tcp_ceiling_mbps(loss_low_pct, min(rtts))
    return ceiling is not None and ceiling < need * VERY_SLOW_SHARE


def _loss_predicts(env: Env, low: float, high: float) -> tuple[str, ...] | None:
    """What a loss of ``low``..``high`` % (its 95 % interval) accounts for; None: everything.

    TCP collapses (any upload speed) from the low end's ``COLLAPSE_LOSS_PCT`` or when Mathis'
    ceiling is below a quarter of the need; whole probe series are lost when that is likely at
    the high end (``SERIES_CHANCE``), every platform server silent when it is for all of them.
    """
    series = (high / 100.0) ** SERIES_TRIES
    # Only servers actually probed: one whose name did not resolve lost no probe to the loss.
    servers = max(
        1,
        sum(
            1
            for x in env.facts.all("p2p.reachable")
            if env.facts.text("p2p.error", x.target) != "dns"
        ),
    )
    out: list[str] = []
    if low < COLLAPSE_LOSS_PCT and not _loss_caps_upload(env, low):
        out.append("upload.very-slow")
    if series < SERIES_CHANCE:
        out += LOST_SERIES
    if series**servers < SERIES_CHANCE:
        out.append("platform.silent")
    return _all_but(*out) if out else None


def _all_but(*symptoms: str) -> tuple[str, ...]:
    return tuple(p for p in CATALOG["wan-loss-latency"].predicts if p not in symptoms)


def _lan_jitter(env: Env) -> float:
    """The median jitter to the site's reachable devices: the laptop's own share of jitter, ms."""
    vals = sorted(
        j
        for d in env.site.devices
        if env.facts.flag("device.reachable", d.name) is not False
        and (j := env.facts.num("device.jitter_ms", d.name)) is not None
    )
    return vals[len(vals) // 2] if vals else 0.0


RULES: tuple[Rule, ...] = (
    Rule(
        "device-no-power",
        _device_no_power,
        ("device.reachable", "device.arp_macs", "device.icmp_loss_pct", "device.ports"),
        0.85,
        name="silent-on-lan",
    ),
    Rule(
        "vlan-misconfig",
        _vlan_misconfig,
        ("vlan.device_vid", "vlan.device_l2_unreachable", "vlan.tags_seen", "lldp.neighbor"),
        0.9,
        name="tagged-elsewhere",
    ),
    Rule("ip-conflict", _ip_conflict, ("device.arp_macs", "device.ip_conflict"), 0.9),
    Rule("device-password-changed", _password_changed, ("device.auth",), 0.9),
    Rule(
        "device-clock-wrong",
        _clock_wrong,
        (
            "device.clock_offset_s",
            "device.ntp_enabled",
            "device.ntp_reachable",
            "device.clock",
            "device.platform_online",
        ),
        0.9,
        shows=("device.clock-off",),
    ),
    Rule(
        "device-address-changed",
        _address_changed,
        ("device.seen_at", "device.mac_learnt", "device.reachable", "device.arp_macs"),
        0.9,
        shows=("device.moved", "device.silent"),
    ),
    Rule(
        "device-p2p-disabled",
        _p2p_disabled,
        (
            "device.settings",
            "device.reachable",
            "device.platform_online",
            "device.platform_last_seen_s",
        ),
        0.7,
        applies_to=P2P_VIA,
    ),
    Rule(
        "device-net-config",
        _net_config,
        ("device.settings", "device.gateway_ok"),
        0.85,
    ),
    Rule(
        "radio-link-interference",
        _radio_link,
        ("device.icmp_loss_pct", "device.jitter_ms", "wan.gateway_reachable"),
        0.8,
    ),
    Rule(
        "ip-access-broken",
        _ip_access_broken,
        ("ddns.resolved", "ddns.matches_public", "wan.public_ip"),
        0.85,
        applies_to=IP_VIA,
    ),
    Rule("share-expired", _share_expired, (), 1.0, applies_to=("shared",), name="past"),
    Rule("share-expired", _share_expires_soon, (), 0.3, applies_to=("shared",), name="soon"),
    Rule("share-not-possible", _share_not_possible, (), 0.2, applies_to=("p2p",)),
    Rule(
        "p2p-relogin-delay",
        _relogin_delay,
        ("device.platform_online",),
        0.8,
        applies_to=P2P_VIA,
    ),
    Rule("phone-side", _phone_side, (), 0.6, phase=2),
    Rule(
        "phone-side",
        _phone_measured,
        ("phone.battery_pct", "phone.save_data", "phone.udp_blocked", "phone.clock_offset_s"),
        0.8,
        scope="site",
        name="phone-measured",
    ),
    Rule(
        "link-outage",
        _link_outage,
        ("wan.gateway_reachable", "wan.gateway_rtt_ms", "wan.internet_reachable", "p2p.reachable"),
        0.9,
        scope="site",
    ),
    Rule(
        "data-plan-exhausted",
        _data_plan,
        ("wan.captive_portal", "wan.http_redirect", "wan.only_dns_passes"),
        0.9,
        scope="site",
    ),
    Rule(
        "p2p-server-unavailable",
        _server_unavailable,
        ("p2p.reachable", "p2p.error", "wan.internet_reachable"),
        0.85,
        scope="site",
    ),
    Rule(
        "router-port-blocking",
        _blocking("router"),
        ("port.open", "port.blocked_at", "port.blocked_hop"),
        0.88,
        scope="site",
    ),
    Rule(
        "isp-p2p-blocking",
        _blocking("isp"),
        ("port.open", "port.blocked_at", "port.blocked_hop"),
        0.88,
        scope="site",
    ),
    Rule(
        "mtu-blackhole",
        _mtu_blackhole,
        ("mtu.blackhole", "mtu.path_mtu", "mtu.tcp_stalled"),
        0.9,
        scope="site",
        shows=("path.big-packets-lost",),
    ),
    Rule(
        "profile-wrong",
        _profile_wrong,
        ("dns.site.rcode", "dns.independent.rcode"),
        0.9,
        scope="site",
        shows=("dns.name-missing",),
    ),
    Rule(
        "dns-failure",
        _dns_failure,
        ("dns.site.rcode", "dns.independent.rcode", "dns.mismatch", "dns.site.slow"),
        0.9,
        scope="site",
    ),
    Rule(
        "nat-unfriendly",
        _nat_unfriendly,
        ("nat.udp_blocked", "nat.mapping", "nat.filtering", "nat.rfc3489"),
        0.75,
        scope="site",
    ),
    Rule(
        "nat-mapping-expiry",
        _mapping_expiry,
        ("nat.mapping_lifetime_s", "nat.heartbeat_interval_s"),
        0.85,
        scope="site",
    ),
    Rule(
        "nat-mapping-expiry",
        _address_churn,
        ("device.platform_address_changes",),
        0.8,
        scope="site",
        name="address-churn",
    ),
    Rule(
        "cgnat",
        _cgnat,
        ("nat.cgnat", "nat.double_nat", "nat.mapped_address", "wan.public_ip", "upnp.external_ip"),
        0.9,
        scope="site",
    ),
    Rule(
        "low-bandwidth",
        _low_bandwidth,
        ("bw.upload_mbps", "bw.needed_upload_mbps"),
        0.85,
        scope="site",
    ),
    Rule(
        "wan-loss-latency",
        _wan_loss_latency,
        ("wan.loss_pct", "wan.rtt_ms", "wan.jitter_ms", "bw.bufferbloat_ms"),
        0.7,
        scope="site",
    ),
)
