"""ARP: who-has requests and the answers, and one scan that asks a whole subnet at once.

One packet socket serves a whole scan (every request and every answer in one window, so a second
MAC answering for the same address is never missed). Linux sends its own frames (root); Windows
asks the OS (``SendARP`` through the backend, no driver, no admin) one address at a time; macOS
has neither here and the check skips with the reason.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from diag.net.addr import mac_bytes, mac_str
from diag.net.ifaces import LocalInterface
from diag.net.l2 import (
    BROADCAST,
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    MIN_FRAME,
    open_packet_socket,
    parse_frame,
    recv_frames,
)

# ARP pacing: 1 ms between requests (1000 broadcasts/s, ~60 kB/s on the wire, a load any switch
# and host shrug off): a /24 takes 0.25 s per pass.
ARP_INTERVAL_S = 0.001
# After the last request of a pass, answers arrive within a few ms on a wired LAN (under 1 ms in
# the lab); 0.25 s leaves a wide margin for a busy embedded CPU or a Wi-Fi bridge's retries.
ARP_WAIT_S = 0.25
# A second pass re-asks the silent addresses once: one lost broadcast must not make a host vanish.
ARP_PASSES = 2
# Configured devices are asked up to 8 times 0.1 s apart (0.8 s at most, ~0.2 s when they answer):
# on a radio bridge losing 25 % each way one exchange fails 44 % of the time, eight fail 0.14 %.
DEVICE_ARP_PASSES = 8
DEVICE_ARP_WAIT_S = 0.1
# No sweep is larger than a /24 by default: 256 broadcasts is polite, a /16 (65536) is not.


def build_arp_request(src_mac: bytes, src_ip: str, target_ip: str, vid: int | None = None) -> bytes:
    """An Ethernet broadcast ARP who-has, 802.1Q-tagged with ``vid`` when given."""
    eth = BROADCAST + src_mac
    if vid is not None:
        eth += struct.pack("!HH", ETH_P_8021Q, vid & 0x0FFF)
    eth += struct.pack("!H", ETH_P_ARP)
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_P_IP,
        6,
        4,
        1,
        src_mac,
        socket.inet_aton(src_ip),
        b"\x00" * 6,
        socket.inet_aton(target_ip),
    )
    frame = eth + arp
    return frame + b"\x00" * max(0, MIN_FRAME - len(frame))


@dataclass(frozen=True)
class ArpPacket:
    op: int
    sender_mac: str
    sender_ip: str
    target_ip: str


def parse_arp(payload: bytes) -> ArpPacket | None:
    """An IPv4-over-Ethernet ARP packet, or None for anything else (never raises)."""
    if len(payload) < 28:
        return None
    try:
        htype, ptype, hlen, plen, op, sha, spa, _tha, tpa = struct.unpack_from(
            "!HHBBH6s4s6s4s", payload
        )
    except struct.error:
        return None
    if htype != 1 or ptype != ETH_P_IP or hlen != 6 or plen != 4 or op not in (1, 2):
        return None
    return ArpPacket(op, mac_str(sha), socket.inet_ntoa(spa), socket.inet_ntoa(tpa))


@dataclass(frozen=True)
class ArpAnswer:
    ip: str
    mac: str
    vid: int | None = None
    at: float = 0.0


def answer_from_frame(frame: bytes, aux_vid: int | None = None) -> ArpAnswer | None:
    """An ARP reply in a received frame as (ip, mac, vid); requests and junk are None."""
    l2 = parse_frame(frame, aux_vid)
    if l2 is None or l2.ethertype != ETH_P_ARP:
        return None
    arp = parse_arp(l2.payload)
    if arp is None or arp.op != 2:
        return None
    # A VLAN id 0 is a priority tag: the frame belongs to the port's own VLAN.
    return ArpAnswer(arp.sender_ip, arp.sender_mac, l2.vid or None)


def aggregate_answers(
    answers: Iterable[ArpAnswer], untagged_only: bool = True
) -> dict[str, list[str]]:
    """ip -> the distinct MACs that answered for it, in the order they first answered."""
    out: dict[str, list[str]] = {}
    for a in answers:
        if untagged_only and a.vid is not None:
            continue
        macs = out.setdefault(a.ip, [])
        if a.mac not in macs:
            macs.append(a.mac)
    return out


@dataclass
class ArpScan:
    """What one ARP scan saw: every answer (also duplicates from other MACs)."""

    answers: list[ArpAnswer] = field(default_factory=list)
    sent: int = 0
    duration_s: float = 0.0

    def by_ip(self, untagged_only: bool = True) -> dict[str, list[str]]:
        return aggregate_answers(self.answers, untagged_only)


def arp_scan(
    iface: LocalInterface,
    targets: Sequence[str],
    *,
    interval_s: float = ARP_INTERVAL_S,
    wait_s: float = ARP_WAIT_S,
    passes: int = ARP_PASSES,
    min_passes: int = 1,
    deadline: float | None = None,
    vids: Sequence[int | None] = (None,),
    sock_factory: Callable[[LocalInterface], socket.socket] | None = None,
) -> ArpScan:
    """Asks every target who has it, ``passes`` times for the silent ones (blocking; root).

    The first ``min_passes`` ask everyone (a second host answering for a taken address may have
    lost its first answer); later passes ask only the silent ones, and the scan ends early when
    nobody is left. All answers within the scan are kept, so two MACs for one address show. The
    source address is the interface's address on the target's subnet. ``deadline`` is a
    ``time.monotonic()`` value the scan never runs past.
    """
    t0 = time.monotonic()
    end = deadline if deadline is not None else float("inf")
    scan = ArpScan()
    if not targets or not iface.mac:
        return scan
    src_mac = mac_bytes(iface.mac)
    sock = (sock_factory or (lambda i: open_packet_socket(i, ETH_P_ARP)))(iface)
    wanted = set(targets)
    try:

        def drain(timeout: float) -> None:
            for frame, vid, at in recv_frames(sock, timeout, only_ours=True):
                ans = answer_from_frame(frame, vid)
                if ans is not None and ans.ip in wanted:
                    scan.answers.append(ArpAnswer(ans.ip, ans.mac, ans.vid, at - t0))

        for pass_no in range(passes):
            answered = {a.ip for a in scan.answers}
            todo = [t for t in targets if pass_no < min_passes or t not in answered]
            if not todo:
                break
            next_send = time.monotonic()
            for ip in todo:
                src = iface.onlink(ip)
                if src is None:
                    continue
                for vid in vids:
                    if time.monotonic() >= end:
                        break
                    sock.send(build_arp_request(src_mac, str(src.ip), ip, vid))
                    scan.sent += 1
                    next_send += interval_s
                    # Read while sending: answers to early requests must not overflow the buffer.
                    drain(max(0.0, next_send - time.monotonic()))
            stop = min(end, time.monotonic() + wait_s)
            while time.monotonic() < stop:
                drain(stop - time.monotonic())
    finally:
        sock.close()
    scan.duration_s = time.monotonic() - t0
    return scan
