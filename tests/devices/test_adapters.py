"""Device adapters (ONVIF, ISAPI, Dahua) against the lab's real device emulator on loopback, the
``diag.devices`` registry, and the parsers on hostile input."""

from __future__ import annotations

import asyncio
import datetime as dt
import tomllib
import types
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import httpx
import pytest
from device_emulator import PASSWORD
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.devices import (
    BUILTIN,
    Target,
    auto_order,
    dahua,
    isapi,
    load_adapters,
    onvif,
    read_device,
)
from diag.devices.http import device_client, parse_xml
from diag.lab.emulators import device, device_apis

ROOT = Path(__file__).resolve().parents[2]
REPORTED = {"ip": "127.0.0.1", "mask": "255.0.0.0", "gateway": "127.0.0.254", "dns": ["127.0.0.1"]}


async def read(port: int, api: str, password: str = PASSWORD) -> Any:
    async with device_client() as client:
        return await read_device(api, Target("cam", "127.0.0.1", port, "admin", password, client))


def test_builtins_are_the_entry_points_pyproject_declares() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = meta["project"]["entry-points"]["diag.devices"]
    assert declared == dict(BUILTIN)
    adapters, errors = load_adapters()
    assert not errors and set(adapters) >= set(declared)
    assert auto_order(adapters)[0] == "onvif"


def test_a_plugin_adapter_loads_like_a_builtin_and_a_broken_one_is_an_error() -> None:
    eps = [
        EntryPoint("isapi", "diag.devices.isapi:IsapiAdapter", "diag.devices"),
        EntryPoint("vendorx", "diag.devices.dahua:DahuaAdapter", "diag.devices"),  # name clash
        EntryPoint("gone", "no.such.module:Adapter", "diag.devices"),
    ]
    adapters, errors = load_adapters(eps)
    assert list(adapters) == ["isapi"]
    assert {e.name for e in errors} == {"vendorx", "gone"}
    assert auto_order({"zz": adapters["isapi"], **adapters}) == ["isapi", "zz"]


@pytest.mark.parametrize("api", ["onvif", "isapi", "dahua"])
async def test_each_adapter_reads_identity_network_and_clock(emulator: Any, api: str) -> None:
    dev = emulator(
        apis=[api],
        vendor="Lab Vendor",
        model="LAB-CAM-1",
        mac="02:00:5e:00:53:21",
        reported=REPORTED,
        ntp={"enabled": True, "servers": ["127.0.0.9"]},
    )
    r = await read(dev.port, api)
    assert r.auth == "ok" and r.api == api
    assert r.identity["serial"] == "IPC123" and r.identity["model"] == "LAB-CAM-1"
    assert r.identity["firmware"] == "V5.7.3 build 230101"
    assert r.identity["mac"] == "02:00:5e:00:53:21"
    if api != "isapi":  # ISAPI's deviceInfo names no manufacturer
        assert r.identity["vendor"] == "Lab Vendor"
    assert r.network == {
        "ip": "127.0.0.1",
        "mask": "255.0.0.0",
        "gateway": "127.0.0.254",
        "dns": ["127.0.0.1"],
        "dhcp": False,
    }
    assert r.clock["ntp"] is True and r.clock["ntp_servers"] == ["127.0.0.9"]
    if api == "dahua":
        assert r.clock["offset_s"] is None  # local time without its zone: no UTC offset
        assert r.p2p == {"enabled": False, "status": None}
    else:
        assert abs(r.clock["offset_s"]) <= 1.5
    if api == "isapi":
        assert r.p2p == {"enabled": False, "status": "disabled"}
    if api == "onvif":
        assert r.p2p is None  # ONVIF has no P2P switch
    assert PASSWORD not in repr(r)
    assert PASSWORD not in dev.stop()


async def test_auto_prefers_onvif_and_takes_p2p_from_the_vendor_api(emulator: Any) -> None:
    dev = emulator(reported=REPORTED)
    r = await read(dev.port, "auto")
    assert r.api == "onvif" and r.auth == "ok"
    assert r.p2p == {"enabled": False, "status": "disabled"} and r.p2p_api == "isapi"
    facts = {f.key: f.value for f in r.facts("cam")}
    assert facts["device.api"] == "onvif" and facts["device.p2p"]["api"] == "isapi"


@pytest.mark.parametrize("apis", [["isapi"], ["dahua"], ["onvif", "dahua"]])
async def test_auto_finds_whichever_api_the_device_has(emulator: Any, apis: list[str]) -> None:
    dev = emulator(apis=apis, reported=REPORTED)
    r = await read(dev.port, "auto")
    assert r.auth == "ok" and r.api == apis[0]
    log = dev.stop()
    assert "auth-failed" not in log


