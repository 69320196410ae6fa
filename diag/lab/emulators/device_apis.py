"""The device emulator's ONVIF, Dahua and WS-Discovery sides (ISAPI stays in ``device.py``).

``Onvif.handle`` serves the ONVIF device management service (SOAP 1.2 on ``/onvif/device_service``):
``GetSystemDateAndTime`` without credentials, everything else behind a WS-Security UsernameToken
(PasswordDigest or PasswordText) checked against the device's own clock (``clock_offset_s`` moves
it), with nonce replay refused and failures counted in the device's lockout. ``dahua_route``
answers the Dahua ``/cgi-bin`` text API (behind the device's HTTP Digest). ``Discovery`` answers
WS-Discovery ``Probe`` on 239.255.255.250:3702 with a ``ProbeMatch`` naming the device service.
Specified in ``docs/platform-protocol.md``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import datetime as dt
import hashlib
import hmac
import ipaddress
import socket
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs, quote
from xml.sax.saxutils import escape

from diag.lab.emulators import log

if TYPE_CHECKING:
    from diag.lab.emulators.device import Device

COMPONENT = "device"
API_NAMES = ("onvif", "isapi", "dahua")
ONVIF_PATH = "/onvif/device_service"
# A UsernameToken whose Created is further than this from the device's clock is refused (s);
# ONVIF leaves the window to the device, 5 minutes is what common firmware allows.
CREATED_WINDOW_S = 300.0
MAX_SOAP = 64 * 1024
MAX_SEEN_NONCES = 4096
WSD_GROUP, WSD_PORT = "239.255.255.250", 3702

SOAP = "http://www.w3.org/2003/05/soap-envelope"
TDS = "http://www.onvif.org/ver10/device/wsdl"
TT = "http://www.onvif.org/ver10/schema"
TER = "http://www.onvif.org/ver10/error"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
DN = "http://www.onvif.org/ver10/network/wsdl"


def api_of(path: str) -> str | None:
    """Which API a request path belongs to."""
    if path.startswith("/onvif/"):
        return "onvif"
    if path.startswith("/ISAPI/"):
        return "isapi"
    if path.startswith("/cgi-bin/"):
        return "dahua"
    return None


def device_now(dev: Device) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=dev.cfg.clock_offset_s)


def _safe_xml(body: bytes) -> ET.Element | None:
    if len(body) > MAX_SOAP or b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        return None
    try:
        return ET.fromstring(body)
    except (ET.ParseError, ValueError, LookupError):
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    if node is None:
        return None
    return next((c for c in node if _local(c.tag) == name), None)


def _x(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:tds="{TDS}" xmlns:tt="{TT}" xmlns:ter="{TER}">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def fault(subcode: str, reason: str, code: str = "s:Sender") -> bytes:
    return _envelope(
        "<s:Fault><s:Code>"
        f"<s:Value>{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value></s:Subcode>"
        f'</s:Code><s:Reason><s:Text xml:lang="en">{escape(reason)}</s:Text></s:Reason>'
        "</s:Fault>"
    )


def _date_time(t: dt.datetime) -> str:
    return (
        f"<tt:Time>{_x('tt:Hour', t.hour)}{_x('tt:Minute', t.minute)}{_x('tt:Second', t.second)}"
        f"</tt:Time><tt:Date>{_x('tt:Year', t.year)}{_x('tt:Month', t.month)}"
        f"{_x('tt:Day', t.day)}</tt:Date>"
    )


class Onvif:
    """The ONVIF device service of one emulated device."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def _host(self, local_ip: str) -> str:
        cfg = self.dev.cfg
        ip = local_ip if cfg.bind in ("", "0.0.0.0") else cfg.bind
        return f"http://{ip}:{cfg.http_port}{ONVIF_PATH}"

    def check_token(self, header: ET.Element | None, client: str) -> str | None:
        """None when the UsernameToken is good; else why not (a fault reason)."""
        auth = self.dev.auth
        if auth.is_locked(client):
            return "locked"
        token = _child(_child(header, "Security"), "UsernameToken")
        if token is None:
            return "no token"  # not a failed login: the client has not tried yet
        user = (getattr(_child(token, "Username"), "text", "") or "").strip()
        pw_node = _child(token, "Password")
        given = (pw_node.text or "").strip() if pw_node is not None else ""
        kind = pw_node.get("Type", "") if pw_node is not None else ""
        nonce_text = (getattr(_child(token, "Nonce"), "text", "") or "").strip()
        created = (getattr(_child(token, "Created"), "text", "") or "").strip()
        password = self.dev.password
        if kind.endswith("#PasswordText"):
            good = hmac.compare_digest(given, password)
        else:
            try:
                nonce = base64.b64decode(nonce_text, validate=True)
            except ValueError:
                auth._fail(client, "bad nonce")
                return "bad"
            expect = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + password.encode()).digest()
            ).decode()
            good = hmac.compare_digest(given, expect)
            if nonce_text in self.seen:
                return "replayed nonce"  # a replay: refused, not a wrong password
            try:
                when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
                skew = abs((when - device_now(self.dev)).total_seconds())
            except (ValueError, TypeError):
                skew = float("inf")
            if good and skew > CREATED_WINDOW_S:
                # The token was made for another clock: the client did not sync to ours.
                log(COMPONENT, "onvif-token-stale", client=client, skew_s=round(skew))
                return "stale"
        if not (good and hmac.compare_digest(user, self.dev.cfg.username)):
            auth._fail(client, "onvif wrong credentials")
            return "bad"
        if nonce_text:
            self.seen[nonce_text] = None
            while len(self.seen) > MAX_SEEN_NONCES:
                self.seen.popitem(last=False)
        auth.failures.pop(client, None)
        return None

    def handle(self, body: bytes, client: str, local_ip: str) -> tuple[int, bytes, dict[str, str]]:
        root = _safe_xml(body)
        env_body = (
            _child(root, "Body") if root is not None and _local(root.tag) == "Envelope" else None
        )
        op_node = next(iter(env_body), None) if env_body is not None else None
        if op_node is None:
            return 400, fault("ter:WellFormed", "not a SOAP 1.2 envelope"), {}
        op = _local(op_node.tag)
        if op != "GetSystemDateAndTime":
            why = self.check_token(_child(root, "Header"), client)
            if why is not None:
                headers = {"X-Lockout": "1"} if why == "locked" else {}
                return 400, fault("ter:NotAuthorized", "sender not authorized"), headers
        answer = self.operation(op, op_node, local_ip)
        if answer is None:
            return 400, fault("ter:ActionNotSupported", f"{op} is not supported"), {}
        return 200, _envelope(f"<tds:{op}Response>{answer}</tds:{op}Response>"), {}

    def operation(self, op: str, node: ET.Element, local_ip: str) -> str | None:
        cfg = self.dev.cfg
        rep = cfg.reported
        ntp = cfg.ntp
        if op == "GetSystemDateAndTime":
            now = device_now(self.dev)
            kind = "NTP" if ntp.get("enabled", True) else "Manual"
            return (
                f"<tds:SystemDateAndTime><tt:DateTimeType>{kind}</tt:DateTimeType>"
                "<tt:DaylightSavings>false</tt:DaylightSavings>"
                "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
                f"<tt:UTCDateTime>{_date_time(now)}</tt:UTCDateTime>"
                f"<tt:LocalDateTime>{_date_time(now)}</tt:LocalDateTime>"
                "</tds:SystemDateAndTime>"
            )
        if op == "GetDeviceInformation":
            return "".join(
                (
                    _x("tds:Manufacturer", cfg.vendor),
                    _x("tds:Model", cfg.model),
                    _x("tds:FirmwareVersion", cfg.firmware),
                    _x("tds:SerialNumber", cfg.serial),
                    _x("tds:HardwareId", cfg.model),
                )
            )
        if op == "GetNetworkInterfaces":
            try:
                prefix = ipaddress.IPv4Network(f"0.0.0.0/{rep.get('mask', '')}").prefixlen
            except ValueError:
                prefix = 24
            addr = f"{_x('tt:Address', rep.get('ip', ''))}{_x('tt:PrefixLength', prefix)}"
            dhcp = bool(cfg.dhcp)
            conf = (
                f"<tt:FromDHCP>{addr}</tt:FromDHCP>" if dhcp else f"<tt:Manual>{addr}</tt:Manual>"
            )
            return (
                '<tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>'
                f"<tt:Info><tt:Name>eth0</tt:Name>{_x('tt:HwAddress', cfg.mac)}"
                "<tt:MTU>1500</tt:MTU></tt:Info>"
                f"<tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config>{conf}"
                f"<tt:DHCP>{'true' if dhcp else 'false'}</tt:DHCP></tt:Config></tt:IPv4>"
                "</tds:NetworkInterfaces>"
            )
        if op == "GetNetworkDefaultGateway":
            gw = rep.get("gateway", "")
            return (
                f"<tds:NetworkGateway>{_x('tt:IPv4Address', gw) if gw else ''}</tds:NetworkGateway>"
            )
        if op == "GetDNS":
            servers = "".join(
                f"<tt:DNSManual><tt:Type>IPv4</tt:Type>{_x('tt:IPv4Address', d)}</tt:DNSManual>"
                for d in rep.get("dns", [])
            )
            no_dhcp = "<tt:FromDHCP>false</tt:FromDHCP>"
            return f"<tds:DNSInformation>{no_dhcp}{servers}</tds:DNSInformation>"
        if op == "GetNTP":
            servers = "".join(
                f"<tt:NTPManual><tt:Type>IPv4</tt:Type>{_x('tt:IPv4Address', s)}</tt:NTPManual>"
                for s in ntp.get("servers", [])
            )
            no_dhcp = "<tt:FromDHCP>false</tt:FromDHCP>"
            return f"<tds:NTPInformation>{no_dhcp}{servers}</tds:NTPInformation>"
        xaddr = escape(self._host(local_ip))
        if op == "GetServices":
            return (
                f"<tds:Service><tds:Namespace>{TDS}</tds:Namespace><tds:XAddr>{xaddr}</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
                "</tds:Service>"
            )
        if op == "GetCapabilities":
            return (
                f"<tds:Capabilities><tt:Device><tt:XAddr>{xaddr}</tt:XAddr>"
                "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false"
                "</tt:ZeroConfiguration><tt:IPVersion6>false</tt:IPVersion6>"
                "<tt:DynDNS>false</tt:DynDNS></tt:Network></tt:Device></tds:Capabilities>"
            )
        return None


