"""ONVIF (Profile S device management service), SOAP 1.2 over HTTP, WS-Security UsernameToken.

The flow, as ONVIF clients must do it (ONVIF Core spec 5.12, "Authentication"):

1. ``GetSystemDateAndTime`` without credentials (every device must answer it so): the device's
   clock, NTP or manual, and the offset between its clock and the laptop's.
2. ``GetDeviceInformation`` with a UsernameToken ``PasswordDigest`` = Base64(SHA-1(nonce +
   created + password)) whose ``created`` is the laptop's time moved by that offset, so a device
   whose clock is hours off still accepts the token. This is the login: one try. A device that asks
   for HTTP Digest (401 with a Digest challenge, no SOAP fault) gets one retry with Digest.
3. ``GetNetworkInterfaces``, ``GetNetworkDefaultGateway``, ``GetDNS``, ``GetNTP`` and
   ``GetServices`` (``GetCapabilities`` on devices without it), concurrently.

SOAP faults become facts: ``ter:NotAuthorized`` is a rejected login, ``ter:ActionNotSupported``
lists the operation as unsupported. The requests are written here rather than through zeep /
onvif-zeep-async: see ``docs/devices.md`` for the measured cost (import time and per-request time)
that decided it; the lab checks this module against onvif-zeep-async on every lab device.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import ipaddress
import secrets
import xml.etree.ElementTree as ET
from typing import ClassVar
from xml.sax.saxutils import escape

import httpx

from diag.devices.base import Adapter, DeviceReport, Stopwatch, Target, clock_facts, iso, utc_now
from diag.devices.http import (
    Reply,
    child,
    children,
    descendant,
    local,
    parse_xml,
    request_capped,
    text_of,
    xml_find,
)
from diag.model import JSONValue
from diag.net.digest import DigestAuth

DEVICE_SERVICE = "/onvif/device_service"
SOAP_ENV = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PW_DIGEST = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
    "#PasswordDigest"
)
B64 = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
OPERATIONS = (
    "GetNetworkInterfaces",
    "GetNetworkDefaultGateway",
    "GetDNS",
    "GetNTP",
    "GetServices",
)


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken PasswordDigest: Base64(SHA-1(nonce + created + password))."""
    raw = hashlib.sha1(nonce + created.encode("utf-8") + password.encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def security_header(username: str, password: str, created: dt.datetime) -> str:
    nonce = secrets.token_bytes(16)
    stamp = iso(created)
    return (
        f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" s:mustUnderstand="1">'
        "<wsse:UsernameToken>"
        f"<wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{PW_DIGEST}">{password_digest(nonce, stamp, password)}'
        "</wsse:Password>"
        f'<wsse:Nonce EncodingType="{B64}">{base64.b64encode(nonce).decode("ascii")}</wsse:Nonce>'
        f"<wsu:Created>{stamp}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def envelope(operation: str, body: str = "", security: str = "") -> bytes:
    header = f"<s:Header>{security}</s:Header>" if security else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:tds="{TDS}">{header}'
        f"<s:Body><tds:{operation}>{body}</tds:{operation}></s:Body></s:Envelope>"
    ).encode()


def soap_body(root: ET.Element | None) -> ET.Element | None:
    if root is None or local(root.tag) != "Envelope":
        return None
    return child(root, "Body")


def fault_code(body: ET.Element | None) -> str | None:
    """The innermost subcode of a SOAP 1.2 fault, prefix dropped (``NotAuthorized``), or the code
    itself (``Sender``); None when the body is no fault."""
    fault = child(body, "Fault")
    if fault is None:
        return None
    code = child(fault, "Code")
    value = text_of(child(code, "Value")) or "fault"
    sub = child(code, "Subcode")
    while sub is not None:
        value = text_of(child(sub, "Value")) or value
        sub = child(sub, "Subcode")
    return value.rsplit(":", 1)[-1]


def parse_date_time(body: ET.Element | None) -> tuple[dt.datetime | None, bool | None] | None:
    """(UTC clock, NTP on) from ``GetSystemDateAndTimeResponse``; None if it is not one."""
    resp = child(body, "GetSystemDateAndTimeResponse")
    sdt = child(resp, "SystemDateAndTime")
    if sdt is None:
        return None
    kind = (xml_find(sdt, "DateTimeType") or "").lower()
    ntp = {"ntp": True, "manual": False}.get(kind)
    utc = child(sdt, "UTCDateTime")
    when: dt.datetime | None = None
    if utc is not None:
        try:
            y, mo, d, h, mi, sec = (
                int(xml_find(utc, p) or "x")
                for p in (
                    "Date/Year",
                    "Date/Month",
                    "Date/Day",
                    "Time/Hour",
                    "Time/Minute",
                    "Time/Second",
                )
            )
            when = dt.datetime(y, mo, d, h, mi, min(sec, 59), tzinfo=dt.UTC)
        except (ValueError, OverflowError):
            when = None
    return when, ntp


def parse_device_information(body: ET.Element | None) -> dict[str, JSONValue] | None:
    resp = child(body, "GetDeviceInformationResponse")
    if resp is None:
        return None
    return {
        "vendor": xml_find(resp, "Manufacturer"),
        "model": xml_find(resp, "Model"),
        "serial": xml_find(resp, "SerialNumber"),
        "firmware": xml_find(resp, "FirmwareVersion"),
        "hardware": xml_find(resp, "HardwareId"),
    }


def _mask(prefix: str | None) -> str | None:
    try:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{int(prefix or 'x')}").netmask)
    except ValueError:
        return None


def parse_interfaces(body: ET.Element | None) -> dict[str, JSONValue] | None:
    """The first enabled IPv4 interface: ip, mask, dhcp, mac."""
    resp = child(body, "GetNetworkInterfacesResponse")
    if resp is None:
        return None
    for nic in children(resp, "NetworkInterfaces"):
        if (xml_find(nic, "Enabled") or "true").lower() != "true":
            continue
        v4 = child(nic, "IPv4")
        cfg = child(v4, "Config")
        if v4 is None or cfg is None:
            continue
        dhcp = (xml_find(cfg, "DHCP") or "").lower() == "true"
        addr = child(cfg, "FromDHCP") if dhcp else child(cfg, "Manual")
        if addr is None:
            addr = child(cfg, "Manual") or child(cfg, "FromDHCP")
        return {
            "ip": xml_find(addr, "Address") if addr is not None else None,
            "mask": _mask(xml_find(addr, "PrefixLength")) if addr is not None else None,
            "dhcp": dhcp,
            "mac": (xml_find(nic, "Info/HwAddress") or "").lower() or None,
        }
    return {"ip": None, "mask": None, "dhcp": None, "mac": None}


def parse_gateway(body: ET.Element | None) -> list[str] | None:
    resp = child(body, "GetNetworkDefaultGatewayResponse")
    gw = child(resp, "NetworkGateway")
    if resp is None:
        return None
    return [t for t in (text_of(n) for n in children(gw, "IPv4Address")) if t]


def _hosts(info: ET.Element | None, *groups: str) -> list[str]:
    out: list[str] = []
    for group in groups:
        for node in children(info, group):
            kind = (xml_find(node, "Type") or "").lower()
            tag = {"dns": "DNSname", "ipv6": "IPv6Address"}.get(kind, "IPv4Address")
            value = xml_find(node, tag)
            if value and value not in ("0.0.0.0",):
                out.append(value)
    return out


def parse_dns(body: ET.Element | None) -> list[str] | None:
    info = child(child(body, "GetDNSResponse"), "DNSInformation")
    if info is None:
        return None
    from_dhcp = (xml_find(info, "FromDHCP") or "").lower() == "true"
    groups = ("DNSFromDHCP", "DNSManual") if from_dhcp else ("DNSManual", "DNSFromDHCP")
    return _hosts(info, *groups)


def parse_ntp(body: ET.Element | None) -> list[str] | None:
    info = child(child(body, "GetNTPResponse"), "NTPInformation")
    if info is None:
        return None
    from_dhcp = (xml_find(info, "FromDHCP") or "").lower() == "true"
    groups = ("NTPFromDHCP", "NTPManual") if from_dhcp else ("NTPManual", "NTPFromDHCP")
    return _hosts(info, *groups)


def parse_services(body: ET.Element | None) -> list[str] | None:
    """Service namespaces from ``GetServicesResponse`` or ``GetCapabilitiesResponse``."""
    resp = child(body, "GetServicesResponse")
    if resp is not None:
        return [t for t in (xml_find(s, "Namespace") for s in children(resp, "Service")) if t]
    caps = descendant(child(body, "GetCapabilitiesResponse"), "Capabilities")
    if caps is None:
        return None
    return [local(c.tag) for c in caps if child(c, "XAddr") is not None]


class OnvifAdapter(Adapter):
    name: ClassVar[str] = "onvif"
    port_names: ClassVar[tuple[str, ...]] = ("onvif", "http", "web")

    async def read(self, target: Target) -> DeviceReport:
        sw = Stopwatch()
        url = target.base + DEVICE_SERVICE
        client = target.client
        report = DeviceReport(self.name, "error")
        # 1. The device's clock, unauthenticated.
        try:
            clock_sw = Stopwatch()
            r = await self._post(client, url, "GetSystemDateAndTime")
            laptop_at = clock_sw.midpoint()
        except httpx.HTTPError:
            report.errors["GetSystemDateAndTime"] = "http"
            return report
        body = soap_body(parse_xml(r.content)) if not r.truncated else None
        wants_digest = r.status_code == 401 and "digest" in _challenge(r)
        parsed = parse_date_time(body)
        if parsed is None and not wants_digest and fault_code(body) is None:
            # Not a SOAP endpoint (404, an HTML page, garbage): this device has no ONVIF here.
            report.auth = "unsupported"
            return report
        offset = dt.timedelta(0)
        ntp: bool | None = None
        device_utc: dt.datetime | None = None
        if parsed is not None:
            device_utc, ntp = parsed
            if device_utc is not None:
                offset = device_utc - laptop_at
        # 2. The login: one try (plus a Digest retry only when HTTP asks for it).
        digest = DigestAuth(target.username, target.password) if wants_digest else None
        ri, info_body = await self._call(target, url, "GetDeviceInformation", offset, digest)
        if ri is None:
            report.errors["GetDeviceInformation"] = "http"
            return report
        if ri.status_code == 401 and digest is None and "digest" in _challenge(ri):
            if fault_code(info_body) != "NotAuthorized":
                digest = DigestAuth(target.username, target.password)
                ri, info_body = await self._call(
                    target, url, "GetDeviceInformation", offset, digest
                )
                if ri is None:
                    report.errors["GetDeviceInformation"] = "http"
                    return report
        code = fault_code(info_body)
        if code in ("NotAuthorized", "FailedAuthentication", "InvalidSecurityToken") or (
            ri.status_code in (401, 403) and code is None
        ):
            report.auth = "rejected"
            report.locked = ri.headers.get("x-lockout") == "1"
            return report
        identity = parse_device_information(info_body)
        if identity is None:
            report.errors["GetDeviceInformation"] = f"fault:{code}" if code else "bad-reply"
            return report
        report.auth = "ok"
        report.identity = identity
        # 3. The rest, concurrently.
        results = await asyncio.gather(
            *(self._call(target, url, op, offset, digest) for op in OPERATIONS)
        )
        bodies: dict[str, ET.Element | None] = {}
        for op, (rep, b) in zip(OPERATIONS, results, strict=True):
            c = fault_code(b)
            if rep is None:
                report.errors[op] = "http"
            elif c == "ActionNotSupported" or rep.status_code in (404, 405):
                report.unsupported.append(op)
            elif c is not None:
                report.errors[op] = f"fault:{c}"
            bodies[op] = b
        if "GetServices" in report.unsupported:
            _r, bodies["GetServices"] = await self._call(
                target, url, "GetCapabilities", offset, digest, "<tds:Category>All</tds:Category>"
            )
        nic = parse_interfaces(bodies["GetNetworkInterfaces"])
        gws = parse_gateway(bodies["GetNetworkDefaultGateway"])
        dns = parse_dns(bodies["GetDNS"])
        if nic is not None or gws is not None or dns is not None:
            nic = nic or {}
            report.network = {
                "ip": nic.get("ip"),
                "mask": nic.get("mask"),
                "gateway": gws[0] if gws else None,
                "dns": list[JSONValue](dns or []),
                "dhcp": nic.get("dhcp"),
            }
            if nic.get("mac"):
                identity["mac"] = nic["mac"]
        identity.setdefault("mac", None)
        services = parse_services(bodies["GetServices"])
        if services is not None:
            identity["services"] = list[JSONValue](services)
        servers = parse_ntp(bodies["GetNTP"])
        if parsed is not None:
            report.clock = clock_facts(device_utc, laptop_at, ntp, servers or [])
        report.elapsed_ms = sw.ms()
        return report

    async def _post(
        self,
        client: httpx.AsyncClient,
        url: str,
        operation: str,
        body: str = "",
        security: str = "",
        auth: httpx.Auth | None = None,
    ) -> Reply:
        action = f"{TDS}/{operation}"
        headers = {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
        return await request_capped(
            client, "POST", url, auth, envelope(operation, body, security), headers
        )

    async def _call(
        self,
        target: Target,
        url: str,
        operation: str,
        offset: dt.timedelta,
        digest: httpx.Auth | None,
        body: str = "",
    ) -> tuple[Reply | None, ET.Element | None]:
        # A fresh nonce and the device's idea of "now" for every request.
        sec = security_header(target.username, target.password, utc_now() + offset)
        try:
            r = await self._post(target.client, url, operation, body, sec, digest)
        except httpx.HTTPError:
            return None, None
        return r, (soap_body(parse_xml(r.content)) if not r.truncated else None)


def _challenge(r: Reply) -> str:
    return str(r.headers.get("www-authenticate", "")).lower()
