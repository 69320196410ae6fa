"""Read-only discovery of the router's port-mapping services: UPnP IGD, NAT-PMP and PCP.

Asks the gateway (and only the gateway) what it is: a unicast SSDP M-SEARCH for an Internet
Gateway Device, then its description and the SOAP actions ``GetExternalIPAddress`` and
``GetGenericPortMappingEntry`` (existing mappings); a NAT-PMP public address request; a PCP
ANNOUNCE. Nothing here creates, renews or deletes a mapping: those actions are never sent.
Every answer is untrusted: a malformed one means "not present", never a crash, and a description
URL that points anywhere but the gateway is not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import socket
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from diag.net.http import client as http_client
from diag.net.http import read_capped
from diag.net.route import local_ip_towards
from diag.net.udp import UdpProbe, udp_exchange

SSDP_PORT = 1900
NATPMP_PORT = 5351
# The gateway is one LAN hop away: it answers in a few ms. Unicast M-SEARCH has no MX delay
# (UPnP DA 1.1, 1.3.3), but some IGDs still wait up to MX = 1 s, so 1.2 s bounds the search.
SSDP_TIMEOUT_S = 1.2
# NAT-PMP/PCP: RFC 6886 starts its retransmissions at 250 ms; two tries within 0.6 s are enough
# on a LAN, and the answer is informational (we never need the service to work).
PMP_SCHEDULE_S = (0.0, 0.25)
PMP_TIMEOUT_S = 0.6
# The IGD's HTTP server is on the gateway; 1.5 s per request bounds a slow embedded web server.
HTTP_TIMEOUT_S = 1.5
# Existing mappings are listed up to this many entries: enough to see the forwards that matter,
# bounded so that a router with hundreds of entries cannot stall the check.
MAX_MAPPINGS = 32
# Bodies larger than this are not a router's description or SOAP answer, bytes.
MAX_BODY = 256 * 1024

SEARCH_TARGETS = (
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:device:InternetGatewayDevice:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
)
WAN_SERVICES = (
    "urn:schemas-upnp-org:service:WANIPConnection:2",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
)


@dataclass(frozen=True)
class Ports:
    """Where the gateway's services listen (tests point these at loopback fakes)."""

    ssdp: int = SSDP_PORT
    natpmp: int = NATPMP_PORT


@dataclass
class Discovery:
    """What the gateway said. ``None`` means not checked; ``False`` checked and absent."""

    upnp_present: bool | None = None
    upnp_external_ip: str | None = None
    upnp_external_asked: bool = False
    upnp_mappings: list[dict[str, Any]] = field(default_factory=list)
    upnp_location: str | None = None
    upnp_error: str | None = None
    natpmp_present: bool | None = None
    natpmp_external_ip: str | None = None
    natpmp_result: int | None = None
    pcp_present: bool | None = None
    time_ms: float = 0.0


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[Any, ...]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.queue.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        pass


def m_search(target: str, host: str, port: int) -> bytes:
    """A unicast M-SEARCH request (UPnP DA 1.1: no MX for unicast)."""
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {host}:{port}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"ST: {target}\r\n"
        "USER-AGENT: diag/1 UPnP/1.1 diag/1\r\n\r\n"
    ).encode("ascii")


def parse_ssdp(data: bytes) -> dict[str, str] | None:
    """Headers of an SSDP answer (lower-case names), or None when it is not one."""
    try:
        text = data[:8192].decode("utf-8", "replace")
    except Exception:
        return None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.1 200"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _same_host(url: str, gateway: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme == "http" and parts.hostname == gateway
    except ValueError:
        return False


