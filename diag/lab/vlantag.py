"""A one-VLAN tagger for the lab's switch: an access port in VLAN N, joined to a trunk port, tagged.

The lab's kernel may have neither VLAN-aware bridges nor 802.1Q interfaces, so the switch
namespace runs this for ``vlan-misconfig``: frames the device sends on its access port go out of
the laptop's trunk port with an 802.1Q tag (VID ``--vid``), and frames tagged with that VID coming
in on the trunk go to the device untagged, as a managed switch does. Untagged traffic (VLAN 1)
stays on the kernel bridge, so the device is unreachable on L2 from the laptop's untagged side.

CLI: ``python -m diag.lab.vlantag --access PORT --trunk PORT --vid N`` (in the switch namespace).
"""

from __future__ import annotations

import argparse
import select
import signal
import socket
import struct
import sys
from types import FrameType

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
# Jumbo frames are not used in the lab; 9 KiB covers any frame plus the tag.
MAX_FRAME = 9216


def tag(frame: bytes, vid: int) -> bytes:
    """``frame`` with an 802.1Q header (priority 0) after the MAC addresses."""
    return frame[:12] + struct.pack("!HH", ETH_P_8021Q, vid & 0x0FFF) + frame[12:]


def frame_vid(frame: bytes, ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The VID a received frame carried: in the kernel's aux data or still inline."""
    for level, typ, data in ancdata:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(data) >= 20:
            status = struct.unpack_from("=I", data, 0)[0]
            tci = struct.unpack_from("=H", data, 16)[0]
            if status & TP_STATUS_VLAN_VALID:
                return int(tci) & 0x0FFF
    if len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] == ETH_P_8021Q:
        return int(struct.unpack_from("!H", frame, 14)[0]) & 0x0FFF
    return None


def untag(frame: bytes) -> bytes:
    if len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] == ETH_P_8021Q:
        return frame[:12] + frame[16:]
    return frame


def _open(ifname: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    return s


def serve(access: str, trunk: str, vid: int) -> None:
    acc, trk = _open(access), _open(trunk)
    while True:
        ready, _, _ = select.select([acc, trk], [], [])
        for s in ready:
            frame, anc, _flags, addr = s.recvmsg(MAX_FRAME, socket.CMSG_SPACE(32))
            if addr[2] == PACKET_OUTGOING or len(frame) < 14:
                continue  # our own transmissions, or junk
            if s is acc:
                trk.send(tag(untag(frame), vid))
            elif frame_vid(frame, anc) == vid:
                acc.send(untag(frame))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m diag.lab.vlantag", description=__doc__)
    ap.add_argument("--access", required=True)
    ap.add_argument("--trunk", required=True)
    ap.add_argument("--vid", type=int, required=True)
    args = ap.parse_args(argv)

    def stop(_sig: int, _frame: FrameType | None) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        serve(args.access, args.trunk, args.vid)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
