"""Gateway discovery (UPnP IGD, NAT-PMP, PCP) against loopback fakes: read-only, hostile-safe."""

from __future__ import annotations

import asyncio
import http.server
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.checks import nat_discovery as nd

GW = "127.0.0.1"

DESCRIPTION = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<deviceList><device><deviceList><device>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<controlURL>/ctl/IPConn</controlURL>
</service></serviceList>
</device></deviceList></device></deviceList></device></root>"""

FAULT_713 = (
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
    "<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>"
    "<detail><UPnPError><errorCode>713</errorCode></UPnPError></detail></s:Fault></s:Body>"
    "</s:Envelope>"
)


def soap_ok(action: str, args: dict[str, str]) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    return (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<s:Body><u:{action}Response xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">'
        f"{inner}</u:{action}Response></s:Body></s:Envelope>"
    )


class FakeIGD:
    """SSDP responder + HTTP description/SOAP server + NAT-PMP/PCP responder on loopback."""

    def __init__(
        self,
        mappings: int = 2,
        external: str = "203.0.113.7",
        location_host: str | None = None,
        natpmp: str = "ok",  # ok, error, pcp-only, silent
        pcp: bool = True,
        ssdp: bool = True,
    ) -> None:
        self.mappings = mappings
        self.external = external
        self.natpmp = natpmp
        self.pcp = pcp
        self.ssdp_on = ssdp
        self.actions: list[str] = []
        igd = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = DESCRIPTION.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                req = self.rfile.read(length).decode()
                action = self.headers.get("SOAPAction", "").strip('"').split("#")[-1]
                igd.actions.append(action)
                status, body = 500, FAULT_713
                if action == "GetExternalIPAddress":
                    status, body = 200, soap_ok(action, {"NewExternalIPAddress": igd.external})
                elif action == "GetGenericPortMappingEntry":
                    idx = int(req.split("<NewPortMappingIndex>")[1].split("<")[0])
                    if idx < igd.mappings:
                        status, body = (
                            200,
                            soap_ok(
                                action,
                                {
                                    "NewRemoteHost": "",
                                    "NewExternalPort": str(8000 + idx),
                                    "NewProtocol": "TCP",
                                    "NewInternalPort": "80",
                                    "NewInternalClient": f"198.18.0.{21 + idx}",
                                    "NewEnabled": "1",
                                    "NewPortMappingDescription": f"camera {idx} &lt;&amp;&gt;",
                                    "NewLeaseDuration": "0",
                                },
                            ),
                        )
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = http.server.ThreadingHTTPServer((GW, 0), Handler)
        self.http_port = self.http.server_address[1]
        host = location_host or GW
        self.location = f"http://{host}:{self.http_port}/rootDesc.xml"
        self.ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ssdp.bind((GW, 0))
        self.pmp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.pmp.bind((GW, 0))
        self.ports = nd.Ports(ssdp=self.ssdp.getsockname()[1], natpmp=self.pmp.getsockname()[1])
        self.ssdp.settimeout(0.1)
        self.pmp.settimeout(0.1)
        self._stop = threading.Event()

    def _ssdp_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.ssdp.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if self.ssdp_on and b"M-SEARCH" in data:
                self.ssdp.sendto(
                    (
                        "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n"
                        "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n"
                        f"LOCATION: {self.location}\r\nSERVER: fake UPnP/1.1\r\n\r\n"
                    ).encode(),
                    addr,
                )

    def _pmp_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.pmp.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            if not data:
                continue
            if data[0] == 0 and self.natpmp in ("ok", "error"):
                code = 0 if self.natpmp == "ok" else 3
                ip = socket.inet_aton(self.external) if code == 0 else b"\0\0\0\0"
                self.pmp.sendto(struct.pack("!BBHI", 0, 128, code, 1234) + ip, addr)
            elif data[0] == 2 and self.pcp:
                self.pmp.sendto(bytes([2, 0x80, 0, 0]) + b"\0" * 20, addr)
            elif data[0] == 2 and self.natpmp != "silent":
                # A NAT-PMP-only server: "unsupported version" in version 0.
                self.pmp.sendto(struct.pack("!BBHI", 0, 128 + data[1], 1, 1234), addr)

    def __enter__(self) -> FakeIGD:
        for fn in (self.http.serve_forever, self._ssdp_loop, self._pmp_loop):
            threading.Thread(target=fn, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.http.shutdown()
        self.http.server_close()
        self.ssdp.close()
        self.pmp.close()


@contextmanager
def igd(**kw: Any) -> Iterator[FakeIGD]:
    with FakeIGD(**kw) as f:
        yield f


def test_full_discovery() -> None:
    with igd() as f:
        d = asyncio.run(nd.discover(GW, f.ports))
        actions = list(f.actions)
    assert d.upnp_present is True
    assert d.upnp_external_ip == "203.0.113.7"
    assert [m["external_port"] for m in d.upnp_mappings] == [8000, 8001]
    assert d.upnp_mappings[0] == {
        "proto": "tcp",
        "external_port": 8000,
        "internal": "198.18.0.21:80",
        "description": "camera 0 <&>",
    }
    assert d.natpmp_present is True and d.natpmp_external_ip == "203.0.113.7"
    assert d.pcp_present is True
    # Read-only: nothing but queries was sent to the IGD.
    assert set(actions) == {"GetExternalIPAddress", "GetGenericPortMappingEntry"}
    assert actions.count("GetGenericPortMappingEntry") == 3  # two entries, then 713


def test_mapping_list_is_bounded() -> None:
    with igd(mappings=1000) as f:
        d = asyncio.run(nd.discover(GW, f.ports))
    assert len(d.upnp_mappings) == nd.MAX_MAPPINGS


def test_location_elsewhere_is_not_followed() -> None:
    # The answer points at another host: discovery must not fetch it (SSRF), and says absent.
    with igd(location_host="127.0.0.2") as f:
        d = asyncio.run(nd.discover(GW, f.ports))
        actions = list(f.actions)
    assert d.upnp_present is False
    assert actions == []


def test_nothing_answers() -> None:
    with igd(ssdp=False, natpmp="silent", pcp=False) as f:
        d = asyncio.run(nd.discover(GW, f.ports))
    assert d.upnp_present is False and d.natpmp_present is False and d.pcp_present is False
    assert d.time_ms < (nd.SSDP_TIMEOUT_S + 0.5) * 1000


def test_natpmp_error_still_present_and_pcp_absent() -> None:
    with igd(natpmp="error", pcp=False) as f:
        d = asyncio.run(nd.discover(GW, f.ports))
    assert d.natpmp_present is True and d.natpmp_result == 3 and d.natpmp_external_ip is None
    assert d.pcp_present is False  # a version-0 "unsupported version" answer is not PCP


def test_pcp_announce_layout() -> None:
    req = nd.pcp_announce("198.18.0.100")
    assert len(req) == 24 and req[0] == 2 and req[1] == 0
    assert req[8:] == b"\0" * 10 + b"\xff\xff" + socket.inet_aton("198.18.0.100")


def test_m_search_is_unicast_form() -> None:
    text = nd.m_search("urn:x", "198.18.0.1", 1900).decode()
    assert text.startswith("M-SEARCH * HTTP/1.1\r\n")
    assert "HOST: 198.18.0.1:1900" in text and "MX:" not in text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<",
        b"<root/>",
        b"\xff\xfe garbage",
        b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
    ],
)
def test_hostile_descriptions_are_absent_services(body: bytes) -> None:
    assert nd.parse_description(body, "http://127.0.0.1/") is None
    assert nd.parse_soap(body) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_parsers_survive_random_bytes(data: bytes) -> None:
    nd.parse_ssdp(data)
    nd.parse_natpmp(data)
    nd.parse_pcp(data)
    nd.parse_description(data, "http://127.0.0.1/")
    nd.parse_soap(data)


def test_check_reports_discovery_facts() -> None:
    """The stun check passes the gateway's answers through as upnp/natpmp/pcp facts."""
    import time

    from diag.checks.base import Context
    from diag.checks.stun import StunCheck, facts
    from diag.model import Network, Profile, Site, StunServer

    with igd() as f:
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind((GW, 0))  # a STUN server that never answers: UDP blocked, discovery still runs
        site = Site(
            "t",
            (),
            Profile("p", stun_servers=(StunServer(GW, dead.getsockname()[1]),)),
            network=Network(gateway=GW),
        )
        check = StunCheck(discovery_ports=f.ports)
        ctx = Context(site, "stun", check.targets(site), time.monotonic() + 10)
        obs = asyncio.run(check.observe(ctx))
        dead.close()
    fs = {x.key: x.value for x in facts(obs, site)}
    assert fs["nat.udp_blocked"] is True
    assert fs["upnp.present"] is True and fs["upnp.external_ip"] == "203.0.113.7"
    assert isinstance(fs["upnp.mappings"], list) and len(fs["upnp.mappings"]) == 2
    assert fs["natpmp.present"] is True and fs["pcp.present"] is True


def test_empty_external_address_is_an_answer() -> None:
    """miniupnpd behind another NAT answers GetExternalIPAddress with an empty address."""
    from diag.checks.stun import Observation, facts
    from diag.model import Profile, Site

    with igd(external="", natpmp="error") as f:
        d = asyncio.run(nd.discover(GW, f.ports))
    assert d.upnp_present is True and d.upnp_external_asked is True
    assert d.upnp_external_ip is None
    fs = {x.key: x.value for x in facts(Observation(discovery=d), Site("t", (), Profile("p")))}
    assert "upnp.external_ip" in fs and fs["upnp.external_ip"] is None
