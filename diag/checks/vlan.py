"""VLAN: 802.1Q tags seen on the laptop's interface, the LLDP neighbour (switch, port, port VLAN),
and configured devices that do not answer on the laptop's layer 2.

One packet socket on the interface facing the site listens for a bounded time (``SNIFF_QUICK_S``)
to tagged frames, LLDP and ARP only (a kernel BPF filter drops everything else). Meanwhile it asks
every configured device in the laptop's subnet who has its address, untagged; a device that stays
silent is asked once in every VLAN id (those seen or named by LLDP first): when the laptop's port
carries the device's VLAN tagged, the device answers tagged and its VLAN id is known even if it
said nothing of its own accord during the listen. On an access port the switch drops the tagged
asks. Frames from the wire are hostile input: the LLDP parser never raises, a frame it cannot
read is counted as evidence (``lldp.malformed``).
"""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from diag.checks.base import NEED_ROOT, Check, Context
from diag.i18n import N_, Message, msg
from diag.model import Device, Fact, JSONValue, Metric, Outcome, Site
from diag.net.addr import mac_bytes, mac_str
from diag.net.arp import build_arp_request, parse_arp
from diag.net.backend import CAP_PACKET
from diag.net.ifaces import LocalInterface, local_interfaces, pick_interface
from diag.net.l2 import (
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ALL,
    ETH_P_ARP,
    ETH_P_LLDP,
    PACKET_ADD_MEMBERSHIP,
    PACKET_MR_PROMISC,
    SO_ATTACH_FILTER,
    SOL_PACKET,
    open_packet_socket,
    parse_frame,
    recv_frames,
)

# Quick runs listen 2 s: tagged broadcasts (ARP, DHCP) from a chatty LAN show within it, and a
# lab switch sends LLDP every second. Real switches send LLDP every 30 s (802.1AB default
# msgTxInterval), so deep runs listen 31 s to be sure to catch one.
SNIFF_QUICK_S = 2.0
SNIFF_DEEP_S = 31.0
# A quick listen may end early once LLDP was heard and every device is placed, but not before
# 1 s: enough for a lab switch's LLDP (1 s) and for the ARP answers of every device; a quiet site
# then costs the dashboard and the cron run 1 s instead of 2.
QUICK_MIN_S = 1.0
# After this long without an untagged ARP answer a device is asked in other VLANs: by then four
# untagged asks went unanswered, so a merely lossy device is not taken for one in another VLAN.
TAGGED_PROBE_AFTER_S = 0.8
# Silent devices are asked every 0.25 s for the first 2 s (on a link losing 25 % each way eight
# tries all fail 0.1 % of the time), then once a second: a deep listen must not flood.
ASK_EVERY_S = 0.25
ASK_FAST_FOR_S = 2.0
ASK_SLOW_EVERY_S = 1.0
# Re-asking a silent device on schedule covers at most this many learnt VLAN ids.
MAX_PROBE_VIDS = 16
# The VLAN id scan of a silent device: 8000 frames/s (all 4094 ids in 0.5 s, ~250 KB: less than
# a second of a camera's stream), for at most 4 devices per run, and never in the last 0.25 s of
# the listen (their answers need the time to arrive).
VID_SCAN_INTERVAL_S = 1 / 8000
MAX_VID_SCAN_DEVICES = 4
VID_SCAN_TAIL_S = 0.25
# LLDP strings (system name, port description) are capped: they come from the wire.
MAX_TEXT = 128
# Addresses remembered per listen (a /20 worth): beyond that, frames are forged or not a site.
MAX_HOSTS = 4096
OUI_8021 = b"\x00\x80\xc2"

