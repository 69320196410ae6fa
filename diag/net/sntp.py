"""SNTP client (RFC 4330): one short request to an NTP server on UDP 123 — does it answer, is it
synchronized, and how far is its clock from the laptop's.

The request goes through ``diag.net.udp``'s exchange (retransmission with a fresh request,
ICMP errors as statuses). Each request's transmit timestamp is the laptop's clock with random
low-order fraction bits, so the server's copy of it (originate timestamp) identifies the answer
to our own request; anything else is ``bad-reply``. The server is untrusted: a short packet, a
wrong mode, a zero transmit time are not answers; a kiss-o'-death (stratum 0) and a server that
says it is not synchronized (leap indicator 3, stratum 16+) are reported as such, never used as a
time source; any offset, even decades, is only a number.
"""

from __future__ import annotations

import math
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from diag.net.udp import UdpProbe, udp_exchange

NTP_PORT = 123
# Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
NTP_UNIX_DELTA = 2_208_988_800
PACKET_LEN = 48
# LI 0, version 4, mode 3 (client).
CLIENT_HEADER = (0 << 6) | (4 << 3) | 3
MODE_SERVER = 4
# Random low bits of the transmit timestamp's fraction: 2^-16 s (15 us) of it, far below the
# LAN's RTT, identifies our request among late or forged answers.
NONCE_MASK = 0xFFFF

SntpStatus = Literal[
    "ok", "kiss", "unsynchronized", "timeout", "refused", "unreachable", "bad-reply", "error"
]


@dataclass(frozen=True)
class SntpAnswer:
    status: SntpStatus
    rtt_ms: float | None = None
    # The server's clock minus the laptop's, s (RFC 4330 section 5: ((T2-T1)+(T3-T4))/2).
    offset_s: float | None = None
    stratum: int | None = None
    # A kiss-o'-death's code (RATE, DENY...), printable ASCII only.
    info: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def to_ntp(unix_s: float) -> bytes:
    seconds = int(unix_s) + NTP_UNIX_DELTA
    fraction = int((unix_s - int(unix_s)) * 2**32) & 0xFFFFFFFF
    return struct.pack("!II", seconds & 0xFFFFFFFF, fraction)


def from_ntp(raw: bytes, near_unix_s: float) -> float:
    """An NTP timestamp as Unix seconds, in the 2^32 s era nearest ``near_unix_s`` (RFC 4330
    section 3: the timestamps wrap in 2036)."""
    seconds, fraction = struct.unpack("!II", raw)
    value: float = seconds - NTP_UNIX_DELTA + fraction / 2**32
    era = round((near_unix_s - value) / 2**32)
    return value + era * 2**32


def request(unix_s: float) -> tuple[bytes, bytes]:
    """(the 48-byte client request, its transmit timestamp) for the laptop's time ``unix_s``."""
    seconds, fraction = struct.unpack("!II", to_ntp(unix_s))
    fraction = (fraction & ~NONCE_MASK) | secrets.randbits(16)
    tx = struct.pack("!II", seconds, fraction & 0xFFFFFFFF)
    return bytes([CLIENT_HEADER]) + bytes(39) + tx, tx


def parse_response(data: bytes, tx: bytes, t1: float, t4: float) -> str | None:
    """What a server's answer to the request with transmit timestamp ``tx`` says, as the text
    ``parse_info`` reads (``ok <stratum> <offset>``, ``kiss <code>``, ``unsynchronized
    <stratum>``); None when ``data`` is not that answer (pure)."""
    if len(data) < PACKET_LEN:
        return None
    li, version, mode = data[0] >> 6, (data[0] >> 3) & 7, data[0] & 7
    if mode != MODE_SERVER or not 1 <= version <= 4 or data[24:32] != tx:
        return None
    stratum = data[1]
    if stratum == 0:
        code = "".join(c for c in data[12:16].decode("ascii", "replace") if c.isalnum())
        return f"kiss {code or '?'}"
    if li == 3 or stratum >= 16:
        return f"unsynchronized {stratum}"
    if data[40:48] == bytes(8):
        return None
    t2, t3 = from_ntp(data[32:40], t1), from_ntp(data[40:48], t1)
    offset = ((t2 - t1) + (t3 - t4)) / 2
    if not math.isfinite(offset):
        return None
    return f"ok {stratum} {offset:.6f}"


def parse_info(info: str) -> tuple[SntpStatus, int | None, float | None, str]:
    """(status, stratum, offset_s, kiss code) from ``parse_response``'s text."""
    kind, _, rest = info.partition(" ")
    if kind == "kiss":
        return "kiss", 0, None, rest
    if kind == "unsynchronized":
        return "unsynchronized", int(rest), None, ""
    stratum, _, offset = rest.partition(" ")
    return "ok", int(stratum), round(float(offset), 3), ""


async def sntp_query(
    address: str,
    port: int = NTP_PORT,
    timeout_s: float = 1.5,
    tries: int = 3,
    wall: Callable[[], float] = time.time,
) -> SntpAnswer:
    """One SNTP exchange with ``address`` (an IP), retransmitted up to ``tries`` times."""

    def make_probe() -> UdpProbe:
        t1 = wall()
        payload, tx = request(t1)
        return UdpProbe("ntp", payload, lambda d: parse_response(d, tx, t1, wall()))

    ans = await udp_exchange(address, port, make_probe, timeout_s, tries)
    if not ans.ok:
        return SntpAnswer(ans.status if ans.status != "open" else "bad-reply")
    status, stratum, offset, code = parse_info(ans.info)
    return SntpAnswer(status, ans.rtt_ms, offset, stratum, code)
