"""The kernel's own counters of one TCP connection (Linux ``TCP_INFO``, ``TCP_CC_INFO`` for BBR).

A speed test that counts bytes in the application counts what it *handed* to the socket; the
kernel counts what the peer *acknowledged* (``bytes_acked``) or what arrived in order
(``bytes_received``). On a 64 kbit/s uplink the difference is seconds of buffered data, so the
bandwidth check and the lab's ndt7 server read these counters. Parsing is pure (``parse``) and
bounded by the struct's length; on another OS, or an older kernel without a field, the reading
is ``None`` and the caller falls back to its own counts.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any

TCP_INFO = getattr(socket, "TCP_INFO", 11)  # Linux value; Python exposes it on Linux only
TCP_CC_INFO = 26  # linux/tcp.h; not exposed by Python
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
# Bytes of struct tcp_info asked for: up to tcpi_snd_wnd (Linux 5.4+); older kernels return less.
INFO_LEN = 232
# struct tcp_bbr_info: bw_lo, bw_hi (bytes/s), min_rtt (us), pacing_gain, cwnd_gain (<<8 fixed).
BBR_LEN = 20


@dataclass(frozen=True)
class TcpInfo:
    """One reading. Times in microseconds, counters in bytes (as the kernel keeps them)."""

    rtt_us: int
    rttvar_us: int
    min_rtt_us: int | None
    snd_mss: int
    pmtu: int
    total_retrans: int
    # Segments the peer has SACKed above the cumulative ACK (they arrived; a hole holds them).
    sacked: int
    # The peer's segment size as seen here, and data segments received (in order or not).
    rcv_mss: int
    data_segs_in: int | None
    bytes_acked: int | None
    bytes_received: int | None
    bytes_sent: int | None
    bytes_retrans: int | None
    busy_time_us: int | None
    rwnd_limited_us: int | None
    sndbuf_limited_us: int | None
    # Duplicate segments the peer reported (D-SACK, RFC 2883): copies of data it already had,
    # i.e. spurious retransmissions, which crossed the link all the same.
    dsack_dups: int | None = None

    @property
    def delivered_bytes(self) -> int | None:
        """Bytes that reached the peer: cumulatively acknowledged plus SACKed above a hole.

        ``bytes_acked`` alone stalls while a lost segment is retransmitted and then jumps by
        everything SACKed meanwhile: a window that starts in such a recovery reads ~5 % high.
        """
        if self.bytes_acked is None:
            return None
        return self.bytes_acked + self.sacked * self.snd_mss

    @property
    def carried_bytes(self) -> int | None:
        """What the link carried to the peer for this connection: ``delivered_bytes`` plus the
        duplicates the peer reported (D-SACK), each a segment, and never more than what was
        retransmitted (a duplicate is a copy of ours; on loopback a segment is 47 kB and a copy
        may be a part of one); only when every retransmission was such a copy (nothing lost).

        A bulk start through a slow queue provokes a spurious time-out: the kernel's RTO runs from
        the head segment's send time, and at 64 kbit/s the tenth segment of the initial window
        waits 1.7 s behind the others against an RTO of about 0.2 s set from the handshake. The
        copy crosses the link (189 ms of it per segment, 4.5 % of a 4.2 s window) though the
        link was never short of capacity. A segment lost on the link is not reported, so loss
        still lowers this count.
        """
        delivered = self.delivered_bytes
        if delivered is None:
            return None
        dups = self.dsack_dups or 0
        if dups < self.total_retrans:
            # Some retransmission was not reported as a copy: the path lost something, and the
            # copies are part of what loss costs (at 30 % loss each way, counting them read
            # 0.98 Mbit/s where the server received 0.015).
            return delivered
        copies = dups * self.snd_mss
        if self.bytes_retrans is not None:
            copies = min(copies, self.bytes_retrans)
        return delivered + copies

    @property
    def arrived_bytes(self) -> int | None:
        """Bytes that arrived here, in order or not: data segments × the peer's segment size.

        ``bytes_received`` counts in-order bytes only: while a lost segment is retransmitted it
        stalls, then jumps by everything queued out of order (a tbf queue at 256 kbit/s: +13 %
        over a 3 s window). The segment count does not wait for the hole; it over-counts an
        application-limited sender's small segments, so callers check it against
        ``bytes_received`` over the whole transfer.
        """
        if not self.data_segs_in or self.rcv_mss < 536:
            return None
        return self.data_segs_in * self.rcv_mss

    def to_ndt7(self, elapsed_us: int) -> dict[str, int]:
        """The ndt7 ``TCPInfo`` object (field names of the M-Lab spec, Go's tcp_info names)."""
        out: dict[str, int] = {
            "RTT": self.rtt_us,
            "RTTVar": self.rttvar_us,
            "SndMSS": self.snd_mss,
            "PMTU": self.pmtu,
            "TotalRetrans": self.total_retrans,
            "ElapsedTime": elapsed_us,
        }
        optional = {
            "MinRTT": self.min_rtt_us,
            "BytesAcked": self.bytes_acked,
            "BytesReceived": self.bytes_received,
            "BytesSent": self.bytes_sent,
            "BytesRetrans": self.bytes_retrans,
            "BusyTime": self.busy_time_us,
            "RWndLimited": self.rwnd_limited_us,
            "SndBufLimited": self.sndbuf_limited_us,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


def _u32(raw: bytes, off: int) -> int | None:
    return struct.unpack_from("=I", raw, off)[0] if len(raw) >= off + 4 else None


def _u64(raw: bytes, off: int) -> int | None:
    return struct.unpack_from("=Q", raw, off)[0] if len(raw) >= off + 8 else None


def parse(raw: bytes) -> TcpInfo | None:
    """A Linux ``struct tcp_info`` (offsets of linux/tcp.h); ``None`` if too short to be one."""
    if len(raw) < 104:
        return None
    return TcpInfo(
        rtt_us=_u32(raw, 68) or 0,
        rttvar_us=_u32(raw, 72) or 0,
        snd_mss=_u32(raw, 16) or 0,
        pmtu=_u32(raw, 60) or 0,
        total_retrans=_u32(raw, 100) or 0,
        sacked=_u32(raw, 28) or 0,
        rcv_mss=_u32(raw, 20) or 0,
        data_segs_in=_u32(raw, 152),
        bytes_acked=_u64(raw, 120),
        bytes_received=_u64(raw, 128),
        min_rtt_us=_u32(raw, 148),
        busy_time_us=_u64(raw, 168),
        rwnd_limited_us=_u64(raw, 176),
        sndbuf_limited_us=_u64(raw, 184),
        bytes_sent=_u64(raw, 200),
        bytes_retrans=_u64(raw, 208),
        dsack_dups=_u32(raw, 216),
    )


def read(sock: Any) -> TcpInfo | None:
    """The reading of a connected TCP socket (or asyncio's TransportSocket); None if unknown."""
    if sys.platform != "linux" or sock is None:
        return None
    try:
        return parse(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, INFO_LEN))
    except (OSError, AttributeError, TypeError, ValueError):
        return None


def read_bbr(sock: Any) -> dict[str, int] | None:
    """The ndt7 ``BBRInfo`` object when the connection runs BBR, else None."""
    if sys.platform != "linux" or sock is None:
        return None
    try:
        cc = sock.getsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, 16).split(b"\0", 1)[0]
        if cc != b"bbr":
            return None
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_CC_INFO, BBR_LEN)
    except (OSError, AttributeError, TypeError, ValueError):
        return None
    if len(raw) < BBR_LEN:
        return None
    bw_lo, bw_hi, min_rtt, pacing_gain, cwnd_gain = struct.unpack_from("=IIIII", raw)
    return {
        "BW": (bw_hi << 32) | bw_lo,  # bytes/s
        "MinRTT": min_rtt,  # us
        "PacingGain": pacing_gain,
        "CwndGain": cwnd_gain,
    }