# Classic BPF accepting: frames the kernel took a VLAN tag off, inline 802.1Q/802.1ad, LLDP, ARP.
_BPF_LD_W_ABS, _BPF_LD_H_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x20, 0x28, 0x15, 0x06
# SKF_AD_OFF (-0x1000) + SKF_AD_VLAN_TAG_PRESENT (48), as the unsigned 32-bit k field.
_SKF_VLAN_TAG_PRESENT = (-0x1000 + 48) & 0xFFFFFFFF
BPF_PROGRAM: tuple[tuple[int, int, int, int], ...] = (
    (_BPF_LD_W_ABS, 0, 0, _SKF_VLAN_TAG_PRESENT),
    (_BPF_JEQ_K, 0, 6, 0),
    (_BPF_LD_H_ABS, 0, 0, 12),
    (_BPF_JEQ_K, 4, 0, ETH_P_8021Q),
    (_BPF_JEQ_K, 3, 0, ETH_P_8021AD),
    (_BPF_JEQ_K, 2, 0, ETH_P_LLDP),
    (_BPF_JEQ_K, 1, 0, ETH_P_ARP),
    (_BPF_RET_K, 0, 0, 0),
    (_BPF_RET_K, 0, 0, 0x40000),
)


# --- LLDP (pure) ------------------------------------------------------------------------------


def clean_text(raw: bytes) -> str:
    """Wire bytes as printable text: UTF-8 (invalid bytes replaced), no control characters."""
    text = raw.decode("utf-8", "replace")
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    return text.strip()[:MAX_TEXT]


def _address(raw: bytes) -> str:
    """An LLDP management/network address: IANA family byte + address."""
    if len(raw) == 5 and raw[0] == 1:
        return socket.inet_ntoa(raw[1:5])
    if len(raw) == 17 and raw[0] == 2:
        return socket.inet_ntop(socket.AF_INET6, raw[1:17])
    return raw.hex()


def _id_value(subtype: int, value: bytes, mac_subtype: int, addr_subtype: int) -> str:
    if subtype == mac_subtype and len(value) == 6:
        return mac_str(value)
    if subtype == addr_subtype:
        return _address(value)
    return clean_text(value)


@dataclass(frozen=True)
class LldpNeighbor:
    chassis: str | None = None
    port: str | None = None
    system: str | None = None
    port_descr: str | None = None
    ttl: int | None = None
    pvid: int | None = None
    vlans: tuple[tuple[int, str], ...] = ()
    problems: tuple[str, ...] = ()

    def fact_value(self) -> dict[str, JSONValue]:
        return {
            "chassis": self.chassis or "",
            "system": self.system or "",
            "port": self.port or "",
            "port_descr": self.port_descr or "",
            "pvid": self.pvid,
            "vlans": [v for v in sorted({v for v, _ in self.vlans})],
            "vlan_names": {str(v): n for v, n in sorted(self.vlans)},
        }


def parse_lldp(payload: bytes) -> LldpNeighbor:
    """An LLDPDU (the Ethernet payload) as a neighbour; never raises.

    What cannot be read is named in ``problems`` ("truncated", "missing chassis id", ...); the
    TLVs read before the damage are kept.
    """
    fields: dict[str, Any] = {}
    vlans: list[tuple[int, str]] = []
    problems: list[str] = []
    off = 0
    end_seen = False
    while off + 2 <= len(payload):
        (head,) = struct.unpack_from("!H", payload, off)
        typ, length = head >> 9, head & 0x1FF
        off += 2
        if off + length > len(payload):
            problems.append("truncated")
            break
        value = payload[off : off + length]
        off += length
        if typ == 0:
            end_seen = True
            break
        if typ in (1, 2):
            if length < 2:
                problems.append(f"short tlv {typ}")
                continue
            key = "chassis" if typ == 1 else "port"
            # Chassis: 4 = MAC, 5 = network address; port: 3 = MAC, 4 = network address.
            mac_sub, addr_sub = (4, 5) if typ == 1 else (3, 4)
            fields.setdefault(key, _id_value(value[0], value[1:], mac_sub, addr_sub))
        elif typ == 3:
            if length >= 2:
                fields.setdefault("ttl", struct.unpack_from("!H", value)[0])
            else:
                problems.append("short tlv 3")
        elif typ == 4:
            fields.setdefault("port_descr", clean_text(value))
        elif typ == 5:
            fields.setdefault("system", clean_text(value))
        elif typ == 127:
            if length < 4:
                problems.append("short tlv 127")
                continue
            oui, sub, body = value[:3], value[3], value[4:]
            if oui != OUI_8021:
                continue
            if sub == 1 and len(body) >= 2:
                pvid = struct.unpack_from("!H", body)[0] & 0x0FFF
                fields.setdefault("pvid", pvid or None)
            elif sub == 3 and len(body) >= 3:
                vid, nlen = struct.unpack_from("!HB", body)
                if len(body) < 3 + nlen:
                    problems.append("short vlan name")
                    continue
                vlans.append((vid & 0x0FFF, clean_text(body[3 : 3 + nlen])))
            elif sub in (1, 3):
                problems.append(f"short 802.1 tlv {sub}")
    if not end_seen and not problems and off < len(payload):
        problems.append("trailing byte")
    for key, name in (("chassis", "chassis id"), ("port", "port id"), ("ttl", "ttl")):
        if key not in fields:
            problems.append(f"missing {name}")
    return LldpNeighbor(vlans=tuple(vlans[:64]), problems=tuple(problems[:16]), **fields)


