"""The Dahua HTTP API (``/cgi-bin/*.cgi``, text ``key=value`` replies), with HTTP Digest.

Reads ``magicBox.cgi?action=getSystemInfo`` (the login: one try), ``getSoftwareVersion``,
``getVendor``, ``configManager.cgi?action=getConfig&name=Network|NTP|T2UServer`` and
``global.cgi?action=getCurrentTime``. The device's clock comes back as its *local* time without
the zone it is in (the zone is an index into a firmware table), so this adapter reports the
clock reading but no offset to UTC: only NTP on/off and its server say whether the clock is kept.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import httpx

from diag.devices.base import Adapter, DeviceReport, Stopwatch, Target
from diag.devices.http import Reply, digest_login, get_capped
from diag.model import JSONValue

SYSTEM_INFO = "/cgi-bin/magicBox.cgi?action=getSystemInfo"
SOFTWARE = "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"
VENDOR = "/cgi-bin/magicBox.cgi?action=getVendor"
NETWORK = "/cgi-bin/configManager.cgi?action=getConfig&name=Network"
NTP = "/cgi-bin/configManager.cgi?action=getConfig&name=NTP"
P2P = "/cgi-bin/configManager.cgi?action=getConfig&name=T2UServer"
CURRENT_TIME = "/cgi-bin/global.cgi?action=getCurrentTime"
MAX_LINES = 2000


def parse_kv(body: bytes) -> dict[str, str] | None:
    """``key=value`` lines (CRLF or LF); None when the body is not that (HTML, binary)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out: dict[str, str] = {}
    for line in text.splitlines()[:MAX_LINES]:
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key or " " in key or "<" in key:
            return None
        out[key[:128]] = value.strip()[:256]
    return out or None


def _flag(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get((value or "").lower())


def parse_network(kv: dict[str, str]) -> dict[str, JSONValue] | None:
    nic = kv.get("table.Network.DefaultInterface", "eth0")
    p = f"table.Network.{nic}."
    if not any(k.startswith(p) for k in kv):
        return None
    dns = [
        kv[k]
        for k in sorted(k for k in kv if k.startswith(p + "DnsServers["))
        if kv[k] and kv[k] != "0.0.0.0"
    ]
    return {
        "ip": kv.get(p + "IPAddress") or None,
        "mask": kv.get(p + "SubnetMask") or None,
        "gateway": kv.get(p + "DefaultGateway") or None,
        "dns": list[JSONValue](dns),
        "dhcp": _flag(kv.get(p + "DhcpEnable")),
        "mac": (kv.get(p + "PhysicalAddress") or "").lower() or None,
    }


class DahuaAdapter(Adapter):
    name: ClassVar[str] = "dahua"

    async def read(self, target: Target) -> DeviceReport:
        sw = Stopwatch()
        client, base = target.client, target.base
        r, decided, auth = await digest_login(self.name, target, SYSTEM_INFO, "getSystemInfo")
        if r is None:
            assert decided is not None
            return decided
        info = parse_kv(r.content) if r.status_code == 200 and not r.truncated else None
        if r.status_code in (404, 405, 501) or (r.status_code == 200 and info is None):
            return DeviceReport(self.name, "unsupported")
        if info is None:
            return DeviceReport(
                self.name, "error", errors={"getSystemInfo": f"http-{r.status_code}"}
            )
        report = DeviceReport(self.name, "ok")

        async def get(path: str) -> dict[str, str] | None:
            try:
                rep: Reply = await get_capped(client, base + path, auth)
            except httpx.HTTPError:
                report.errors[path] = "http"
                return None
            if rep.status_code in (400, 404, 501):
                report.unsupported.append(path)
            if rep.status_code != 200 or rep.truncated:
                return None
            return parse_kv(rep.content)

        soft, vendor, net, ntp, p2p, now = await asyncio.gather(
            get(SOFTWARE), get(VENDOR), get(NETWORK), get(NTP), get(P2P), get(CURRENT_TIME)
        )
        network = parse_network(net) if net else None
        report.identity = {
            "vendor": (vendor or {}).get("vendor"),
            "model": info.get("deviceType"),
            "serial": info.get("serialNumber"),
            "firmware": (soft or {}).get("version"),
            "mac": network.pop("mac") if network else None,
        }
        report.network = network
        if ntp is not None or now is not None:
            server = (ntp or {}).get("table.NTP.Address")
            report.clock = {
                "utc": None,
                "local": (now or {}).get("result"),
                "offset_s": None,
                "ntp": _flag((ntp or {}).get("table.NTP.Enable")),
                "ntp_servers": [server] if server else [],
            }
        if p2p is not None:
            report.p2p = {"enabled": _flag(p2p.get("table.T2UServer.Enable")), "status": None}
        report.elapsed_ms = sw.ms()
        return report
