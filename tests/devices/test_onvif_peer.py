"""diag's ONVIF requests and the lab emulator's ONVIF, checked against an independent, widely used
client (onvif-zeep-async: zeep on the ONVIF WSDLs) on loopback: same identity, network and time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from device_emulator import PASSWORD, Emulator, peer_read

from diag.devices import Target
from diag.devices.http import device_client
from diag.devices.onvif import OnvifAdapter

onvif_peer = pytest.importorskip("onvif", reason="onvif-zeep-async is in the dev extras")

REPORTED = {
    "ip": "127.0.0.1",
    "mask": "255.255.0.0",
    "gateway": "127.0.0.254",
    "dns": ["127.0.0.1", "127.0.0.2"],
}


@pytest.fixture
def device(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(
        tmp_path,
        apis=["onvif"],
        vendor="Lab Vendor",
        model="LAB-CAM-9",
        mac="02:00:5e:00:53:29",
        reported=REPORTED,
        clock_offset_s=-3 * 3600,  # three hours slow: the token must follow the device's clock
        ntp={"enabled": False, "servers": ["127.0.0.9"]},
    )
    yield emu
    emu.stop()


async def test_onvif_zeep_async_reads_what_diag_reads(device: Emulator) -> None:
    peer = await peer_read(device.port)
    async with device_client() as client:
        r = await OnvifAdapter().read(
            Target("cam", "127.0.0.1", device.port, "admin", PASSWORD, client)
        )
    assert r.auth == "ok" and r.identity and r.network and r.clock
    for key in ("vendor", "model", "serial", "firmware", "mac"):
        assert r.identity[key] == peer[key], key
    assert peer["prefix"] == 16 and r.network["mask"] == "255.255.0.0"
    assert r.network["ip"] == peer["ip"] and r.network["gateway"] == peer["gateway"]
    assert r.network["dns"] == peer["dns"] == REPORTED["dns"]
    assert r.network["dhcp"] is peer["dhcp"] is False
    assert r.clock["ntp"] is peer["ntp"] is False
    assert r.clock["ntp_servers"] == peer["ntp_servers"] == ["127.0.0.9"]
    assert isinstance(r.clock["offset_s"], float)
    assert abs(r.clock["offset_s"] - peer["offset_s"]) <= 1.5  # 1 s clock resolution
    assert abs(r.clock["offset_s"] + 3 * 3600) <= 1.5
    assert "auth-failed" not in device.stop()


async def test_the_peer_with_a_wrong_password_gets_not_authorized(device: Emulator) -> None:
    cam = onvif_peer.ONVIFCamera("127.0.0.1", device.port, "admin", "wrong", adjust_time=True)
    try:
        dev = await cam.create_devicemgmt_service()
        with pytest.raises(Exception, match=r"(?i)not ?authori[sz]ed|sender"):
            await dev.GetDeviceInformation()
    finally:
        await cam.close()
    assert device.stop().count("auth-failed") == 1
