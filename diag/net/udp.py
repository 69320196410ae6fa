"""UDP exchanges that speak the protocol of the port they test: platform hello, STUN binding, DNS.

A firewall or a server that answers only well-formed requests makes a blind datagram look
blocked, so each probe carries a real request and recognises its own answer (nonce,
transaction id, query id). ``udp_exchange`` asks once (with retransmissions), ``udp_series``
sends a train on one socket and matches each answer to its probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.rdatatype

from diag.net import stun_codec
from diag.net.addr import is_ip, join_host_port
from diag.net.answer import Answer, Series, error_status

# --- payloads --------------------------------------------------------------------------------


def hello_request(nonce: str) -> bytes:
    """The platform's hello (docs/platform-protocol.md)."""
    return f"DIAGP2P1 HELLO {nonce}".encode("ascii")


def parse_welcome(data: bytes, nonce: str) -> str | None:
    """The ``ip:port`` the platform saw, when ``data`` is the WELCOME for ``nonce``; else None."""
    try:
        parts = data.decode("ascii").split(" ")
    except UnicodeDecodeError:
        return None
    if len(parts) != 4 or parts[:3] != ["DIAGP2P1", "WELCOME", nonce]:
        return None
    ip, _, port = parts[3].rpartition(":")
    if not is_ip(ip.strip("[]")) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return parts[3]


def stun_request(txid: bytes) -> bytes:
    """A STUN binding request for ``txid`` (RFC 5389, with FINGERPRINT)."""
    return stun_codec.binding_request(txid)[0]


def parse_stun_response(data: bytes, txid: bytes) -> str | None:
    """``ip:port`` of the XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) in a binding success for
    ``txid``; ``""`` for a matching success without an address; None when it is not one."""
    try:
        m = stun_codec.decode(data)
    except stun_codec.StunDecodeError:
        return None
    if m.msg_type != stun_codec.BINDING_SUCCESS or m.transaction_id != txid:
        return None
    for attr in (stun_codec.XOR_MAPPED_ADDRESS, stun_codec.MAPPED_ADDRESS):
        try:
            addr = m.address(attr)
        except stun_codec.StunDecodeError:
            continue
        if addr is not None:
            return join_host_port(*addr)
    return ""


def dns_request(name: str = ".") -> tuple[bytes, int]:
    """A DNS query (NS of ``name``) and its id: an answer of any rcode proves DNS passes."""
    q = dns.message.make_query(name, dns.rdatatype.NS)
    return q.to_wire(), q.id


def parse_dns_response(data: bytes, qid: int) -> str | None:
    """The rcode name when ``data`` is a DNS response to ``qid``; else None."""
    if len(data) < 12:
        return None
    rid, flags = struct.unpack("!HH", data[:4])
    if rid != qid or not flags & 0x8000:
        return None
    return dns.rcode.to_text(dns.rcode.Rcode(flags & 0xF))


@dataclass(frozen=True)
class UdpProbe:
    """One request/response exchange: the bytes to send and how to recognise the answer.

    ``accept`` returns None for "not the answer" and a string (possibly empty) for the answer's
    useful content (the public address the platform or STUN saw, a DNS rcode).
    """

    kind: str
    payload: bytes
    accept: Callable[[bytes], str | None]


def udp_probe_for(kind: str) -> UdpProbe:
    """A fresh probe (new nonce / transaction id) of kind ``hello``, ``stun``, ``dns``, ``echo``."""
    if kind == "hello":
        nonce = secrets.token_hex(6)
        return UdpProbe(kind, hello_request(nonce), lambda d: parse_welcome(d, nonce))
    if kind == "stun":
        txid = secrets.token_bytes(12)
        return UdpProbe(kind, stun_request(txid), lambda d: parse_stun_response(d, txid))
    if kind == "dns":
        wire, qid = dns_request()
        return UdpProbe(kind, wire, lambda d: parse_dns_response(d, qid))
    payload = b"DIAGP2P1 ECHO " + secrets.token_hex(6).encode()
    return UdpProbe("echo", payload, lambda d: "" if d else None)


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)


async def udp_exchange(
    address: str,
    port: int,
    make_probe: Callable[[], UdpProbe],
    timeout_s: float,
    tries: int = 3,
    clock: Callable[[], float] = time.monotonic,
    gaps: Sequence[float] | None = None,
) -> Answer:
    """Sends a probe up to ``tries`` times within ``timeout_s`` and waits for the answer.

    ``gaps`` (s) replaces the even spacing with a backoff: one try per gap, the whole exchange
    taking their sum.

    Each retransmission is a fresh probe (new nonce) so a late answer to an earlier one is still
    recognised: all probes sent are accepted, the RTT is measured from the probe answered.
    A datagram that is not an answer is remembered as ``bad-reply`` if nothing better comes.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _UdpClient, remote_addr=(address, port), family=family
        )
    except OSError as exc:
        return Answer(error_status(exc), info=type(exc).__name__)
    sent: list[tuple[UdpProbe, float]] = []
    bad = False
    try:
        waits = list(gaps) if gaps else [timeout_s / max(1, tries)] * max(1, tries)
        end = clock() + (sum(waits) if gaps else timeout_s)
        for i, gap in enumerate(waits):
            probe = make_probe()
            sent.append((probe, clock()))
            transport.sendto(probe.payload)
            next_send = min(end, clock() + gap) if i < len(waits) - 1 else end
            while True:
                left = next_send - clock()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(proto.queue.get(), left)
                except TimeoutError:
                    break
                if isinstance(item, OSError):
                    # A fresh socket's own port: an ICMP error on it is about our datagram.
                    return Answer(error_status(item), info=type(item).__name__)
                for p, t_sent in reversed(sent):
                    got = p.accept(item)
                    if got is not None:
                        return Answer("open", round((clock() - t_sent) * 1000, 3), got)
                bad = True
            if clock() >= end:
                break
    finally:
        transport.close()
    return Answer("bad-reply" if bad else "timeout")


async def udp_series(
    address: str,
    port: int,
    kind: str,
    count: int,
    interval_s: float,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Series:
    """``count`` probes of ``kind`` on one socket, ``interval_s`` apart; each answer is matched
    to its own probe (own nonce), so loss, RTT and jitter come out per probe. Waits
    ``timeout_s`` after the last one for stragglers."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _UdpClient, remote_addr=(address, port), family=family
        )
    except OSError:
        return Series(rtts=(None,) * count)
    probes: list[tuple[UdpProbe, float]] = []
    rtts: dict[int, float] = {}
    infos: list[str] = []

    async def receive() -> None:
        while len(rtts) < count:
            item = await proto.queue.get()
            if isinstance(item, OSError):
                continue  # ICMP errors: the probe counts as lost
            now = clock()
            for i, (p, t_sent) in enumerate(probes):
                if i in rtts:
                    continue
                got = p.accept(item)
                if got is not None:
                    rtts[i] = round((now - t_sent) * 1000, 3)
                    infos.append(got)
                    break

    rx = asyncio.create_task(receive())
    try:
        for i in range(count):
            p = udp_probe_for(kind)
            probes.append((p, clock()))
            transport.sendto(p.payload)
            if i < count - 1:
                await asyncio.sleep(interval_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(rx), timeout_s)
    finally:
        rx.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rx
        transport.close()
    return Series(tuple(rtts.get(i) for i in range(count)), tuple(infos))
