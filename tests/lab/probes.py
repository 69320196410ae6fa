"""Plain-socket probes the lab tests run inside a lab namespace, independent of diag's checks.

``python probes.py NAME ARG...`` prints one JSON value. Probes: ``hello HOST PORT`` (the
platform's UDP hello), ``tcp HOST PORT`` (connect + first line), ``ttl HOST PORT PROTO MAXTTL``
(which hop answers each TTL: the hop where probes die), ``arp IFACE IP`` (every MAC answering
ARP), ``vlan IFACE SECONDS`` (802.1Q VIDs seen), ``udp_open_and_wait`` / ``udp_send`` (does an
idle NAT mapping still let a reply in).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import time

# Every probe gives up after this long (s): lab links answer in milliseconds unless a fault drops
# the packet, and the tests must stay fast.
WAIT_S = 1.5


def hello(host: str, port: str) -> str | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(WAIT_S)
    nonce = os.urandom(4).hex()
    for _ in range(2):
        try:
            s.sendto(f"DIAGP2P1 HELLO {nonce}".encode(), (host, int(port)))
            data, _ = s.recvfrom(512)
            return data.decode(errors="replace")
        except OSError:
            continue
    return None


def tcp(host: str, port: str) -> str | None:
    try:
        with socket.create_connection((host, int(port)), timeout=WAIT_S) as s:
            s.settimeout(0.5)
            try:
                return s.recv(200).decode(errors="replace").strip() or "connected"
            except OSError:
                return "connected"
    except OSError as exc:
        return None if isinstance(exc, TimeoutError) else f"error:{exc.errno}"


IP_RECVERR = 11
SO_EE_ORIGIN_ICMP = 2


def ttl(host: str, port: str, proto: str, maxttl: str) -> list[str | None]:
    """For TTL 1..maxttl: the address that answered (ICMP time exceeded / unreachable / the target
    itself), or None when the probe died silently."""
    addr = socket.gethostbyname(host)
    out: list[str | None] = []
    for t in range(1, int(maxttl) + 1):
        out.append(_ttl_one(addr, int(port), proto, t))
    return out


def _ttl_one(addr: str, port: int, proto: str, t: int) -> str | None:
    typ = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, typ)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, t)
    s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    s.setblocking(False)
    try:
        if proto == "udp":
            s.sendto(b"DIAGP2P1 HELLO ttl", (addr, port))
        else:
            try:
                s.connect((addr, port))
            except BlockingIOError:
                pass
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            r, w, _ = select.select([s], [s] if proto == "tcp" else [], [], 0.05)
            try:
                _data, anc, _f, _a = s.recvmsg(512, 512, socket.MSG_ERRQUEUE)
                for level, ctype, data in anc:
                    if level == socket.IPPROTO_IP and ctype == IP_RECVERR and len(data) >= 24:
                        # struct sock_extended_err (16 bytes) + sockaddr_in of the offender
                        return socket.inet_ntoa(data[20:24])
            except BlockingIOError:
                pass
            except OSError:
                pass
            if proto == "tcp" and w:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    return addr
            if proto == "udp" and r:
                try:
                    s.recv(512)
                    return addr
                except OSError:
                    pass
        return None
    finally:
        s.close()


def arp(iface: str, ip: str) -> list[str]:
    """MACs answering an ARP request for ``ip`` (two or more: an IP conflict)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
    s.bind((iface, 0))
    mac = s.getsockname()[4]
    with open(f"/sys/class/net/{iface}/address") as fh:
        mac = bytes.fromhex(fh.read().strip().replace(":", ""))
    src_ip = _iface_ip(iface)
    pkt = (
        b"\xff" * 6 + mac + b"\x08\x06"
        + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
        + mac + socket.inet_aton(src_ip) + b"\x00" * 6 + socket.inet_aton(ip)
    )  # fmt: skip
    seen: set[str] = set()
    for _ in range(2):
        s.send(pkt)
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            r, _, _ = select.select([s], [], [], 0.05)
            if not r:
                continue
            frame = s.recv(128)
            if (
                len(frame) >= 42
                and frame[20:22] == b"\x00\x02"
                and frame[28:32] == socket.inet_aton(ip)
            ):
                seen.add(frame[22:28].hex(":"))
    return sorted(seen)