def dahua_route(dev: Device, path: str, query: str) -> tuple[int, str] | None:
    """The Dahua CGI answer for an authenticated GET (None: unknown path -> 404)."""
    cfg = dev.cfg
    q = {k: v[-1] for k, v in parse_qs(query).items()}
    action, name = q.get("action", ""), q.get("name", "")
    rep = cfg.reported

    def kv(pairs: list[tuple[str, object]]) -> tuple[int, str]:
        return 200, "".join(f"{k}={v}\r\n" for k, v in pairs)

    if path == "/cgi-bin/magicBox.cgi":
        if action == "getSystemInfo":
            return kv(
                [
                    ("deviceType", cfg.model),
                    ("hardwareVersion", "1.00"),
                    ("processor", "LAB"),
                    ("serialNumber", cfg.serial),
                    ("updateSerial", cfg.model),
                ]
            )
        if action == "getSoftwareVersion":
            return kv([("version", cfg.firmware)])
        if action == "getVendor":
            return kv([("vendor", cfg.vendor)])
        return 400, "Error\r\nBad Request!\r\n"
    if path == "/cgi-bin/configManager.cgi" and action == "getConfig":
        if name == "Network":
            p = "table.Network.eth0."
            pairs: list[tuple[str, object]] = [("table.Network.DefaultInterface", "eth0")]
            pairs += [(f"{p}DnsServers[{i}]", d) for i, d in enumerate(rep.get("dns", []))]
            pairs += [
                (p + "DefaultGateway", rep.get("gateway", "")),
                (p + "DhcpEnable", "true" if cfg.dhcp else "false"),
                (p + "IPAddress", rep.get("ip", "")),
                (p + "PhysicalAddress", cfg.mac),
                (p + "SubnetMask", rep.get("mask", "")),
            ]
            return kv(pairs)
        if name == "NTP":
            servers = cfg.ntp.get("servers", [])
            return kv(
                [
                    ("table.NTP.Address", servers[0] if servers else ""),
                    ("table.NTP.Enable", "true" if cfg.ntp.get("enabled", True) else "false"),
                    ("table.NTP.Port", 123),
                    ("table.NTP.TimeZone", 0),
                ]
            )
        if name == "T2UServer":
            return kv([("table.T2UServer.Enable", "true" if cfg.p2p_enabled else "false")])
        return 400, "Error\r\nBad Request!\r\n"
    if path == "/cgi-bin/global.cgi" and action == "getCurrentTime":
        return kv([("result", device_now(dev).strftime("%Y-%m-%d %H:%M:%S"))])
    return None