# --- what one listen saw ----------------------------------------------------------------------


@dataclass
class Observed:
    """Everything the listen collected; ``feed`` takes one frame (pure, never raises)."""

    tags: dict[int, list[str]] = field(default_factory=dict)
    tagged_ips: dict[str, int] = field(default_factory=dict)
    untagged_answers: dict[str, list[str]] = field(default_factory=dict)
    lldp: list[LldpNeighbor] = field(default_factory=list)
    lldp_malformed: int = 0
    frames: int = 0

    def feed(self, frame: bytes, aux_vid: int | None, own_mac: str = "") -> None:
        self.frames += 1
        l2 = parse_frame(frame, aux_vid)
        if l2 is None:
            return
        if l2.ethertype == ETH_P_LLDP:
            n = parse_lldp(l2.payload)
            if n.chassis is None and n.port is None:
                self.lldp_malformed += 1
            else:
                if n.problems:
                    self.lldp_malformed += 1
                # A switch repeats itself; a flood of LLDP must not grow memory without bound.
                self.lldp = [*self.lldp[-7:], n]
            return
        # VLAN 0 is a priority tag, not a VLAN: the frame is in the port's own VLAN.
        if l2.vid:
            if l2.src != own_mac:
                macs = self.tags.setdefault(l2.vid, [])
                if l2.src not in macs and len(macs) < 256:
                    macs.append(l2.src)
        if l2.ethertype == ETH_P_ARP:
            arp = parse_arp(l2.payload)
            if arp is None or arp.sender_mac == own_mac:
                return
            # Bounded: a flood of forged ARP must not grow memory without end.
            if l2.vid:
                if len(self.tagged_ips) < MAX_HOSTS:
                    self.tagged_ips.setdefault(arp.sender_ip, l2.vid)
            elif arp.op == 2 and (
                arp.sender_ip in self.untagged_answers or len(self.untagged_answers) < MAX_HOSTS
            ):
                macs = self.untagged_answers.setdefault(arp.sender_ip, [])
                if arp.sender_mac not in macs:
                    macs.append(arp.sender_mac)

    def device_vid(self, device: Device) -> int | None:
        if device.address and device.address in self.tagged_ips:
            return self.tagged_ips[device.address]
        if device.mac:
            for vid, macs in sorted(self.tags.items()):
                if device.mac in macs:
                    return vid
        return None

    def neighbor(self) -> LldpNeighbor | None:
        """The best LLDP neighbour seen: the last complete one, else the last partial one."""
        whole = [n for n in self.lldp if not n.problems]
        pick = whole or self.lldp
        return pick[-1] if pick else None


def attach_filter(sock: socket.socket) -> None:
    """Installs ``BPF_PROGRAM`` on a packet socket (SO_ATTACH_FILTER)."""
    prog = b"".join(struct.pack("HBBI", *ins) for ins in BPF_PROGRAM)
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(BPF_PROGRAM), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def vid_scan_order(known: Iterable[int]) -> list[int]:
    """VLAN ids to ask a silent device in: those learnt first, then 1..4094 in order (pure)."""
    first = [v for v in dict.fromkeys(known) if 1 <= v <= 4094]
    return first + [v for v in range(1, 4095) if v not in set(first)]


