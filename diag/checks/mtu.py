"""Path MTU to the platform: do large packets get through, or vanish without a word?

PPPoE and LTE links often carry less than 1500 bytes per packet and some drop the larger ones
without sending ICMP "fragmentation needed", which path-MTU discovery relies on: small requests
work, TLS handshakes, video and uploads stall (an MTU black hole). Two measurements:

- **DF-set echo probes**: ICMP echo requests with the Don't-Fragment bit (``IP_PMTUDISC_PROBE``)
  to the first platform server's address, sizes from 576 to 1500 bytes, binary search for the
  largest that is answered. A larger one that gets *no* answer and *no* ICMP error, while a small
  one does, is a packet that vanished silently. Needs an ICMP socket: the unprivileged ping socket
  where ``net.ipv4.ping_group_range`` allows it, else a raw socket (root); without either the
  probes are ``unknown``.
- **a TCP transfer**: 32 KiB to the platform's first TCP server (full-size segments, the size a
  TLS certificate or a video frame travels in), counting what the far end acknowledged
  (``TCP_INFO``) and, for an echoing relay, what came back. Stalled: almost nothing acknowledged
  within ``TCP_WINDOW_S`` although the connection opened (its handshake packets are small).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

from diag.checks.base import Check, Context, profile_need
from diag.diagnosis.stats import wilson
from diag.i18n import msg
from diag.model import Fact, Outcome, Site
from diag.net import tcpinfo
from diag.net.backend import CAP_RECVERR, Backend
from diag.net.icmp import open_icmp_socket
from diag.net.resolve import ResolveError, resolve, site_resolver

IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
# Set DF, ignore the kernel's cached path MTU: each probe tests the path as it is (Linux value).
IP_PMTUDISC_PROBE = getattr(socket, "IP_PMTUDISC_PROBE", 3)
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
# Packet sizes probed (IP total length, bytes): 576 is the minimum every IPv4 path must carry,
# 1500 Ethernet's MTU; below 1280 nothing modern works anyway.
MIN_SIZE, MAX_SIZE = 576, 1500
ICMP_HEADERS = 28  # IP 20 + ICMP 8
# One probe is waited for this long, s (lab and LTE RTTs are well under it).
PROBE_TIMEOUT_S = 0.4
# A probe size that goes unanswered is tried this many times (one loss is not a black hole).
TRIES = 2
TCP_BYTES = 32 * 1024
TCP_WINDOW_S = 1.5
# Acknowledged by then: a stall means not even ten full segments got through.
TCP_STALLED_BYTES = 10 * 1448
# A black hole is proven when the large probes' silence would be this unlikely (chance, 0..1) on a
# path that loses as much as the small ones' 95 % interval allows: on a link losing half its
# packets, large probes vanish like the small ones and no size limit is shown.
BLACKHOLE_CHANCE = 0.05


@dataclass
class EchoResult:
    largest_ok: int | None = None
    smallest_lost: int | None = None
    icmp_error: bool = False
    error: str | None = None
    # Probes of the sizes that were answered: how many were sent, how many of them got no answer
    # (a retry of the same size answered later); and how many probes of the unanswered sizes were
    # sent (all of them lost).
    small_sent: int = 0
    small_lost: int = 0
    big_lost: int = 0

    def silence_chance(self) -> float:
        """How likely every large probe's loss is on a path losing what the small ones show.

        The small probes' loss counts by the high end of its 95 % Wilson interval: 0 lost of 5
        small probes bounds the loss below 43 %, and 8 large probes all lost would happen by
        chance 0.1 % of the time (a black hole); 2 lost of 5 allow 77 % loss, under which 4 lost
        large probes are a 35 % chance (loss, not size).
        """
        if self.big_lost <= 0:
            return 1.0
        high = wilson(self.small_lost, self.small_sent)[1]
        return float(high**self.big_lost)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def _open_icmp(root: bool, net: Backend | None) -> tuple[socket.socket, bool]:
    """(socket, raw?): the ping socket if allowed, else (with root only) a raw one; raises
    OSError."""
    got = open_icmp_socket(False, net) or (open_icmp_socket(True, net) if root else None)
    if got is None:
        raise OSError("no ICMP socket allowed")
    return got[0], got[1] == "raw"


def echo_probe(
    addr: str, deadline: float, root: bool = False, net: Backend | None = None
) -> EchoResult:
    """Blocking: DF echo probes to ``addr`` (run in a thread)."""
    res = EchoResult()
    try:
        sock, raw = _open_icmp(root, net)
    except OSError as exc:
        res.error = f"icmp-socket: {exc.strerror or exc}"
        return res
    ident = os.getpid() & 0xFFFF
    seq = [0]
    with sock:
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        except OSError as exc:
            res.error = f"df: {exc.strerror or exc}"
            return res

        def answered(size: int) -> bool:
            sent = 0
            for _ in range(TRIES):
                if time.monotonic() > deadline:
                    break
                seq[0] = (seq[0] + 1) & 0xFFFF
                payload = os.urandom(size - ICMP_HEADERS)
                head = struct.pack("!BBHHH", 8, 0, 0, ident, seq[0])
                pkt = struct.pack("!BBHHH", 8, 0, _checksum(head + payload), ident, seq[0])
                try:
                    sock.sendto(pkt + payload, (addr, 0))
                except OSError:
                    # EMSGSIZE: our own interface or a known PMTU refuses the size.
                    res.icmp_error = True
                    return False
                sent += 1
                end = min(deadline, time.monotonic() + PROBE_TIMEOUT_S)
                while (left := end - time.monotonic()) > 0:
                    ready, _, err = select.select([sock], [], [sock], left)
                    if not ready and not err:
                        break
                    try:
                        data, peer = sock.recvfrom(65535)
                    except OSError:
                        # The error queue: an ICMP error (fragmentation needed) came back.
                        with contextlib.suppress(OSError):
                            sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
                        res.icmp_error = True
                        return False
                    icmp = data[20:] if raw else data
                    if len(icmp) < 8 or peer[0] != addr:
                        continue
                    typ, _c, _s, rid, rseq = struct.unpack("!BBHHH", icmp[:8])
                    if typ == 0 and rseq == seq[0] and (rid == ident or not raw):
                        res.small_sent += sent
                        res.small_lost += sent - 1
                        return True
            res.big_lost += sent
            return False

        if not answered(MIN_SIZE):
            res.error = "no-echo"  # nothing answers: not a size question
            res.big_lost = 0
            return res
        lo, hi = MIN_SIZE, MAX_SIZE
        res.largest_ok = MIN_SIZE
        if answered(MAX_SIZE):
            res.largest_ok = MAX_SIZE
            return res
        res.smallest_lost = MAX_SIZE
        while hi - lo > 8 and time.monotonic() < deadline:
            mid = (lo + hi) // 2
            if answered(mid):
                lo = mid
                res.largest_ok = mid
            else:
                hi = mid
                res.smallest_lost = mid
    return res


@dataclass
class TcpResult:
    acked: int | None = None
    echoed: int = 0
    mss: int | None = None
    error: str | None = None


async def tcp_transfer(addr: str, port: int) -> TcpResult:
    """32 KiB to ``addr:port``; what was acknowledged (and echoed back) within the window."""
    res = TcpResult()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(addr, port), 2.0)
    except (OSError, TimeoutError) as exc:
        res.error = f"connect: {type(exc).__name__}"
        return res
    sock = writer.get_extra_info("socket")
    try:
        first = tcpinfo.read(sock)
        base = first.bytes_acked if first and first.bytes_acked is not None else None
        res.mss = first.snd_mss if first else None
        writer.write(b"\x5a" * TCP_BYTES)
        end = time.monotonic() + TCP_WINDOW_S
        while (left := end - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(reader.read(65536), min(left, 0.1))
            except TimeoutError:
                data = None
            if data == b"":
                break
            if data:
                res.echoed += len(data)
            info = tcpinfo.read(sock)
            if info and info.bytes_acked is not None and base is not None:
                res.acked = info.bytes_acked - base
                if res.acked >= TCP_BYTES and res.echoed >= TCP_BYTES // 2:
                    break
    except OSError as exc:
        res.error = f"transfer: {type(exc).__name__}"
    finally:
        writer.transport.abort()
    return res


class MtuCheck(Check):
    id = "mtu"
    title = msg("Path MTU to the platform")
    needs = (profile_need("p2p_servers"),)
    names_platform = True
    # After wan (a dead path is not a size question) and alone on the link with the other probes.
    depends_on = ("wan",)
    timeout_s = 6.0

    def targets(self, site: Site) -> tuple[str, ...]:
        return (site.profile.p2p_servers[0].label,) if site.profile.p2p_servers else ()

    async def run(self, ctx: Context) -> Outcome:
        site = ctx.site
        servers = site.profile.p2p_servers
        facts: list[Fact] = []
        net = ctx.world.net
        root = ctx.world.is_root()
        if not net.has(CAP_RECVERR, root):
            # Windows and macOS: no IP_PMTUDISC_PROBE / IP_RECVERR on sockets, so neither the
            # DF probes nor the ICMP "fragmentation needed" can be read: nothing measured.
            return Outcome("skip", net.missing(CAP_RECVERR), {}, (Fact("mtu.skipped", net.name),))
        addr = ""
        for srv in servers:
            # The first platform server whose name resolves (a wrong name is the dns check's).
            try:
                addr = (await resolve(srv.host, site_resolver(site), backend=net))[0]
                break
            except ResolveError as exc:
                facts.append(Fact("mtu.error", f"dns: {exc.reason}", target=srv.host))
        if not addr:
            return Outcome("skip", msg("the platform's name did not resolve"), {}, tuple(facts))
        deadline = time.monotonic() + min(3.0, ctx.remaining() - 2.0)
        tcp_srv = next((s for s in servers if s.protocol in ("tcp", "https", "http")), None)
        echo_task = asyncio.to_thread(echo_probe, addr, deadline, root, net)
        tcp_task = tcp_transfer(addr, tcp_srv.port) if tcp_srv else None
        echo = await echo_task
        tcp = await tcp_task if tcp_task else None
        facts.append(Fact("mtu.target", addr))
        if echo.error:
            facts.append(Fact("mtu.probe_error", echo.error))
        if echo.largest_ok is not None:
            facts.append(Fact("mtu.path_mtu", echo.largest_ok, "B"))
        if echo.smallest_lost is not None:
            facts.append(Fact("mtu.smallest_lost", echo.smallest_lost, "B"))
        facts.append(Fact("mtu.icmp_error", echo.icmp_error))
        facts += [
            Fact("mtu.small_probes", echo.small_sent),
            Fact("mtu.small_lost", echo.small_lost),
            Fact("mtu.large_lost", echo.big_lost),
        ]
        vanished = (
            echo.largest_ok is not None and echo.smallest_lost is not None and not echo.icmp_error
        )
        # Large probes vanish beyond what the small ones' loss explains (a size limit), or as
        # often as they do (a lossy path: no verdict on the size).
        silent = vanished and echo.silence_chance() < BLACKHOLE_CHANCE
        lossy = vanished and not silent
        stalled: bool | None = None
        if tcp is not None:
            if tcp.error:
                facts.append(Fact("mtu.tcp_error", tcp.error))
            else:
                if tcp.acked is not None:
                    facts.append(Fact("mtu.tcp_acked_bytes", tcp.acked, "B"))
                    stalled = tcp.acked < TCP_STALLED_BYTES
                    facts.append(Fact("mtu.tcp_stalled", stalled))
                facts.append(Fact("mtu.tcp_echoed_bytes", tcp.echoed, "B"))
        # A stalled transfer is a black hole only where the small echoes passed cleanly: a link
        # that loses them stalls TCP too.
        blackhole = silent or (
            stalled is True and echo.largest_ok is not None and echo.small_lost == 0 and not lossy
        )
        if echo.largest_ok is None and stalled is None:
            facts.append(Fact("mtu.blackhole", None))
            return Outcome("error", msg("path MTU not measured"), {}, tuple(facts))
        if lossy and not blackhole:
            # Not measured: the loss hides whether a size limit is there too (unknown, not "no").
            facts.append(Fact("mtu.blackhole", None))
            return Outcome(
                "warn",
                msg(
                    "small and large probes are lost alike ({lost} of {n} small ones): packet "
                    "loss, the path MTU not measured",
                    lost=echo.small_lost,
                    n=echo.small_sent,
                ),
                {},
                tuple(facts),
            )
        facts.append(Fact("mtu.blackhole", bool(blackhole)))
        if blackhole:
            return Outcome(
                "fail",
                msg(
                    "packets above {size} bytes vanish without an ICMP error (path MTU black hole)",
                    size=str(echo.largest_ok or "?"),
                ),
                {},
                tuple(facts),
            )
        if echo.smallest_lost is not None:
            return Outcome(
                "warn",
                msg("path MTU {size} bytes, signalled by ICMP", size=echo.largest_ok or "?"),
                {},
                tuple(facts),
            )
        return Outcome(
            "ok", msg("full-size packets pass ({size} bytes)", size=str(MAX_SIZE)), {}, tuple(facts)
        )