async def ssdp_location(gateway: str, ports: Ports, timeout: float = SSDP_TIMEOUT_S) -> str | None:
    """The IGD description URL the gateway announces, or None."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Collector, local_addr=("0.0.0.0", 0), family=socket.AF_INET
    )
    try:
        for st in SEARCH_TARGETS:
            transport.sendto(m_search(st, gateway, ports.ssdp), (gateway, ports.ssdp))
        end = loop.time() + timeout
        while (left := end - loop.time()) > 0:
            try:
                data, addr = await asyncio.wait_for(proto.queue.get(), left)
            except TimeoutError:
                return None
            if addr[0] != gateway:
                continue
            headers = parse_ssdp(data)
            location = (headers or {}).get("location")
            # Only the gateway is probed: a LOCATION elsewhere is not followed (SSRF-safe).
            if location and _same_host(location, gateway):
                return location
        return None
    finally:
        transport.close()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_description(xml: bytes, location: str) -> tuple[str, str] | None:
    """(service type, absolute control URL) of the WAN connection service, or None."""
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, ValueError, LookupError):
        # LookupError: <?xml encoding="bogus"?> names a codec Python does not have.
        return None
    base = location
    for el in root.iter():
        if _local(el.tag) == "URLBase" and el.text and el.text.strip():
            base = el.text.strip()
    found: dict[str, str] = {}
    for svc in root.iter():
        if _local(svc.tag) != "service":
            continue
        kids = {_local(k.tag): (k.text or "").strip() for k in svc}
        stype, control = kids.get("serviceType", ""), kids.get("controlURL", "")
        if stype in WAN_SERVICES and control:
            found.setdefault(stype, urljoin(base, control))
    for stype in WAN_SERVICES:
        if stype in found:
            return stype, found[stype]
    return None


def soap_body(service: str, action: str, args: dict[str, str] | None = None) -> bytes:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in (args or {}).items())
    return (
        '<?xml version="1.0"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action} xmlns:u="{service}">{inner}</u:{action}>'
        "</s:Body></s:Envelope>"
    ).encode()


def parse_soap(xml: bytes) -> dict[str, str] | None:
    """The out-arguments of a SOAP response (local names -> text), None on fault or garbage."""
    try:
        root = ET.fromstring(xml)
    except (ET.ParseError, ValueError, LookupError):
        # LookupError: <?xml encoding="bogus"?> names a codec Python does not have.
        return None
    for el in root.iter():
        if _local(el.tag) == "Fault":
            return None
        if _local(el.tag).endswith("Response"):
            return {_local(k.tag): (k.text or "").strip() for k in el}
    return None


async def _soap(
    client: httpx.AsyncClient,
    url: str,
    service: str,
    action: str,
    args: dict[str, str] | None = None,
) -> dict[str, str] | None:
    r = await read_capped(
        client,
        "POST",
        url,
        MAX_BODY,
        content=soap_body(service, action, args),
        headers={
            "Content-Type": 'text/xml; charset="utf-8"',
            "SOAPAction": f'"{service}#{action}"',
        },
    )
    body = r.complete
    if r.status_code != 200 or body is None:
        return None
    return parse_soap(body)


def _valid_ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


async def upnp_probe(gateway: str, ports: Ports, out: Discovery) -> None:
    """Fills the UPnP fields of ``out``: presence, external address, existing mappings."""
    location = await ssdp_location(gateway, ports)
    if location is None:
        out.upnp_present = False
        return
    out.upnp_present = True
    out.upnp_location = location
    # No proxy from the environment (diag.net.http never reads it): a proxy must never see the
    # router's LAN traffic. tls=False: the IGD speaks plain HTTP (URLs are checked to be http://
    # on the gateway); building the default TLS context would load the CA store, ~30 ms of CPU
    # in the event loop that the concurrent STUN probes time their round trips in.
    async with http_client(timeout=HTTP_TIMEOUT_S, tls=False) as client:
        try:
            reply = await read_capped(client, "GET", location, MAX_BODY)
            status, desc = reply.status_code, reply.complete
            if status != 200 or desc is None:
                out.upnp_error = f"description: http-{status}"
                return
            svc = parse_description(desc, location)
            if svc is None:
                out.upnp_error = "description: no WAN connection service"
                return
            service, control = svc
            if not _same_host(control, gateway):
                out.upnp_error = "control URL is not on the gateway"
                return
            ext = await _soap(client, control, service, "GetExternalIPAddress")
            out.upnp_external_asked = True
            # miniupnpd answers an empty address when its WAN address is private or reserved
            # (behind another NAT): that is an answer, kept as None, not a missing one.
            out.upnp_external_ip = _valid_ip((ext or {}).get("NewExternalIPAddress"))
            if out.upnp_external_ip in ("0.0.0.0", "::"):
                out.upnp_external_ip = None
            for index in range(MAX_MAPPINGS):
                entry = await _soap(
                    client,
                    control,
                    service,
                    "GetGenericPortMappingEntry",
                    {"NewPortMappingIndex": str(index)},
                )
                if entry is None:
                    break  # 713 SpecifiedArrayIndexInvalid ends the list
                out.upnp_mappings.append(_mapping(entry))
        except (httpx.HTTPError, ValueError) as exc:
            out.upnp_error = type(exc).__name__


def _mapping(entry: dict[str, str]) -> dict[str, Any]:
    def port(text: str | None) -> int | None:
        return int(text) if text and text.isdigit() and 0 < int(text) < 65536 else None

    internal = entry.get("NewInternalClient", "")[:64]
    iport = port(entry.get("NewInternalPort"))
    return {
        "proto": entry.get("NewProtocol", "")[:8].lower(),
        "external_port": port(entry.get("NewExternalPort")),
        "internal": f"{internal}:{iport}" if iport is not None else internal,
        "description": entry.get("NewPortMappingDescription", "")[:80],
    }


async def _udp_ask(
    host: str, port: int, payload: bytes, accept: Any, timeout: float = PMP_TIMEOUT_S
) -> bytes | None:
    """Sends ``payload`` on the schedule and returns the first reply ``accept`` likes."""
    got: list[bytes] = []

    def match(data: bytes) -> str | None:
        if not accept(data):
            return None
        got.append(data)
        return ""

    gaps = [b - a for a, b in itertools.pairwise(PMP_SCHEDULE_S)]
    gaps.append(max(0.001, timeout - PMP_SCHEDULE_S[-1]))
    probe = UdpProbe("pmp", payload, match)
    await udp_exchange(host, port, lambda: probe, timeout, gaps=gaps)
    return got[0] if got else None


def parse_natpmp(data: bytes) -> tuple[int, str | None] | None:
    """(result code, external IPv4) of a NAT-PMP public address answer; None if not one."""
    if len(data) < 8 or data[0] != 0 or data[1] != 128:
        return None
    code = struct.unpack("!H", data[2:4])[0]
    if code != 0 or len(data) < 12:
        return code, None
    return code, str(ipaddress.IPv4Address(data[8:12]))


def pcp_announce(client_ip: str) -> bytes:
    """A PCP ANNOUNCE request (RFC 6887 14.1): version 2, opcode 0, lifetime 0."""
    try:
        ip = ipaddress.ip_address(client_ip)
    except ValueError:
        ip = ipaddress.IPv4Address(0)
    mapped = (
        ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + ip.packed) if ip.version == 4 else ip
    )
    return struct.pack("!BBHI", 2, 0, 0, 0) + mapped.packed


def parse_pcp(data: bytes) -> int | None:
    """The result code of a PCP ANNOUNCE response; None if the bytes are not one."""
    if len(data) < 24 or data[0] != 2 or data[1] != 0x80:
        return None
    return data[3]


async def discover(
    gateway: str, ports: Ports | None = None, clock: Callable[[], float] = time.monotonic
) -> Discovery:
    """Asks the gateway for UPnP IGD, NAT-PMP and PCP concurrently; never raises."""
    ports = ports or Ports()
    out = Discovery()
    t0 = clock()

    async def pmp() -> None:
        data = await _udp_ask(gateway, ports.natpmp, b"\x00\x00", lambda d: parse_natpmp(d))
        parsed = parse_natpmp(data) if data else None
        # Any well-formed answer proves the service, even an error: miniupnpd answers 3
        # ("network failure") when its WAN address is private or reserved.
        out.natpmp_present = parsed is not None
        if parsed is not None:
            out.natpmp_result = parsed[0]
            out.natpmp_external_ip = parsed[1] if parsed[0] == 0 else None

    async def pcp() -> None:
        client = local_ip_towards(gateway) or "0.0.0.0"
        data = await _udp_ask(
            gateway, ports.natpmp, pcp_announce(client), lambda d: parse_pcp(d) is not None
        )
        # Any PCP answer (even an error code) proves a PCP server; a NAT-PMP-only server
        # answers version 2 with a version-0 "unsupported version" packet, which is not PCP.
        out.pcp_present = data is not None

    async def upnp() -> None:
        try:
            await upnp_probe(gateway, ports, out)
        except OSError as exc:
            out.upnp_present = out.upnp_present or False
            out.upnp_error = type(exc).__name__

    async def guarded(coro: Any) -> None:
        with contextlib.suppress(OSError):
            await coro

    await asyncio.gather(guarded(pmp()), guarded(pcp()), upnp())
    out.time_ms = round((clock() - t0) * 1000, 1)
    return out
