"""``diag discover`` in the lab, and the independent peers on every lab device: WSDiscovery finds
every device diag finds, onvif-zeep-async reads the identity, network and time diag's heartbeat
reads. Everything runs in the lab's laptop namespace (``lab.exec``), never on a host interface."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from labkit import Lab

from diag.config import load_site

pytestmark = pytest.mark.lab

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lab(lab_factory: Any) -> Lab:
    return lab_factory("healthy")


def lab_devices(lab: Lab) -> dict[str, dict[str, Any]]:
    return {d["address"]: d for d in lab.status["devices"]}


def test_discover_lists_every_device_with_model_and_vendor(lab: Lab, tmp_path: Path) -> None:
    out = lab.state_dir / "runs" / "discover.json"
    draft = lab.state_dir / "runs" / "draft.toml"
    out.parent.mkdir(exist_ok=True)
    res = lab.exec("diag", "discover", "--json", str(out), "--write", str(draft), "--force")
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    found = {f["address"]: f for f in data["found"]}
    for addr, dev in lab_devices(lab).items():
        f = found[addr]
        assert f["mac"] == dev["mac"] and f["onvif"] is True
        assert f["vendor"] == "DIAG Lab"
        assert f["model"] == ("DS-LAB-NVR" if dev["name"] == "nvr" else "DS-LAB-IPC")
        assert f["kind"] == ("nvr" if dev["name"] == "nvr" else "ipc")
        assert {"http", "rtsp"} <= set(f["open_ports"])
        assert f["mac_vendor"] == "(locally administered)"  # the lab's MACs have no OUI
    router = found[lab.status["gateway"]]
    assert router["onvif"] is False and "rtsp" not in router["open_ports"]
    assert data["arp"] == "ok" and data["wsd_answers"] == len(lab_devices(lab))
    # A bound against a hang, not a speed claim (bench/bench_discover.py measures it).
    assert data["duration_s"] < 10
    for line in res.stdout.splitlines()[1:-2]:
        assert "DIAG Lab" in line or line.startswith(lab.status["gateway"])
    # The draft loads as a site file and names the four devices by address and MAC.
    site = load_site(draft)
    assert {d.address for d in site.devices} == set(lab_devices(lab))
    assert {d.mac for d in site.devices} == {d["mac"] for d in lab_devices(lab).values()}
    assert site.network.interface == "eth0" and site.network.gateway == lab.status["gateway"]
    assert all(str(d.credentials.password).startswith("SecretRef(env:") for d in site.devices)


def test_discover_with_credentials_reads_serials_and_does_not_overwrite(lab: Lab) -> None:
    draft = lab.state_dir / "runs" / "draft-2.toml"
    draft.parent.mkdir(exist_ok=True)
    draft.write_text("# the installer's edits\n", encoding="utf-8")
    pw = lab.state_dir / "secrets" / "nvr.pass"
    res = lab.exec("diag", "discover", "--password", f"file:{pw}", "--write", str(draft))
    assert res.returncode == 2 and "--force" in res.stderr
    assert draft.read_text(encoding="utf-8") == "# the installer's edits\n"  # nothing lost
    res = lab.exec("diag", "discover", "--password", f"file:{pw}", "--json", "-")
    data = json.loads(res.stdout[res.stdout.index("{") :])
    nvr = next(f for f in data["found"] if f["model"] == "DS-LAB-NVR")
    assert nvr["serial"] == "LABNVR0001" and nvr["api"] == "onvif" and nvr["auth"] == "ok"
    # The other devices have their own passwords: one refused login each, nothing more.
    others = [f for f in data["found"] if f["onvif"] and f is not nvr]
    assert others and all(f["auth"] == "rejected" and f["serial"] is None for f in others)
    assert pw.read_text(encoding="utf-8").strip() not in res.stdout + res.stderr
    res = lab.exec("diag", "discover", "--password", "hunter2")
    assert res.returncode == 2 and "hunter2" not in res.stderr


def test_wsdiscovery_finds_every_device_diag_finds(lab: Lab) -> None:
    code = (
        "import json\n"
        "from wsdiscovery.discovery import ThreadedWSDiscovery\n"
        "w = ThreadedWSDiscovery(); w.start()\n"
        "found = [list(s.getXAddrs()) for s in w.searchServices(timeout=2)]\n"
        "w.stop(); print(json.dumps(found))\n"
    )
    xaddrs = {x for xs in json.loads(lab.python(code).splitlines()[-1]) for x in xs}
    expected = {f"http://{a}:80/onvif/device_service" for a in lab_devices(lab)}
    assert xaddrs == expected


def test_onvif_zeep_async_reads_what_diag_reads_on_every_device(lab: Lab) -> None:
    run = lab.diag_run(only=["heartbeat"])
    facts = {
        (f["key"], f["target"]): f["value"]
        for c in run["checks"]
        for f in c["facts"]
        if c["id"] == "heartbeat"
    }
    devs = {d["name"]: d for d in lab.status["devices"]}
    args = {
        n: (d["address"], (lab.state_dir / "secrets" / f"{n}.device.pass").read_text().strip())
        for n, d in devs.items()
    }
    code = (
        "import asyncio, json, sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from device_emulator import peer_read\n"
        f"args = {json.dumps(args)}\n"
        "async def main():\n"
        "    return {n: await peer_read(80, ip, pw) for n, (ip, pw) in args.items()}\n"
        "print(json.dumps(asyncio.run(main())))\n"
    )
    peer = json.loads(lab.python(code, timeout=120).splitlines()[-1])
    for name, p in peer.items():
        assert facts[("device.api", name)] == "onvif"
        info, net, clock = (
            facts[(k, name)] for k in ("device.info", "device.network", "device.clock")
        )
        for key in ("vendor", "model", "serial", "firmware", "mac"):
            assert info[key] == p[key], (name, key)
        assert net["ip"] == p["ip"] and net["gateway"] == p["gateway"] and net["dns"] == p["dns"]
        assert net["dhcp"] is p["dhcp"]
        assert clock["ntp"] is p["ntp"] and clock["ntp_servers"] == p["ntp_servers"]
        assert abs(clock["offset_s"] - p["offset_s"]) <= 2.0  # 1 s clock resolution, two reads
    assert set(peer) == set(devs)
