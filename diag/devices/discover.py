"""Finding the devices on the site's LAN: WS-Discovery, the ARP sweep, MAC vendors, open ports.

``discover(iface, ...)`` sends a WS-Discovery ``Probe`` (SOAP 1.2 over UDP) to
239.255.255.250:3702 out of the interface that faces the site and, at the same time, ARP-sweeps
the interface's subnets (root; the heartbeat check's sweep). Every host found is asked on a few
TCP service ports; an ONVIF device's model and vendor come from its ProbeMatch scopes, and with
credentials from its API (``diag.devices``, one login per device). The MAC's vendor comes from the
IEEE OUI registry that ``netaddr`` ships. Answers are untrusted: capped, parsed without DTDs, and
a ProbeMatch counts only when it answers one of our probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from diag.devices.http import child, children, local, parse_xml, text_of
from diag.net.arp import ArpScan, arp_scan
from diag.net.backend import CAP_PACKET, current
from diag.net.ifaces import LocalInterface, sweep_targets
from diag.net.route import default_route

WSD_GROUP, WSD_PORT = "239.255.255.250", 3702
# WS-Discovery targets answer a Probe after a random delay of up to 500 ms (APP_MAX_DELAY);
# 1.2 s covers that twice over plus a slow embedded CPU, and runs alongside the ARP sweep.
WSD_WAIT_S = 1.2
# The probe goes out twice, 100 ms apart: multicast UDP on a busy LAN loses datagrams.
WSD_REPEAT_S = 0.1
# After the probes, how often the wait checks whether every host the ARP sweep found has answered
# (then it ends early; on a site with PCs and phones, which never answer, it runs the full wait).
WSD_POLL_S = 0.05
MAX_DATAGRAM = 65535
# Service ports worth knowing on a camera site: web, RTSP, and the vendors' SDK ports
# (8000 ISAPI/Hik SDK, 37777 Dahua).
SERVICE_PORTS: dict[str, int] = {
    "http": 80,
    "https": 443,
    "rtsp": 554,
    "sdk-8000": 8000,
    "http-8080": 8080,
    "sdk-37777": 37777,
}
# A LAN host answers a SYN within milliseconds; 0.6 s lets ARP resolve first (it is cached by the
# sweep) without making the whole command slow. A closed port answers RST at once.
PORT_TIMEOUT_S = 0.6

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"
TDS = "http://www.onvif.org/ver10/device/wsdl"


@dataclass
class Found:
    """One host on the LAN and what is known about it (facts; the words are the caller's)."""

    address: str
    mac: str | None = None
    mac_vendor: str | None = None
    onvif: bool = False
    xaddr: str | None = None
    vendor: str | None = None
    model: str | None = None
    name: str | None = None
    serial: str | None = None
    firmware: str | None = None
    api: str | None = None
    auth: str | None = None
    nvr: bool = False
    ports: dict[str, bool] = field(default_factory=dict)

    @property
    def open_ports(self) -> list[str]:
        return [n for n, ok in self.ports.items() if ok]

    @property
    def looks_like_camera(self) -> bool:
        return self.onvif or bool(
            self.ports.get("rtsp") or self.ports.get("sdk-8000") or self.ports.get("sdk-37777")
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "mac": self.mac,
            "mac_vendor": self.mac_vendor,
            "vendor": self.vendor,
            "model": self.model,
            "name": self.name,
            "serial": self.serial,
            "firmware": self.firmware,
            "onvif": self.onvif,
            "xaddr": self.xaddr,
            "api": self.api,
            "auth": self.auth,
            "kind": "nvr" if self.nvr else "ipc",
            "open_ports": self.open_ports,
        }


@dataclass
class Discovery:
    iface: str
    networks: list[str]
    found: list[Found]
    arp: str  # "ok", "needs-root", "no-packet-sockets" (Windows, macOS), "no-interface"
    wsd_answers: int
    duration_s: float
    # The default route's gateway when it is on this interface's LAN (for the draft site file).
    gateway: str | None = None


# --- WS-Discovery (pure parts) -----------------------------------------------------------------


def probe_message(message_id: str, types: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}" '
        f'xmlns:tds="{TDS}"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{WSD}/Probe</a:Action>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        f"<a:ReplyTo><a:Address>{WSA}/role/anonymous</a:Address></a:ReplyTo>"
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>'
        f"</s:Header><s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode()


@dataclass(frozen=True)
class ProbeMatch:
    endpoint: str
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...]
    types: tuple[str, ...]

    def scope(self, kind: str) -> str | None:
        prefix = f"onvif://www.onvif.org/{kind}/"
        for s in self.scopes:
            if s.lower().startswith(prefix.lower()):
                value = unquote(s[len(prefix) :]).strip()
                return value[:128] or None
        return None