def _iface_ip(iface: str) -> str:
    import fcntl

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack("256s", iface.encode()[:15])
    return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR


def vlan(iface: str, seconds: str) -> list[int]:
    """802.1Q VIDs of frames seen on ``iface`` (the kernel may hand the tag over as aux data)."""
    sol_packet, packet_auxdata, vlan_valid = 263, 8, 1 << 4
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((iface, 0))
    s.setsockopt(sol_packet, packet_auxdata, 1)
    vids: set[int] = set()
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        frame, anc, _f, _a = s.recvmsg(2048, socket.CMSG_SPACE(32))
        for level, typ, data in anc:
            if level == sol_packet and typ == packet_auxdata and len(data) >= 20:
                status, tci = (
                    struct.unpack_from("=I", data, 0)[0],
                    struct.unpack_from("=H", data, 16)[0],
                )
                if status & vlan_valid:
                    vids.add(tci & 0xFFF)
        if len(frame) >= 18 and frame[12:14] == b"\x81\x00":
            vids.add(struct.unpack_from("!H", frame, 14)[0] & 0xFFF)
    return sorted(vids)


def stun_change(server: str, port: str = "3478") -> dict[str, list[object]]:
    """Binding requests with CHANGE-REQUEST (RFC 5780): where each answer came from."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(WAIT_S / 2)
    out: dict[str, list[object]] = {}
    for name, flags in (("none", None), ("port", 0x02), ("ip", 0x04), ("both", 0x06)):
        attrs = b"" if flags is None else struct.pack("!HHI", 0x0003, 4, flags)
        req = struct.pack("!HHI", 0x0001, len(attrs), 0x2112A442) + os.urandom(12) + attrs
        s.sendto(req, (server, int(port)))
        try:
            data, src = s.recvfrom(2048)
        except OSError:
            continue
        if data[:2] == b"\x01\x01":  # Binding success response
            out[name] = [src[0], src[1]]
    return out


def lldp(iface: str, seconds: str) -> dict[str, object] | None:
    """The first LLDP frame heard: system name, port VLAN id and VLAN ids (IEEE 802.1 TLVs)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88CC))
    s.bind((iface, 0))
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        frame = s.recv(2048)
        if frame[12:14] != b"\x88\xcc":
            continue
        out: dict[str, object] = {"system": None, "pvid": None, "vlans": []}
        i = 14
        while i + 2 <= len(frame):
            head = struct.unpack_from("!H", frame, i)[0]
            typ, length = head >> 9, head & 0x1FF
            val = frame[i + 2 : i + 2 + length]
            i += 2 + length
            if typ == 0:
                break
            if typ == 5:
                out["system"] = val.decode(errors="replace")
            if typ == 127 and val[:3] == b"\x00\x80\xc2":
                if val[3] == 1:
                    out["pvid"] = struct.unpack_from("!H", val, 4)[0]
                elif val[3] == 3:
                    out["vlans"].append(struct.unpack_from("!H", val, 4)[0])  # type: ignore[attr-defined]
        return out
    return None


def udp_open_and_wait(port: str, dest: str, dport: str, wait: str) -> str | None:
    """Sends one datagram from ``port`` to dest:dport (opening a NAT mapping), then waits up to
    ``wait`` s for anything coming back to ``port``: a mapping still alive lets it in."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(port)))
    s.sendto(b"open", (dest, int(dport)))
    print("sent", flush=True, file=sys.stderr)
    s.settimeout(float(wait))
    try:
        return s.recvfrom(512)[0].decode(errors="replace")
    except OSError:
        return None


def udp_send(sport: str, dest: str, dport: str) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(sport)))
    s.sendto(b"late reply", (dest, int(dport)))
    return True


if __name__ == "__main__":
    fn = globals()[sys.argv[1]]
    print(json.dumps(fn(*sys.argv[2:])))
