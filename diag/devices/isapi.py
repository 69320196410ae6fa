"""ISAPI (the HTTP/XML API of many OEM cameras and recorders), with HTTP Digest.

Reads ``/ISAPI/System/deviceInfo`` (the login: one try), ``/ISAPI/System/Network/interfaces/1``,
``/ISAPI/System/Network/P2P``, ``/ISAPI/System/time`` and ``/ISAPI/System/time/ntpServers``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, ClassVar

import httpx

from diag.devices.base import Adapter, DeviceReport, Stopwatch, Target, clock_facts
from diag.devices.http import (
    Reply,
    child,
    children,
    digest_login,
    get_capped,
    local,
    parse_xml,
    xml_find,
)
from diag.model import JSONValue

DEVICE_INFO = "/ISAPI/System/deviceInfo"
NET_INTERFACE = "/ISAPI/System/Network/interfaces/1"
NET_P2P = "/ISAPI/System/Network/P2P"
TIME = "/ISAPI/System/time"
NTP_SERVERS = "/ISAPI/System/time/ntpServers"


def parse_device_info(body: bytes | str) -> dict[str, JSONValue] | None:
    root = parse_xml(body)
    if root is None or local(root.tag) != "DeviceInfo":
        return None
    keys = {
        "name": "deviceName",
        "model": "model",
        "serial": "serialNumber",
        "mac": "macAddress",
        "firmware": "firmwareVersion",
        "type": "deviceType",
        "vendor": "manufacturer",
    }
    return {k: xml_find(root, v) for k, v in keys.items()}


def parse_network(body: bytes | str) -> dict[str, Any] | None:
    """``{"ip", "mask", "gateway", "dns": [...], "dhcp"}`` from ``NetworkInterface`` XML."""
    root = parse_xml(body)
    if root is None:
        return None
    ipnode = root if local(root.tag) == "IPAddress" else None
    if ipnode is None:
        ipnode = next((c for c in root.iter() if local(c.tag) == "IPAddress"), None)
    if ipnode is None:
        return None
    dns = [
        d
        for d in (
            xml_find(ipnode, "PrimaryDNS/ipAddress"),
            xml_find(ipnode, "SecondaryDNS/ipAddress"),
        )
        if d and d not in ("0.0.0.0", "::")
    ]
    addressing = (xml_find(ipnode, "addressingType") or "").lower()
    return {
        "ip": xml_find(ipnode, "ipAddress"),
        "mask": xml_find(ipnode, "subnetMask"),
        "gateway": xml_find(ipnode, "DefaultGateway/ipAddress"),
        "dns": dns,
        "dhcp": {"dynamic": True, "static": False}.get(addressing),
    }


def parse_p2p(body: bytes | str) -> dict[str, JSONValue] | None:
    """``{"enabled", "status"}`` of the device's P2P service (None: the reply does not say)."""
    root = parse_xml(body)
    if root is None:
        return None
    enabled = xml_find(root, "enabled")
    if enabled is None:
        return None
    flag = {"true": True, "1": True, "false": False, "0": False}.get(enabled.lower())
    return {"enabled": flag, "status": xml_find(root, "status")}


def parse_time(body: bytes | str) -> tuple[dt.datetime | None, bool | None] | None:
    """(the device's clock in UTC, NTP on) from ``<Time><timeMode/><localTime/></Time>``."""
    root = parse_xml(body)
    if root is None or local(root.tag) != "Time":
        return None
    mode = (xml_find(root, "timeMode") or "").lower()
    ntp = {"ntp": True, "manual": False}.get(mode)
    when: dt.datetime | None = None
    text = xml_find(root, "localTime")
    if text:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = None  # a local time without its offset is not a UTC clock reading
    return when, ntp


def parse_ntp_servers(body: bytes | str) -> list[str] | None:
    root = parse_xml(body)
    if root is None:
        return None
    out: list[str] = []
    for srv in children(root, "NTPServer"):
        kind = (xml_find(srv, "addressingFormatType") or "").lower()
        value = xml_find(srv, "hostName") if kind == "hostname" else xml_find(srv, "ipAddress")
        if value and value not in ("0.0.0.0",):
            out.append(value)
    listed = child(root, "NTPServer") is not None or local(root.tag) == "NTPServerList"
    return out if listed else None


class IsapiAdapter(Adapter):
    name: ClassVar[str] = "isapi"
    port_names: ClassVar[tuple[str, ...]] = ("http", "web", "isapi")

    async def read(self, target: Target) -> DeviceReport:
        sw = Stopwatch()
        client, base = target.client, target.base
        r, decided, auth = await digest_login(self.name, target, DEVICE_INFO, "deviceInfo")
        if r is None:
            assert decided is not None
            return decided
        if r.status_code in (404, 405, 501):
            return DeviceReport(self.name, "unsupported")
        if r.status_code != 200:
            return DeviceReport(self.name, "error", errors={"deviceInfo": f"http-{r.status_code}"})
        report = DeviceReport(self.name, "ok", identity=parse_device_info(r.content))

        async def get(path: str) -> Reply | None:
            try:
                rep = await get_capped(client, base + path, auth)
            except httpx.HTTPError:
                report.errors[path] = "http"
                return None
            if rep.status_code == 404:
                report.unsupported.append(path)
            if rep.status_code != 200 or rep.truncated:
                return None
            return rep

        stamps: dict[str, Stopwatch] = {}

        async def timed(path: str) -> Reply | None:
            stamps[path] = Stopwatch()
            return await get(path)

        rn, rp, rt, rs = await asyncio.gather(
            get(NET_INTERFACE), get(NET_P2P), timed(TIME), get(NTP_SERVERS)
        )
        if rn is not None:
            net = parse_network(rn.content)
            if net is not None:
                report.network = net
        if rp is not None:
            report.p2p = parse_p2p(rp.content)
        parsed = parse_time(rt.content) if rt is not None else None
        servers = parse_ntp_servers(rs.content) if rs is not None else None
        if parsed is not None:
            when, ntp = parsed
            report.clock = clock_facts(when, stamps[TIME].midpoint(), ntp, servers or [])
        report.elapsed_ms = sw.ms()
        return report