def listen(
    iface: LocalInterface,
    devices: Sequence[Device],
    duration_s: float,
    stop_when_complete: bool = False,
    vid_scan: bool = True,
    min_s: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> Observed:
    """Listens ``duration_s`` on ``iface``, asking the devices who has them (blocking; root).

    Silent devices are asked again on a schedule (``ASK_EVERY_S``), untagged and inside every
    VLAN id learnt so far. A device still silent after ``TAGGED_PROBE_AFTER_S`` is then asked once
    in each VLAN id (``vid_scan``; learnt ids first, ``VID_SCAN_INTERVAL_S`` apart, within the
    listen): on a trunk port its switch delivers the one frame of its VLAN and it answers tagged;
    on an access port the switch drops them all. ``stop_when_complete`` ends the listen once an
    LLDP neighbour was heard and every device is placed (but not before ``min_s``): deep runs
    need not sit out 31 s, quick ones need not sit out 2 s.
    """
    obs = Observed()
    sock = open_packet_socket(iface, ETH_P_ALL)
    try:
        attach_filter(sock)
        # Promiscuous for this socket only: the kernel undoes it when the socket closes.
        mreq = struct.pack("iHH8s", iface.index, PACKET_MR_PROMISC, 0, b"")
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        # Frames queued before the filter was attached are not filtered: read them as usual.
        src_mac = mac_bytes(iface.mac) if iface.mac else b""
        t0 = clock()
        end = t0 + duration_s

        def ask(ip: str, vid: int | None) -> None:
            src = iface.onlink(ip)
            if src is None or not src_mac:
                return
            with contextlib.suppress(OSError):
                sock.send(build_arp_request(src_mac, str(src.ip), ip, vid))

        targets = [d.address for d in devices if d.address and iface.onlink(d.address)]
        next_ask = t0
        scans: dict[str, list[int]] | None = None
        scan_clock = 0.0
        scan_stop = end - VID_SCAN_TAIL_S
        while (now := clock()) < end:
            silent = [ip for ip in targets if ip not in obs.untagged_answers]
            learnt = sorted(
                set(obs.tags)
                | {v for n in obs.lldp for v, _ in n.vlans}
                | {n.pvid for n in obs.lldp if n.pvid}
            )
            if now >= next_ask:
                vids = learnt[:MAX_PROBE_VIDS] if now - t0 >= TAGGED_PROBE_AFTER_S else []
                for ip in silent:
                    ask(ip, None)
                    if ip not in obs.tagged_ips:
                        for v in vids:
                            ask(ip, v)
                fast = now - t0 < ASK_FAST_FOR_S
                next_ask = now + (ASK_EVERY_S if fast else ASK_SLOW_EVERY_S)
            if vid_scan and scans is None and now - t0 >= TAGGED_PROBE_AFTER_S:
                order = vid_scan_order(learnt)
                # Reversed: pop() from the end is O(1).
                scans = {ip: order[::-1] for ip in silent[:MAX_VID_SCAN_DEVICES]}
                scan_clock = now
            if scans and now < scan_stop:
                # Frames due since the last round, one VLAN id per device in turn.
                due = min(256, int((now - scan_clock) / VID_SCAN_INTERVAL_S) + 1)
                scan_clock = max(scan_clock + due * VID_SCAN_INTERVAL_S, now - 0.01)
                while due > 0 and scans:
                    for ip in list(scans):
                        if ip in obs.tagged_ips or ip in obs.untagged_answers or not scans[ip]:
                            del scans[ip]
                            continue
                        ask(ip, scans[ip].pop())
                        due -= 1
            if (
                stop_when_complete
                and now - t0 >= min_s
                and obs.lldp
                and all(ip in obs.tagged_ips for ip in silent)
            ):
                break
            wait = 0.002 if scans and now < scan_stop else 0.05
            for frame, vid, _at in recv_frames(sock, min(wait, max(0.0, end - now))):
                obs.feed(frame, vid, iface.mac)
    finally:
        sock.close()
    return obs


# --- the check --------------------------------------------------------------------------------


def vlan_facts(site: Site, iface: LocalInterface, obs: Observed, sniffed_s: float) -> list[Fact]:
    """Facts from what was observed (pure)."""
    facts: list[Fact] = [
        Fact("vlan.sniff_s", round(sniffed_s, 3), "s"),
        Fact(
            "vlan.tags_seen",
            [{"vid": v, "macs": list(m)} for v, m in sorted(obs.tags.items())],
        ),
    ]
    n = obs.neighbor()
    facts.append(Fact("lldp.neighbor", n.fact_value() if n is not None else None))
    if obs.lldp_malformed:
        facts.append(Fact("lldp.malformed", obs.lldp_malformed))
    for d in site.devices:
        if not d.address or not iface.onlink(d.address):
            continue
        facts.append(
            Fact("vlan.device_l2_unreachable", d.address not in obs.untagged_answers, target=d.name)
        )
        vid = obs.device_vid(d)
        if vid is not None:
            facts.append(Fact("vlan.device_vid", vid, target=d.name))
    return facts


class VlanCheck(Check):
    id = "vlan"
    title: ClassVar[Message] = msg(N_("VLAN and LLDP"))
    needs = (NEED_ROOT,)
    # The listen (2 s quick, 31 s deep) plus setup; the run's deadline may cut a deep one shorter.
    timeout_s = 35.0

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        net = ctx.world.net
        if not net.has(CAP_PACKET, ctx.world.is_root()):
            # macOS (also with sudo) and Windows (also as Administrator): no AF_PACKET, so no
            # LLDP and no 802.1Q tags can be read. Nothing was measured: skip, never a verdict.
            return Outcome(
                "skip", net.missing(CAP_PACKET), facts=(Fact("vlan.skipped", "no-packet-sockets"),)
            )
        iface = pick_interface(site, local_interfaces(net))
        if iface is None:
            return Outcome(
                "skip",
                msg(N_("no network interface faces the site")),
                facts=(Fact("vlan.skipped", "no-interface"),),
            )
        wanted = SNIFF_DEEP_S if ctx.deep else SNIFF_QUICK_S
        # Leave 0.3 s of the check's budget to turn the frames into facts.
        duration = max(0.2, min(wanted, ctx.remaining() - 0.3))
        devices = [d for d in site.devices if d.address and iface.onlink(d.address)]
        t0 = ctx.world.monotonic()
        min_s = 0.0 if ctx.deep else QUICK_MIN_S
        obs = await ctx.run_blocking(
            listen, iface, devices, duration, True, True, min_s, ctx.world.monotonic
        )
        facts = vlan_facts(site, iface, obs, ctx.world.monotonic() - t0)
        return summarize(facts, iface.name, obs)


def summarize(facts: Iterable[Fact], ifname: str, obs: Observed) -> Outcome:
    facts = tuple(facts)
    unreachable = [
        f.target for f in facts if f.key == "vlan.device_l2_unreachable" and f.value is True
    ]
    tagged = [f.target for f in facts if f.key == "vlan.device_vid"]
    n = obs.neighbor()
    status: Any = "warn" if unreachable or tagged else "ok"
    neighbour: Message = (
        msg(
            N_("LLDP: {system} port {port}"),
            system=n.system or n.chassis or "?",
            port=n.port or "?",
        )
        if n is not None
        else msg(N_("no LLDP neighbour heard"))
    )
    summary = msg(
        N_("{ifname}: tagged VLAN ids seen: {vids}; devices silent on L2: {unreachable}; {lldp}"),
        ifname=ifname,
        vids=len(obs.tags),
        unreachable=len(unreachable),
        lldp=neighbour,
    )
    metrics = {
        "vlan_ids_seen": Metric(len(obs.tags)),
        "devices_l2_unreachable": Metric(len(unreachable)),
        "frames_seen": Metric(obs.frames),
    }
    return Outcome(status, summary, metrics, facts)
