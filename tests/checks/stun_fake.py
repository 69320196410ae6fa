"""A fake RFC 5780 STUN server on loopback that emulates a NAT's behaviour in what it answers.

Four sockets: 127.0.0.1 and 127.0.0.2, each on two ports. The client talks to it directly (no
root, no namespaces); the server plays the NAT in front of the client by rewriting the mapped
address it reports (a mapping table keyed per RFC 4787: endpoint-, address- or address-and-port-
dependent) and by dropping the answers the emulated filter would drop (per mapping, or per host
like the lab's restricted cone). Each emulated mapping owns a real relay socket on 127.0.0.3 whose
address is the reported mapped address, so hairpinning can be emulated too (the relay forwards to
the client what the client's other socket sent to it). Every request is logged, so tests can
assert the order in which the check talked to which address.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from diag.net import stun_codec as c

A1, A2, EXT = "127.0.0.1", "127.0.0.2", "127.0.0.3"


@dataclass
class Behaviour:
    mapping: str = "EIM"  # EIM, ADM, APDM, or "none" (no NAT: report the real source)
    filtering: str = "APDF"  # EIF, ADF, APDF
    filter_scope: str = "mapping"  # "mapping" or "host" (lab restricted cone: peers per host)
    udp_blocked: bool = False
    rfc5780: bool = True  # False: no OTHER-ADDRESS, CHANGE-REQUEST ignored
    hairpin: bool = False
    alg: bool = False  # MAPPED-ADDRESS shows the private source, XOR-MAPPED the public one
    send_mapped: bool = True  # include MAPPED-ADDRESS in RFC 5389 responses
    lifetime_s: float | None = None  # mapping expiry for RESPONSE-PORT probes
    drop_first: int = 0  # lose this many requests first (retransmission tests)
    garbage_first: bool = False  # answer every request with garbage before the real answer
    delay_s: float = 0.0


@dataclass
class Mapping:
    client: tuple[str, int]
    relay: socket.socket
    contacted: set[tuple[str, int]] = field(default_factory=set)
    last: float = field(default_factory=time.monotonic)

    @property
    def external(self) -> tuple[str, int]:
        host, port = self.relay.getsockname()[:2]
        return str(host), int(port)


def _bind_pair() -> tuple[list[socket.socket], int, int]:
    for _ in range(50):
        socks: list[socket.socket] = []
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind((A1, 0))
            p1 = probe.getsockname()[1]
            probe.close()
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind((A1, 0))
            p2 = probe.getsockname()[1]
            probe.close()
            for host in (A1, A2):
                for port in (p1, p2):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    socks.append(s)
                    s.bind((host, port))
            return socks, p1, p2
        except OSError:
            for s in socks:
                s.close()
    raise RuntimeError("no free port pair on loopback")


class FakeStunServer:
    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.b = behaviour or Behaviour()
        self.socks, self.p1, self.p2 = _bind_pair()
        self.mappings: dict[tuple[Any, ...], Mapping] = {}
        self.host_contacted: set[tuple[str, int]] = set()
        self.log: list[tuple[float, tuple[str, int], tuple[str, int], c.StunMessage]] = []
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._lock = threading.Lock()

    @property
    def primary(self) -> tuple[str, int]:
        return (A1, self.p1)

    @property
    def other(self) -> tuple[str, int]:
        return (A2, self.p2)

    def __enter__(self) -> FakeStunServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self.socks:
            s.close()
        for m in self.mappings.values():
            m.relay.close()

    def _sock(self, host: str, port: int) -> socket.socket:
        for s in self.socks:
            if s.getsockname()[:2] == (host, port):
                return s
        raise KeyError((host, port))

    def _mapping(self, client: tuple[str, int], dest: tuple[str, int]) -> Mapping:
        key: tuple[Any, ...] = {
            "EIM": (client,),
            "ADM": (client, dest[0]),
            "APDM": (client, dest),
        }.get(self.b.mapping, (client,))
        m = self.mappings.get(key)
        if m is None:
            relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            relay.bind((EXT, 0))
            m = Mapping(client, relay)
            self.mappings[key] = m
        return m

    def _allowed(self, m: Mapping, src: tuple[str, int]) -> bool:
        contacted = self.host_contacted if self.b.filter_scope == "host" else m.contacted
        if self.b.filtering == "EIF":
            return True
        if self.b.filtering == "ADF":
            return any(h == src[0] for h, _ in contacted)
        return src in contacted

    def _loop(self) -> None:
        while not self._stop.is_set():
            relays = [m.relay for m in self.mappings.values()]
            try:
                ready, _, _ = select.select(self.socks + relays, [], [], 0.05)
            except (OSError, ValueError):
                continue
            for s in ready:
                try:
                    data, addr = s.recvfrom(4096)
                except OSError:
                    continue
                if s in self.socks:
                    self._handle(s, data, (addr[0], addr[1]))
                else:
                    self._relay(s, data, (addr[0], addr[1]))

    def _relay(self, relay: socket.socket, data: bytes, src: tuple[str, int]) -> None:
        # A datagram for the emulated external address: only the client's own traffic can
        # come here (servers answer the client directly); that is hairpinning.
        if not self.b.hairpin:
            return
        for m in self.mappings.values():
            if m.relay is relay:
                relay.sendto(data, m.client)

    def _handle(self, s: socket.socket, data: bytes, client: tuple[str, int]) -> None:
        here = s.getsockname()[:2]
        try:
            req = c.decode(data)
        except c.StunDecodeError:
            return
        self.log.append((time.monotonic(), client, here, req))
        if self.b.udp_blocked:
            return
        if self.dropped < self.b.drop_first:
            self.dropped += 1
            return
        if self.b.delay_s:
            time.sleep(self.b.delay_s)
        now = time.monotonic()
        rport_attr = req.get(c.RESPONSE_PORT)
        if rport_attr is not None and len(rport_attr) >= 2:
            self._response_port(s, req, client, int.from_bytes(rport_attr[:2], "big"), now)
            return
        m = self._mapping(client, here)
        m.contacted.add(here)
        self.host_contacted.add(here)
        m.last = now
        mapped = client if self.b.mapping == "none" else m.external
        flags = req.get(c.CHANGE_REQUEST)
        change = int.from_bytes(flags, "big") if flags and len(flags) == 4 else 0
        src_host, src_port = here
        if self.b.rfc5780:
            if change & c.CHANGE_IP:
                src_host = A2 if src_host == A1 else A1
            if change & c.CHANGE_PORT:
                src_port = self.p2 if src_port == self.p1 else self.p1
        src = (src_host, src_port)
        if src != here and not self._allowed(m, src):
            return  # the emulated NAT's filter drops it
        other = None
        if self.b.rfc5780:
            other = (A2 if here[0] == A1 else A1, self.p2 if here[1] == self.p1 else self.p1)
        plain = client if self.b.alg else mapped
        if self.b.garbage_first:
            # A truncated datagram and a well-framed one with an impossible address family.
            self._sock(*src).sendto(data[:2] + b"\x00\x08" + data[4:20] + b"\x00\x20", client)
            bogus = ((c.XOR_MAPPED_ADDRESS, b"\x00\x09\x00\x01abcd"),)
            bad = c.StunMessage(c.BINDING_SUCCESS, req.transaction_id, bogus, req.classic)
            self._sock(*src).sendto(c.encode(bad), client)
        attrs: list[tuple[int, bytes]] = []
        if req.classic:
            attrs.append((c.MAPPED_ADDRESS, c.encode_address(plain)))
            attrs.append((c.SOURCE_ADDRESS, c.encode_address(src)))
            if other:
                attrs.append((c.CHANGED_ADDRESS, c.encode_address(other)))
        else:
            attrs.append((c.XOR_MAPPED_ADDRESS, c.encode_address(mapped, req.transaction_id)))
            if self.b.send_mapped:
                attrs.append((c.MAPPED_ADDRESS, c.encode_address(plain)))
            attrs.append((c.RESPONSE_ORIGIN, c.encode_address(src)))
            if other:
                attrs.append((c.OTHER_ADDRESS, c.encode_address(other)))
        resp = c.StunMessage(c.BINDING_SUCCESS, req.transaction_id, tuple(attrs), req.classic)
        self._sock(*src).sendto(c.encode(resp, fingerprint=not req.classic), client)

    def _response_port(
        self, s: socket.socket, req: c.StunMessage, client: tuple[str, int], port: int, now: float
    ) -> None:
        target = next((m for m in self.mappings.values() if m.external[1] == port), None)
        if target is None:
            return
        if self.b.lifetime_s is not None and now - target.last > self.b.lifetime_s:
            return  # expired: the answer dies at the emulated NAT
        resp = c.StunMessage(
            c.BINDING_SUCCESS,
            req.transaction_id,
            ((c.XOR_MAPPED_ADDRESS, c.encode_address(target.external, req.transaction_id)),),
        )
        s.sendto(c.encode(resp), target.client)

    def requests_to(self, host: str) -> list[float]:
        return [t for t, _, here, _ in self.log if here[0] == host]

    def change_requests(self) -> list[float]:
        return [t for t, _, _, req in self.log if req.get(c.CHANGE_REQUEST) is not None]