def parse_probe_matches(data: bytes, ours: set[str]) -> list[ProbeMatch]:
    """The ProbeMatch entries of a reply to one of our probes (``ours``: our MessageIDs)."""
    root = parse_xml(data)
    if root is None or local(root.tag) != "Envelope":
        return []
    relates = text_of(child(child(root, "Header"), "RelatesTo"))
    if relates not in ours:
        return []  # not an answer to us: a stray or spoofed datagram
    out = []
    for m in children(child(child(root, "Body"), "ProbeMatches"), "ProbeMatch"):
        endpoint = text_of(child(child(m, "EndpointReference"), "Address")) or ""

        def words(node: ET.Element | None) -> tuple[str, ...]:
            text = node.text if node is not None and node.text else ""
            return tuple(text.split()[:64])

        out.append(
            ProbeMatch(
                endpoint[:256],
                words(child(m, "XAddrs")),
                words(child(m, "Scopes")),
                words(child(m, "Types")),
            )
        )
    return out


def xaddr_host(xaddr: str) -> str | None:
    try:
        host = urlsplit(xaddr).hostname
        return str(ipaddress.ip_address(host or ""))
    except ValueError:
        return None


class _WsdProto(asyncio.DatagramProtocol):
    def __init__(self, ours: set[str], sink: Callable[[str, list[ProbeMatch]], None]) -> None:
        self.ours = ours
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        matches = parse_probe_matches(data[:MAX_DATAGRAM], self.ours)
        if matches:
            self.sink(addr[0], matches)