@pytest.mark.parametrize("api", ["onvif", "isapi", "dahua", "auto"])
async def test_a_wrong_password_is_refused_once_per_run_never_a_lockout(
    emulator: Any, api: str
) -> None:
    dev = emulator(reported=REPORTED, lockout_s=60)
    for _ in range(4):  # four runs: four failures, one short of the device's lockout
        r = await read(dev.port, api, "not-the-password")
        assert r.auth == "rejected" and not r.locked
    assert (await read(dev.port, api)).auth == "ok"
    log = dev.stop()
    assert log.count("auth-failed") == 4 and "locked=True" not in log
    assert "not-the-password" not in log and PASSWORD not in log


async def test_onvif_token_follows_the_device_clock(emulator: Any) -> None:
    """A device two hours fast accepts diag's token (made for its clock) and refuses one made for
    the laptop's: what an ONVIF client that skips GetSystemDateAndTime runs into."""
    dev = emulator(apis=["onvif"], clock_offset_s=7200, reported=REPORTED)
    r = await read(dev.port, "onvif")
    assert r.auth == "ok" and 7198 <= r.clock["offset_s"] <= 7201
    sec = onvif.security_header("admin", PASSWORD, dt.datetime.now(dt.UTC))
    async with httpx.AsyncClient(trust_env=False) as c:
        resp = await c.post(
            f"http://127.0.0.1:{dev.port}{onvif.DEVICE_SERVICE}",
            content=onvif.envelope("GetDeviceInformation", security=sec),
            headers={"Content-Type": "application/soap+xml"},
        )
    assert onvif.fault_code(onvif.soap_body(parse_xml(resp.content))) == "NotAuthorized"
    assert "onvif-token-stale" in dev.stop()


async def test_onvif_replayed_nonce_is_refused(emulator: Any) -> None:
    dev = emulator(apis=["onvif"], reported=REPORTED)
    body = onvif.envelope(
        "GetDeviceInformation",
        security=onvif.security_header("admin", PASSWORD, dt.datetime.now(dt.UTC)),
    )
    url = f"http://127.0.0.1:{dev.port}{onvif.DEVICE_SERVICE}"
    async with httpx.AsyncClient(trust_env=False) as c:
        first = await c.post(url, content=body)
        second = await c.post(url, content=body)
    assert first.status_code == 200 and second.status_code == 400
    assert "auth-failed" not in dev.stop()  # a replay is refused, not counted as a wrong password


async def test_apis_the_device_lacks_answer_404_before_any_login(emulator: Any) -> None:
    dev = emulator(apis=["onvif"], reported=REPORTED)
    async with httpx.AsyncClient(trust_env=False) as c:
        for path in (isapi.DEVICE_INFO, dahua.SYSTEM_INFO):
            assert (await c.get(f"http://127.0.0.1:{dev.port}{path}")).status_code == 404
    assert (await read(dev.port, "isapi")).auth == "unsupported"
    assert (await read(dev.port, "dahua")).auth == "unsupported"


