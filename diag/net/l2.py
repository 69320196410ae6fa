"""Ethernet frames on Linux packet sockets: build, split, read with the kernel's VLAN metadata.

Frames are built and parsed with ``struct`` rather than scapy: one packet socket serves a whole
scan, 802.1Q tags that the kernel moved out of the frame are read back from ``PACKET_AUXDATA``,
and the parsers are small pure functions that fuzzing can reach. Parsers never raise on hostile
input: a frame that does not parse is ``None``. Packet sockets exist on Linux only
(``Backend.packet_sockets``); callers check the capability first and skip elsewhere.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from diag.net.addr import mac_str
from diag.net.ifaces import LocalInterface

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_LLDP = 0x88CC
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
SO_ATTACH_FILTER = 26
BROADCAST = b"\xff" * 6
# Ethernet's minimum frame without FCS; a packet socket sends what it is given, real NICs pad.
MIN_FRAME = 60


@dataclass(frozen=True)
class L2Frame:
    """An Ethernet frame split into its parts; ``vid`` is the 802.1Q VLAN id (None: untagged)."""

    dst: str
    src: str
    ethertype: int
    payload: bytes
    vid: int | None = None


def parse_frame(frame: bytes, aux_vid: int | None = None) -> L2Frame | None:
    """Splits an Ethernet frame; a tag the kernel stripped comes in as ``aux_vid``."""
    if len(frame) < 14:
        return None
    dst, src = mac_str(frame[0:6]), mac_str(frame[6:12])
    (etype,) = struct.unpack_from("!H", frame, 12)
    off = 14
    vid = aux_vid
    # Up to two inline tags (802.1ad outer + 802.1Q inner): the innermost VLAN id is the one
    # that places the host; deeper stacks are not Ethernet any switch here sends.
    for _ in range(2):
        if etype not in (ETH_P_8021Q, ETH_P_8021AD) or len(frame) < off + 4:
            break
        tci, etype = struct.unpack_from("!HH", frame, off)
        vid = tci & 0x0FFF
        off += 4
    if etype in (ETH_P_8021Q, ETH_P_8021AD):
        return None
    return L2Frame(dst, src, etype, frame[off:], vid)


def aux_vid(ancdata: Iterable[tuple[int, int, bytes]]) -> int | None:
    """The VLAN id the kernel took out of a frame (``tpacket_auxdata``), None when untagged."""
    for level, typ, data in ancdata:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(data) >= 20:
            status, _len, _snap, _mac, _net, tci, _tpid = struct.unpack_from("IIIHHHH", data)
            if status & TP_STATUS_VLAN_VALID:
                return int(tci) & 0x0FFF
    return None


def open_packet_socket(iface: LocalInterface, proto: int = ETH_P_ALL) -> socket.socket:
    """A raw packet socket on ``iface`` with the kernel's VLAN metadata switched on (root)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
    try:
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        # 4 MiB: a /24 sweep's answers and a busy LAN's broadcasts fit while we are sending.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((iface.name, proto))
    except BaseException:
        sock.close()
        raise
    return sock


def recv_frames(
    sock: socket.socket, timeout: float, only_ours: bool = False
) -> list[tuple[bytes, int | None, float]]:
    """Frames received within ``timeout`` s (at least one wait): (frame, aux vid, time).

    ``only_ours`` keeps only frames the kernel would hand to this host (``is_ours``).
    """
    out: list[tuple[bytes, int | None, float]] = []
    ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
    if not ready:
        return out
    while True:
        try:
            data, anc, _flags, addr = sock.recvmsg(65535, 256, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        # Our own transmissions loop back to a packet socket: they are not answers.
        if isinstance(addr, tuple) and len(addr) > 2 and addr[2] == PACKET_OUTGOING:
            continue
        if only_ours and not is_ours(addr):
            continue
        out.append((data, aux_vid(anc), time.monotonic()))
    return out


PACKET_OTHERHOST = 3


def is_ours(addr: object) -> bool:
    """Whether a packet socket's source address says the frame is for this host.

    A socket bound to one protocol (ETH_P_ARP) gets frames tagged with a VLAN this host has no
    interface for only after the kernel has stripped the tag and marked them PACKET_OTHERHOST:
    an answer from another VLAN would otherwise pass for an untagged one. Frames to other MACs
    (another socket made the interface promiscuous) carry the same mark.
    """
    return not (isinstance(addr, tuple) and len(addr) > 2 and addr[2] == PACKET_OTHERHOST)