async def ws_discover(
    local_ip: str,
    wait_s: float = WSD_WAIT_S,
    enough: Callable[[set[str]], bool] | None = None,
) -> dict[str, list[ProbeMatch]]:
    """Probe from ``local_ip`` (the site-facing interface's address); answers by source IP.

    ``enough(answered source IPs)`` true ends the wait before ``wait_s`` (the caller knows who
    should answer: every host its ARP sweep found)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    found: dict[str, list[ProbeMatch]] = {}
    ids = [f"uuid:{uuid.uuid4()}", f"uuid:{uuid.uuid4()}"]
    try:
        sock.bind((local_ip, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(local_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # never past the router
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setblocking(False)
    except OSError:
        sock.close()
        return found

    def sink(src: str, matches: list[ProbeMatch]) -> None:
        found.setdefault(src, [])
        known = {m.endpoint for m in found[src]}
        found[src].extend(m for m in matches if m.endpoint not in known)

    transport, _ = await loop.create_datagram_endpoint(lambda: _WsdProto(set(ids), sink), sock=sock)
    try:
        probes = [
            probe_message(ids[0], "dn:NetworkVideoTransmitter"),
            probe_message(ids[1], "tds:Device"),
        ]
        for _ in range(2):
            for p in probes:
                with contextlib.suppress(OSError):
                    transport.sendto(p, (WSD_GROUP, WSD_PORT))
            await asyncio.sleep(WSD_REPEAT_S)
        end = loop.time() + max(0.0, wait_s - 2 * WSD_REPEAT_S)
        while (left := end - loop.time()) > 0:
            if enough is not None and enough(set(found)):
                break
            await asyncio.sleep(min(WSD_POLL_S, left))
    finally:
        transport.close()
    return found


# --- MAC vendors ------------------------------------------------------------------------------


LOCALLY_ADMINISTERED = "(locally administered)"


def mac_vendor(mac: str | None) -> str | None:
    """The organisation the IEEE registered the MAC's OUI to (netaddr's copy of the registry)."""
    if not mac:
        return None
    try:
        first = int(mac.split(":")[0], 16)
    except ValueError:
        return None
    if first & 0x02:
        return LOCALLY_ADMINISTERED  # no OUI: a virtual NIC or a randomised address
    try:
        from netaddr import EUI, NotRegisteredError

        return str(EUI(mac).oui.registration().org)[:128]
    except (NotRegisteredError, ValueError, IndexError, TypeError):
        return None
    except Exception:  # netaddr's data files missing in a broken install
        return None


# --- the whole discovery ----------------------------------------------------------------------


async def _port_open(ip: str, port: int) -> bool:
    try:
        _r, w = await asyncio.wait_for(asyncio.open_connection(ip, port), PORT_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    w.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(w.wait_closed(), 0.2)
    return True


async def discover(
    iface: LocalInterface,
    *,
    root: bool,
    credentials: tuple[str, str] | None = None,
    exclude: Sequence[str] = (),
) -> Discovery:
    """Everything found on ``iface``'s LAN (``exclude``: addresses not to list, e.g. the
    laptop's own)."""
    t0 = time.monotonic()
    local_ip = str(iface.networks[0].ip)
    targets, swept, _offlink = sweep_targets(iface, ())
    net = current()
    # No raw Ethernet on Windows and macOS (also as Administrator / with sudo): no ARP sweep.
    can_arp = net.has(CAP_PACKET, root)
    arp_state = "ok" if can_arp else ("needs-root" if net.packet_sockets else "no-packet-sockets")
    loop = asyncio.get_running_loop()
    arp_task: asyncio.Future[ArpScan] | None = None
    if can_arp:
        arp_task = loop.run_in_executor(None, lambda: arp_scan(iface, targets))
    skip = set(exclude) | iface.addresses
    gw = default_route(net).ipv4_gateway

    def everyone_answered(answered: set[str]) -> bool:
        """The sweep is over and every host it found (but the laptop and the gateway, which is
        no camera) has answered the Probe: nobody else is there to wait for."""
        if arp_task is None or not arp_task.done() or arp_task.exception() is not None:
            return False
        expected = set(arp_task.result().by_ip()) - skip - {gw}
        return bool(expected) and expected <= answered

    wsd = await ws_discover(local_ip, enough=everyone_answered)
    arp: dict[str, list[str]] = {}
    if arp_task is not None:
        try:
            arp = (await arp_task).by_ip()
        except OSError:
            arp_state = "error"
    hosts: dict[str, Found] = {}
    for ip, macs in arp.items():
        if ip not in skip:
            hosts[ip] = Found(ip, mac=macs[0].lower() if macs else None)
    for src, matches in wsd.items():
        for m in matches:
            addr = next((h for h in map(xaddr_host, m.xaddrs) if h), None) or src
            if addr in skip or not iface.onlink(addr):
                continue  # an answer naming an address off this LAN is not listed
            f = hosts.setdefault(addr, Found(addr))
            f.onvif = True
            f.xaddr = next((x for x in m.xaddrs if xaddr_host(x) == addr), None)
            f.model = f.model or m.scope("hardware")
            f.name = f.name or m.scope("name")
            f.vendor = f.vendor or m.scope("mfr") or m.scope("manufacturer")
            f.nvr = f.nvr or "nvr" in (f.model or "").lower() or "dn:NetworkVideoDisplay" in m.types
    for f in hosts.values():
        f.mac_vendor = mac_vendor(f.mac)

    async def probe(f: Found) -> None:
        names = list(SERVICE_PORTS)
        oks = await asyncio.gather(*(_port_open(f.address, SERVICE_PORTS[n]) for n in names))
        f.ports = dict(zip(names, oks, strict=True))
        if credentials is not None and f.looks_like_camera:
            await _identify(f, credentials)

    await asyncio.gather(*(probe(f) for f in hosts.values()))
    found = sorted(hosts.values(), key=lambda f: ipaddress.ip_address(f.address))
    return Discovery(
        iface.name,
        [str(n) for n in swept] or [str(n.network) for n in iface.networks],
        found,
        arp_state,
        sum(len(v) for v in wsd.values()),
        round(time.monotonic() - t0, 3),
        gw if gw and iface.onlink(gw) else None,
    )


async def _identify(f: Found, credentials: tuple[str, str]) -> None:
    """Identity through the device's API (``auto``): one login, never retried."""
    from diag.devices import Target, read_device
    from diag.devices.http import device_client

    port = 80
    if f.xaddr:
        with contextlib.suppress(ValueError):
            port = urlsplit(f.xaddr).port or 80
    elif not f.ports.get("http"):
        return
    user, password = credentials
    async with device_client() as client:
        report = await read_device(
            "auto", Target(f.address, f.address, port, user, password, client)
        )
    f.auth = report.auth
    if report.auth != "ok" or report.identity is None:
        return
    f.api = report.api
    ident = report.identity
    for key in ("vendor", "model", "serial", "firmware"):
        value = ident.get(key)
        if isinstance(value, str) and value:
            setattr(f, key, value)
    if isinstance(ident.get("type"), str) and "nvr" in str(ident["type"]).lower():
        f.nvr = True