class Discovery(asyncio.DatagramProtocol):
    """WS-Discovery target service: answers Probe (unicast ProbeMatches to the sender)."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.transport: asyncio.DatagramTransport | None = None
        self.endpoint = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, 'onvif:' + dev.cfg.serial)}"
        self.seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport is not a DatagramTransport subclass, only duck-typed.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self.answer(data)
        except Exception as exc:  # a hostile datagram costs itself, never the emulator
            log(COMPONENT, "wsd-error", client=addr[0], error=repr(exc))
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
            log(COMPONENT, "wsd-probe-match", client=f"{addr[0]}:{addr[1]}")

    def scopes(self) -> str:
        cfg = self.dev.cfg
        parts = [
            "onvif://www.onvif.org/type/video_encoder",
            "onvif://www.onvif.org/Profile/Streaming",
            f"onvif://www.onvif.org/hardware/{quote(cfg.model)}",
            f"onvif://www.onvif.org/name/{quote(cfg.name)}",
            f"onvif://www.onvif.org/mfr/{quote(cfg.vendor)}",
        ]
        return " ".join(parts)

    def answer(self, data: bytes) -> bytes | None:
        root = _safe_xml(data)
        if root is None or _local(root.tag) != "Envelope":
            return None
        probe = _child(_child(root, "Body"), "Probe")
        if probe is None:
            return None
        types = (getattr(_child(probe, "Types"), "text", "") or "").split()
        wanted = {t.rsplit(":", 1)[-1] for t in types}
        if wanted and not wanted & {"NetworkVideoTransmitter", "Device"}:
            return None
        msg_id = (getattr(_child(_child(root, "Header"), "MessageID"), "text", "") or "").strip()
        self.seq += 1
        cfg = self.dev.cfg
        xaddr = f"http://{cfg.bind}:{cfg.http_port}{ONVIF_PATH}"
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{WSA}" xmlns:d="{WSD}" xmlns:dn="{DN}" '
            f'xmlns:tds="{TDS}"><s:Header>'
            f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
            f"<a:RelatesTo>{escape(msg_id[:256])}</a:RelatesTo>"
            f"<a:To>{WSA}/role/anonymous</a:To>"
            f"<a:Action>{WSD}/ProbeMatches</a:Action>"
            f'<d:AppSequence InstanceId="1" MessageNumber="{self.seq}"/>'
            "</s:Header><s:Body><d:ProbeMatches><d:ProbeMatch>"
            f"<a:EndpointReference><a:Address>{self.endpoint}</a:Address></a:EndpointReference>"
            "<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>"
            f"<d:Scopes>{escape(self.scopes())}</d:Scopes>"
            f"<d:XAddrs>{escape(xaddr)}</d:XAddrs>"
            "<d:MetadataVersion>1</d:MetadataVersion>"
            "</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"
        ).encode()


async def start_discovery(dev: Device) -> asyncio.DatagramTransport | None:
    """Joins 239.255.255.250 on the device's address and answers probes on UDP 3702."""
    loop = asyncio.get_running_loop()
    try:
        if ipaddress.ip_address(dev.cfg.bind).is_loopback:
            return None  # a loopback device (unit tests): no multicast, no port 3702 taken
    except ValueError:
        pass
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", WSD_PORT))
        local = dev.cfg.bind if dev.cfg.bind not in ("", "0.0.0.0") else "0.0.0.0"
        mreq = struct.pack("4s4s", socket.inet_aton(WSD_GROUP), socket.inet_aton(local))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        log(COMPONENT, "wsd-unavailable", error=str(exc))
        return None
    factory: Callable[[], Discovery] = lambda: Discovery(dev)  # noqa: E731
    transport, _ = await loop.create_datagram_endpoint(factory, sock=sock)
    log(COMPONENT, "wsd-ready", group=WSD_GROUP, port=WSD_PORT)
    return transport


def clock_is_wrong(dev: Device, tolerance_s: float = CREATED_WINDOW_S) -> bool:
    return abs(dev.cfg.clock_offset_s) > tolerance_s