async def test_an_unsupported_onvif_operation_is_a_fact_not_a_failure() -> None:
    """A device without GetServices: the adapter falls back to GetCapabilities."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        n = int(
            next(
                ln.split(b":")[1]
                for ln in head.split(b"\r\n")
                if ln.lower().startswith(b"content-length")
            )
        )
        body = await reader.readexactly(n)
        op = next(
            o
            for o in (
                *onvif.OPERATIONS,
                "GetDeviceInformation",
                "GetSystemDateAndTime",
                "GetCapabilities",
            )
            if f"tds:{o}".encode() in body
        )
        if op == "GetServices":
            data = device_apis.fault("ter:ActionNotSupported", "no")
            status = "400 Bad Request"
        else:
            fake = device_apis.Onvif.__new__(device_apis.Onvif)
            fake.dev = FakeDev()  # type: ignore[assignment]
            inner = fake.operation(op, None, "127.0.0.1")  # type: ignore[arg-type]
            data = device_apis._envelope(f"<tds:{op}Response>{inner}</tds:{op}Response>")
            status = "200 OK"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(data)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + data
        )
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        r = await read(port, "onvif")
    finally:
        srv.close()
    assert r.auth == "ok" and r.unsupported == ["GetServices"]
    assert r.identity["services"] == ["Device"]


def FakeDev() -> Any:
    """Enough of a device for ``Onvif.operation`` (no token checks: the server above skips them)."""
    cfg = device.Config(
        serial="S",
        username="admin",
        password_file="/nonexistent",
        vendor="V",
        model="M",
        firmware="F",
        mac="02:00:5e:00:53:99",
        reported=REPORTED,
        ntp={"enabled": False, "servers": []},
        dhcp=True,
        bind="127.0.0.1",
    )
    return types.SimpleNamespace(cfg=cfg)


FAULT = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:ter="http://www.onvif.org/ver10/error"><s:Body><s:Fault><s:Code><s:Value>s:Sender'
    b"</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code></s:Fault>"
    b"</s:Body></s:Envelope>"
)


def test_soap_fault_subcode_and_dhcp_interface_parse() -> None:
    assert onvif.fault_code(onvif.soap_body(parse_xml(FAULT))) == "NotAuthorized"
    fake = device_apis.Onvif.__new__(device_apis.Onvif)
    fake.dev = FakeDev()  # type: ignore[assignment]
    body = device_apis._envelope(
        "<tds:GetNetworkInterfacesResponse>"
        + str(fake.operation("GetNetworkInterfaces", None, "127.0.0.1"))  # type: ignore[arg-type]
        + "</tds:GetNetworkInterfacesResponse>"
    )
    nic = onvif.parse_interfaces(onvif.soap_body(parse_xml(body)))
    assert nic == {"ip": "127.0.0.1", "mask": "255.0.0.0", "dhcp": True, "mac": "02:00:5e:00:53:99"}


def test_hostile_soap_is_refused_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">]>'
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&a;</s:Body>'
        b"</s:Envelope>"
    )
    assert onvif.soap_body(parse_xml(bomb)) is None
    assert dahua.parse_kv(b"<html>\x00") is None
    assert dahua.parse_kv(b"\xff\xfe") is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_adapter_parsers_never_raise(data: bytes) -> None:
    body = onvif.soap_body(parse_xml(data))
    for parse in (
        onvif.parse_date_time,
        onvif.parse_device_information,
        onvif.parse_interfaces,
        onvif.parse_gateway,
        onvif.parse_dns,
        onvif.parse_ntp,
        onvif.parse_services,
        onvif.fault_code,
    ):
        parse(body)
    kv = dahua.parse_kv(data)
    if kv is not None:
        dahua.parse_network(kv)
    isapi.parse_time(data)
    isapi.parse_ntp_servers(data)
    isapi.parse_p2p(data)


def test_site_file_api_defaults_to_auto_and_names_an_installed_adapter() -> None:
    from fakes import make_site

    from diag.config import ConfigError

    dev = {"name": "c", "kind": "ipc", "added_via": "p2p", "address": "127.0.0.10"}
    assert make_site(devices=[dev]).devices[0].api == "auto"
    assert make_site(devices=[{**dev, "api": "dahua"}]).devices[0].api == "dahua"
    with pytest.raises(ConfigError) as err:
        make_site(devices=[{**dev, "api": "hikconnect"}])
    assert err.value.field == "devices[0].api" and "onvif" in err.value.reason


HOSTILE_REPLIES = {
    "entity bomb": (
        200,
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>&b;</s:Body>'
        b"</s:Envelope>",
    ),
    "huge body": (200, b"<s:Envelope>" + b"A" * (2 * 1024 * 1024) + b"</s:Envelope>"),
    "html login page": (200, b"<html><body>login</body></html>"),
    "binary": (500, bytes(range(256)) * 10),
    "deep nesting": (200, b"<a>" * 50000),
}


@pytest.mark.parametrize("reply", list(HOSTILE_REPLIES), ids=list(HOSTILE_REPLIES))
@pytest.mark.parametrize("api", ["onvif", "dahua", "auto"])
async def test_a_hostile_device_is_an_answer_about_it_not_a_crash(reply: str, api: str) -> None:
    status, body = HOSTILE_REPLIES[reply]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            n = next(
                (int(ln.split(b":")[1]) for ln in head.split(b"\r\n")
                 if ln.lower().startswith(b"content-length")),
                0,
            )  # fmt: skip
            await reader.readexactly(n)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        r = await asyncio.wait_for(read(port, api), 20)
    finally:
        srv.close()
    # ISAPI takes any 200 to its login path as a login (a device without a password); nothing
    # is made up from a body it cannot parse.
    assert r.auth in (("unsupported", "error", "ok") if api == "auto" else ("unsupported", "error"))
    assert r.identity is None and r.network is None and r.clock is None
