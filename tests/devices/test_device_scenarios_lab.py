"""The two device-side scenarios of issue 12, diagnosed by a real quick ``diag run`` in the lab."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from pathlib import Path
from typing import Any

import pytest
from labkit import Lab, start_lab

from diag.lab.plan import MOVED_OFFSET

pytestmark = pytest.mark.lab


def verdicts(lab: Lab) -> dict[str, dict[str, Any]]:
    run = lab.diag_run()
    return {d["name"]: d for d in run["devices"]}


def test_device_clock_wrong() -> None:
    lab = start_lab("device-clock-wrong")
    try:
        v = verdicts(lab)
    finally:
        lab.down()
    ipc2 = v["ipc2"]
    assert ipc2["causes"] and ipc2["causes"][0]["id"] == "device-clock-wrong", ipc2
    assert ipc2["causes"][0]["confidence"] >= 0.85 and ipc2["state"] == "offline"
    for name in ("nvr", "ipc1", "ipc3"):
        assert all(c["id"] != "device-clock-wrong" for c in v[name]["causes"]), v[name]


def test_device_address_changed() -> None:
    lab = start_lab("device-address-changed")
    try:
        v = verdicts(lab)
        moved = next(d for d in lab.status["devices"] if d["name"] == "ipc1")
    finally:
        lab.down()
    ipc1 = v["ipc1"]
    assert moved["lives_at"] != moved["address"]
    assert ipc1["causes"] and ipc1["causes"][0]["id"] == "device-address-changed", ipc1
    assert ipc1["state"] == "offline" and ipc1["icon"] == "grey"
    assert moved["lives_at"] in str(ipc1["causes"][0])
    assert all(c["id"] != "device-no-power" or c["confidence"] < 0.5 for c in ipc1["causes"])


def test_a_mac_learnt_by_one_run_names_the_move_in_the_next(tmp_path: Path) -> None:
    """The site file names no MAC: the first run learns ipc1's at its address; DHCP then moves
    ipc1 (the device-address-changed scenario's mechanism: its address + MOVED_OFFSET); the next
    run finds the learnt MAC at the new address and names the cause with the date it learnt it."""
    lab = start_lab("healthy")
    try:
        text = lab.site_path.read_text(encoding="utf-8")
        site = tmp_path / "site.toml"
        site.write_text(
            "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith("mac = ")),
            encoding="utf-8",
        )
        assert "mac = " not in site.read_text(encoding="utf-8")
        nomac = dataclasses.replace(lab, site_path=site)
        first = nomac.diag_run(only=["heartbeat"])
        store = json.loads(Path(os.environ["DIAG_DEVICE_STATE"]).read_text(encoding="utf-8"))
        (entries,) = store["sites"].values()
        dev = next(d for d in lab.status["devices"] if d["name"] == "ipc1")
        assert entries["ipc1"]["mac"] == dev["mac"] and entries["ipc1"]["address"] == dev["address"]
        assert first["_exit_code"] in (0, 1, 2)
        old = dev["address"]
        new = str(ipaddress.ip_address(old) + MOVED_OFFSET)
        shown = lab.ns_exec("ipc1", "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
        prefix = shown.split(old + "/", 1)[1].split()[0]
        # Old address first: deleting a primary address also deletes the secondaries of its subnet.
        for cmd in (("del", f"{old}/{prefix}"), ("add", f"{new}/{prefix}")):
            assert lab.ns_exec("ipc1", "ip", "addr", *cmd, "dev", "eth0").returncode == 0
        v = verdicts(nomac)
    finally:
        lab.down()
    ipc1 = v["ipc1"]
    assert ipc1["causes"] and ipc1["causes"][0]["id"] == "device-address-changed", ipc1
    assert ipc1["state"] == "offline"
    said = str(ipc1["causes"][0])
    assert new in said and "learnt on " + entries["ipc1"]["learnt"] in said


def test_the_devices_ntp_server_is_asked_and_a_silent_one_explains_a_drifted_clock() -> None:
    """Every lab device names the router's NTP server (diag.lab.emulators.ntp): the laptop's SNTP
    request gets a synchronized time from it. Then ipc2 is pointed at an address where nothing
    answers and its clock drifts an hour: the quick run names device-clock-wrong and says why."""
    from diag.lab import runtime

    lab = start_lab("healthy")
    try:
        first = lab.diag_run(only=["heartbeat"])
        facts = {
            (f["key"], f["target"]): f["value"]
            for c in first["checks"]
            if c["id"] == "heartbeat"
            for f in c["facts"]
        }
        silent = str(ipaddress.ip_address(lab.status["gateway"]) + 198)
        runtime.reload_device(
            lab.name,
            "ipc2",
            root=lab.state_dir.parent,
            clock_offset_s=-3600.0,
            ntp={"enabled": True, "servers": [silent]},
        )
        v = verdicts(lab)
    finally:
        lab.down()
    for d in lab.status["devices"]:
        name = d["name"]
        assert facts[("device.ntp_reachable", name)] is True, name
        (probe,) = facts[("device.ntp_probe", name)]
        assert probe["server"] == lab.status["gateway"] and probe["status"] == "ok"
        assert abs(probe["offset_s"]) < 1.0  # the router's clock is the laptop's: one host
    ipc2 = v["ipc2"]
    assert ipc2["causes"] and ipc2["causes"][0]["id"] == "device-clock-wrong", ipc2
    assert "its server does not answer" in str(ipc2["causes"][0])
    for name in ("nvr", "ipc1", "ipc3"):
        assert all(c["id"] != "device-clock-wrong" for c in v[name]["causes"]), v[name]


def test_mixed_apis_each_device_is_read_through_the_api_it_has() -> None:
    lab = start_lab("mixed-apis")
    try:
        run = lab.diag_run(only=["heartbeat"])
        found = lab.exec("diag", "discover", "--json", "-")
    finally:
        lab.down()
    facts = {
        (f["key"], f["target"]): f["value"]
        for c in run["checks"]
        if c["id"] == "heartbeat"
        for f in c["facts"]
    }
    want = {"nvr": "dahua", "ipc1": "isapi", "ipc2": "onvif", "ipc3": "onvif"}
    assert {n: facts[("device.api", n)] for n in want} == want
    for name in want:
        assert facts[("device.auth", name)] == "ok"
        assert facts[("device.network", name)]["gateway"] == lab.status["gateway"]
    # ONVIF has no P2P switch: ipc2 (ONVIF only) has none, ipc3 got it from ISAPI
    assert ("device.p2p", "ipc2") not in facts
    assert facts[("device.p2p", "ipc3")]["api"] == "isapi"
    # Discovery hears only the devices that speak ONVIF.
    data = json.loads(found.stdout[found.stdout.index("{") :])
    onvif = {f["address"] for f in data["found"] if f["onvif"]}
    addr = {d["name"]: d["address"] for d in lab.status["devices"]}
    assert onvif == {addr["ipc2"], addr["ipc3"]}
