"""Every lab scenario brought up and its fault observed with plain tools from the laptop namespace.

Independent of diag's checks: ping, dig, curl, turnutils_natdiscovery and small Python socket
probes (tests/lab/probes.py). One lab at a time (``with_lab``) keeps memory flat; every test
observes all of its scenario's symptoms on that one lab.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    DNS_ISP,
    DNS_PUBLIC,
    PLATFORM,
    PROBES,
    curl,
    device_addr,
    dig,
    digest,
    natdiscovery,
    ping,
    ping_loss,
    ping_rtt,
    platform_devices,
    probe,
)
from labkit import Lab, start_lab

pytestmark = pytest.mark.lab

NAMES = ("p2p.lab-cloud.test", "relay.lab-cloud.test", "api.lab-cloud.test")


@contextlib.contextmanager
def with_lab(scenario: str, devices: int | None = None) -> Iterator[Lab]:
    lab = start_lab(scenario, devices)
    try:
        yield lab
    finally:
        lab.down()


def serial(lab: Lab, device: str) -> str:
    return str(next(d["serial"] for d in lab.status["devices"] if d["name"] == device))


def wait_platform(lab: Lab, cond, timeout: float = 8.0) -> dict:
    """Polls the platform's API until ``cond(devices)`` holds; returns the last answer."""
    deadline = time.monotonic() + timeout
    devs = platform_devices(lab)
    while not cond(devs) and time.monotonic() < deadline:
        time.sleep(0.5)
        devs = platform_devices(lab)
    return devs


def test_healthy_passes_every_probe() -> None:
    with with_lab("healthy") as lab:
        assert ping(lab, "198.18.0.1")
        assert ping(lab, PLATFORM)
        for name in NAMES:
            assert dig(lab, name, DNS_ISP) == ("NOERROR", [PLATFORM])
            assert dig(lab, name, DNS_PUBLIC) == ("NOERROR", [PLATFORM])
        # The platform sees the site's public address: the router's WAN address.
        reply = probe(lab, "hello", "p2p.lab-cloud.test", "32100")
        assert reply and reply.startswith("DIAGP2P1 WELCOME ")
        assert reply.split()[-1].startswith("203.0.113.2:")
        assert probe(lab, "tcp", "relay.lab-cloud.test", "443") == "DIAGP2P1 RELAY READY"
        ca = str(lab.state_dir / "pki" / "ca.crt")
        code, body = curl(lab, "https://api.lab-cloud.test:8443/api/v1/health", "--cacert", ca)
        assert code == 200 and '"ok"' in body
        assert curl(lab, "http://198.51.100.80/generate_204")[0] == 204
        # Probes reach the platform at hop 3: router, operator, platform.
        assert probe(lab, "ttl", PLATFORM, "32100", "udp", "3") == [
            "198.18.0.1",
            "203.0.113.1",
            PLATFORM,
        ]
        for dev in lab.status["devices"]:
            assert probe(lab, "arp", "eth0", dev["address"]) == [dev["mac"]]
            assert digest(lab, dev["name"])[0] == 200
            assert digest(lab, dev["name"], pw="wrong")[0] == 401
        rtsp = lab.exec(
            sys.executable,
            "-c",
            "import socket;s=socket.create_connection(('198.18.0.10',554),2);"
            "s.send(b'OPTIONS rtsp://198.18.0.10/ RTSP/1.0\\r\\nCSeq: 1\\r\\n\\r\\n');"
            "print(s.recv(200).decode())",
        )
        assert rtsp.stdout.startswith("RTSP/1.0 200"), rtsp.stderr
        # The IP-added camera: DDNS name -> the site's public address, port forward (hairpin).
        assert dig(lab, "ipc1.ddns.lab-cloud.test") == ("NOERROR", ["203.0.113.2"])
        assert curl(lab, "http://ipc1.ddns.lab-cloud.test:8080/ISAPI/System/deviceInfo")[0] == 401
        # UPnP IGD on the router's LAN side.
        code, body = curl(lab, "http://198.18.0.1:5000/rootDesc.xml")
        assert code == 200 and "InternetGatewayDevice" in body
        devs = wait_platform(lab, lambda d: len(d) == 4 and all(x["online"] for x in d.values()))
        assert sorted(devs) == sorted(d["serial"] for d in lab.status["devices"])
        assert all(d["online"] for d in devs.values()), devs
        # No tagged frames on a healthy site.
        assert probe(lab, "vlan", "eth0", "1.5") == []


def test_coturn_answers_rfc5780_from_both_addresses() -> None:
    with with_lab("healthy") as lab:
        # From the internet side (no NAT): CHANGE-REQUEST answered from the other address/port.
        for server, port, other in (
            ("198.51.100.20", 3478, "198.51.100.21"),
            ("198.51.100.21", 3480, "198.51.100.20"),
        ):
            got = probe(lab, "stun_change", server, str(port), role="speedtest")
            assert got == {
                "none": [server, port],
                "port": [server, port + 1],
                "ip": [other, port],
                "both": [other, port + 1],
            }
        # From the laptop behind the port-restricted NAT: coturn's own behaviour discovery.
        for server, port in (("198.51.100.20", 3478), ("198.51.100.21", 3480)):
            out = natdiscovery(lab, server, port)
            assert "NAT with Endpoint Independent Mapping" in out, out
            assert "NAT with Address and Port Dependent Filtering" in out, out


NAT_CASES = {
    "nat-port-restricted": ("Endpoint Independent Mapping", "Address and Port Dependent Filtering"),
    "nat-full-cone": ("Endpoint Independent Mapping", "Endpoint Independent Filtering"),
    "nat-restricted": ("Endpoint Independent Mapping", "Address Dependent Filtering"),
    "nat-symmetric": ("Address and Port Dependent Mapping", None),
    "nat-unfriendly": ("Address and Port Dependent Mapping", None),
}


@pytest.mark.parametrize("scenario", sorted(NAT_CASES))
def test_nat_behaviour(scenario: str) -> None:
    mapping, filtering = NAT_CASES[scenario]
    with with_lab(scenario) as lab:
        # Filtering first: the mapping test talks to the other address, and a restricted cone
        # then lets that address in (nat-recipes.md).
        if filtering:
            out = natdiscovery(lab, "198.51.100.20", tests="-f")
            assert f"NAT with {filtering}" in out, out
        out = natdiscovery(lab, "198.51.100.20", tests="-m")
        assert f"NAT with {mapping}" in out, out
        assert "No NAT" not in out


def test_nat_none_public_lan() -> None:
    with with_lab("nat-none") as lab:
        laptop = lab.status["laptop"]
        assert laptop.startswith("203.0.113.")
        reply = probe(lab, "hello", PLATFORM, "32100")
        assert reply.split()[-1].split(":")[0] == laptop  # no translation
        assert "No NAT" in natdiscovery(lab, "198.51.100.20")
        ipc1 = device_addr(lab, "ipc1")
        assert dig(lab, "ipc1.ddns.lab-cloud.test") == ("NOERROR", [ipc1])


def test_nat_udp_blocked() -> None:
    with with_lab("nat-udp-blocked") as lab:
        assert probe(lab, "hello", PLATFORM, "32100") is None
        assert probe(lab, "stun_change", "198.51.100.20") == {}
        # DNS still passes, and TCP works.
        assert dig(lab, "p2p.lab-cloud.test") == ("NOERROR", [PLATFORM])
        assert probe(lab, "tcp", PLATFORM, "443") == "DIAGP2P1 RELAY READY"


@pytest.mark.parametrize("scenario", ["cgnat", "nat-cgnat"])
def test_cgnat_double_nat(scenario: str) -> None:
    with with_lab(scenario) as lab:
        wan = lab.ns_exec("router", "ip", "-4", "-o", "addr", "show", "dev", "wan0").stdout
        assert "100.64.0.2/24" in wan
        reply = probe(lab, "hello", PLATFORM, "32100")
        assert reply.split()[-1].startswith("203.0.113.1:")  # the operator's address, not ours
        # The DDNS name of the IP-added camera points at the CGNAT: nothing forwards it to us.
        assert curl(lab, "http://ipc1.ddns.lab-cloud.test:8080/")[0] == 0


def test_device_no_power() -> None:
    with with_lab("device-no-power") as lab:
        addr = device_addr(lab, "ipc2")
        assert not ping(lab, addr)
        assert probe(lab, "arp", "eth0", addr) == []
        assert curl(lab, f"http://{addr}/")[0] == 0
        assert ping(lab, device_addr(lab, "ipc1"))
        devs = platform_devices(lab)
        assert serial(lab, "ipc2") not in devs or not devs[serial(lab, "ipc2")]["online"]


def test_device_p2p_disabled() -> None:
    with with_lab("device-p2p-disabled") as lab:
        assert ping(lab, device_addr(lab, "ipc3"))
        code, body = digest(lab, "ipc3", "/ISAPI/System/Network/P2P")
        assert code == 200 and "<enabled>false</enabled>" in body
        devs = wait_platform(lab, lambda d: serial(lab, "nvr") in d)
        assert devs[serial(lab, "nvr")]["online"]
        assert serial(lab, "ipc3") not in devs or not devs[serial(lab, "ipc3")]["online"]


def test_device_net_config() -> None:
    with with_lab("device-net-config") as lab:
        assert ping(lab, device_addr(lab, "nvr"))
        code, body = digest(lab, "nvr", "/ISAPI/System/Network/interfaces/1")
        assert code == 200 and "198.18.0.254" in body  # the wrong gateway it reports
        # Its traffic has no way out: from the device itself the platform is unreachable.
        assert not ping(lab, PLATFORM, role="nvr")
        assert ping(lab, PLATFORM)
        devs = platform_devices(lab)
        assert serial(lab, "nvr") not in devs


def test_device_password_changed() -> None:
    with with_lab("device-password-changed") as lab:
        assert ping(lab, device_addr(lab, "nvr"))
        assert digest(lab, "nvr")[0] == 401  # the site's password no longer works
        assert digest(lab, "ipc1")[0] == 200


def test_ip_conflict() -> None:
    with with_lab("ip-conflict") as lab:
        macs = probe(lab, "arp", "eth0", device_addr(lab, "ipc3"))
        assert len(macs) == 2, macs
        assert len(probe(lab, "arp", "eth0", device_addr(lab, "ipc1"))) == 1


def test_router_port_blocking() -> None:
    with with_lab("router-port-blocking") as lab:
        # TTL walk: only the router answers; the probe dies there.
        assert probe(lab, "ttl", PLATFORM, "32100", "udp", "3") == ["198.18.0.1", None, None]
        assert probe(lab, "ttl", PLATFORM, "443", "tcp", "3") == ["198.18.0.1", None, None]
        assert probe(lab, "hello", PLATFORM, "32100") is None
        assert probe(lab, "tcp", PLATFORM, "443") is None
        # Others pass: the API port, ping, DNS.
        assert probe(lab, "tcp", PLATFORM, "8443") == "connected"
        assert ping(lab, PLATFORM)


def test_isp_p2p_blocking() -> None:
    with with_lab("isp-p2p-blocking") as lab:
        assert probe(lab, "ttl", PLATFORM, "32100", "udp", "3") == [
            "198.18.0.1",
            "203.0.113.1",
            None,
        ]
        assert probe(lab, "tcp", PLATFORM, "443") is None
        assert probe(lab, "tcp", PLATFORM, "8443") == "connected"
        assert curl(lab, "http://198.51.100.80/generate_204")[0] == 204


def test_vlan_misconfig() -> None:
    with with_lab("vlan-misconfig") as lab:
        addr = device_addr(lab, "ipc2")
        assert not ping(lab, addr)
        assert probe(lab, "arp", "eth0", addr) == []
        # The device's own broadcasts (ARP for its gateway) reach the trunk port tagged 20.
        vids: list[int] = []
        deadline = time.monotonic() + 15
        while 20 not in vids and time.monotonic() < deadline:
            vids = probe(lab, "vlan", "eth0", "3")
        assert vids == [20]
        # The switch announces the laptop's port: untagged VLAN 1, carrying VLANs 1 and 20.
        assert probe(lab, "lldp", "eth0", "8") == {
            "system": "lab-switch",
            "pvid": 1,
            "vlans": [1, 20],
        }


def test_link_outage() -> None:
    with with_lab("link-outage") as lab:
        assert ping(lab, "198.18.0.1")
        assert not ping(lab, "203.0.113.1")
        assert not ping(lab, PLATFORM)
        assert dig(lab, "p2p.lab-cloud.test")[0] == "TIMEOUT"


def _upload_mbps(lab: Lab, size: int) -> float:
    blob = lab.state_dir / "upload.bin"
    blob.write_bytes(b"\x5a" * size)
    res = lab.exec(
        "curl", "-s", "-m", "20", "-o", "/dev/null", "-w", "%{speed_upload}",
        "--data-binary", f"@{blob}", "http://198.51.100.80/upload", timeout=40,
    )  # fmt: skip
    return float(res.stdout or 0) * 8 / 1e6


def test_low_bandwidth() -> None:
    with with_lab("low-bandwidth") as lab:
        mbps = _upload_mbps(lab, 200_000)
        assert 0.3 < mbps < 1.3, mbps  # shaped to 1 Mbit/s
        assert ping(lab, PLATFORM)


def test_healthy_upload_is_fast() -> None:
    with with_lab("healthy", devices=1) as lab:
        assert _upload_mbps(lab, 4_000_000) > 10


def test_wan_loss_latency() -> None:
    with with_lab("wan-loss-latency") as lab:
        assert ping_loss(lab, "198.18.0.1") == 0
        assert ping_loss(lab, PLATFORM, count=200) > 3
        # 100 ms ± 40 ms each way on the WAN; the LAN stays fast.
        assert ping_rtt(lab, PLATFORM, count=20) > 120
        assert ping_rtt(lab, "198.18.0.1", count=5) < 20


def test_radio_link_interference() -> None:
    with with_lab("radio-link-interference") as lab:
        assert ping_loss(lab, device_addr(lab, "ipc3"), count=150) > 15
        assert ping_loss(lab, "198.18.0.1") == 0
        assert ping_loss(lab, device_addr(lab, "ipc1")) == 0


def test_data_plan_exhausted() -> None:
    with with_lab("data-plan-exhausted") as lab:
        code, _ = curl(lab, "http://198.51.100.80/generate_204")
        assert code in (301, 302, 303, 307, 200) and code != 204
        loc = lab.exec("curl", "-s", "-m", "3", "-o", "/dev/null", "-w", "%{redirect_url}",
                       "http://198.51.100.80/generate_204").stdout  # fmt: skip
        assert code == 200 or "198.51.100.90" in loc or "portal" in loc
        assert dig(lab, "p2p.lab-cloud.test") == ("NOERROR", [PLATFORM])  # DNS passes
        assert not ping(lab, PLATFORM)
        assert probe(lab, "hello", PLATFORM, "32100") is None
        assert probe(lab, "tcp", PLATFORM, "8443") is None


def test_p2p_server_unavailable() -> None:
    with with_lab("p2p-server-unavailable") as lab:
        assert probe(lab, "hello", "p2p.lab-cloud.test", "32100") is None
        assert probe(lab, "tcp", PLATFORM, "443") is not None  # refused, quickly
        assert probe(lab, "tcp", PLATFORM, "443").startswith("error:")
        # The rest of the internet works.
        assert curl(lab, "http://198.51.100.80/generate_204")[0] == 204
        assert dig(lab, "p2p.lab-cloud.test") == ("NOERROR", [PLATFORM])


def test_dns_failure() -> None:
    with with_lab("dns-failure") as lab:
        assert dig(lab, "p2p.lab-cloud.test", DNS_ISP) == ("NOERROR", ["198.51.100.66"])
        assert dig(lab, "relay.lab-cloud.test", DNS_ISP) == ("NOERROR", ["198.51.100.66"])
        assert dig(lab, "api.lab-cloud.test", DNS_ISP)[0] in ("SERVFAIL", "REFUSED")
        for name in NAMES:
            assert dig(lab, name, DNS_PUBLIC) == ("NOERROR", [PLATFORM])
        # The platform itself is fine when reached by address.
        assert probe(lab, "hello", PLATFORM, "32100") is not None


def _late_reply_arrives(lab: Lab, idle_s: float) -> bool:
    """Opens a mapping from the laptop, stays silent ``idle_s``, then the peer replies."""
    waiter = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns("laptop"), sys.executable, str(PROBES),
         "udp_open_and_wait", "40001", "198.51.100.80", "40002", str(idle_s + 2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(idle_s)
    probe(lab, "udp_send", "40002", lab.status["wan_address"], "40001", role="speedtest")
    out, _err = waiter.communicate(timeout=30)
    return "late reply" in out


def test_nat_mapping_expiry() -> None:
    with with_lab("nat-mapping-expiry") as lab:
        t = lab.ns_exec("router", "sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout")
        assert int(t.stdout) < 10  # below the lab's 10 s heartbeat interval
        assert _late_reply_arrives(lab, 1.0)
        assert not _late_reply_arrives(lab, 6.0)


def test_healthy_mapping_outlives_heartbeat() -> None:
    with with_lab("healthy", devices=1) as lab:
        assert _late_reply_arrives(lab, 6.0)


def test_ip_access_broken() -> None:
    with with_lab("ip-access-broken") as lab:
        assert dig(lab, "ipc1.ddns.lab-cloud.test") == ("NOERROR", ["203.0.113.99"])
        assert dig(lab, "ipc1.ddns.lab-cloud.test", DNS_PUBLIC) == ("NOERROR", ["203.0.113.99"])
        # Neither the stale address nor the real public one forwards to the camera.
        assert curl(lab, "http://203.0.113.99:8080/")[0] == 0
        assert curl(lab, "http://203.0.113.2:8080/")[0] == 0
        rules = lab.ns_exec("router", "nft", "list", "ruleset").stdout
        assert "8080" not in rules
        assert ping(lab, device_addr(lab, "ipc1"))


def test_composed_scenarios_inject_both_faults() -> None:
    with with_lab("dns-failure,router-port-blocking") as lab:
        assert dig(lab, "p2p.lab-cloud.test", DNS_ISP) == ("NOERROR", ["198.51.100.66"])
        assert probe(lab, "ttl", PLATFORM, "32100", "udp", "2") == ["198.18.0.1", None]
        assert {f["cause"] for f in lab.status["faults"]} == {
            "dns-failure",
            "router-port-blocking",
        }


PHONE_SCENARIOS = ("phone-healthy", "phone-mobile-symmetric", "phone-udp-blocked",
                   "phone-no-platform")  # fmt: skip


@pytest.mark.parametrize("name", PHONE_SCENARIOS)
def test_phone_scenarios_are_tested_with_a_browser(name: str) -> None:
    """The phone scenarios' faults are measured by Chromium in tests/phone/test_phone_lab.py."""
    src = (Path(__file__).parents[1] / "phone" / "test_phone_lab.py").read_text(encoding="utf-8")
    assert f'"{name}"' in src


# Scenarios whose fault is measured by a check-level or matrix lab test elsewhere: the test file
# that exercises each, and the text by which it names the scenario there.
TESTED_ELSEWHERE = {
    "weak-uplink": ("checks/test_bandwidth_lab.py", '"weak-uplink"'),
    "profile-wrong": ("test_profiles_lab.py", '"profile-wrong"'),
    "mtu-blackhole": ("checks/test_mtu_lab.py", '"mtu-blackhole"'),
    "device-clock-wrong": ("devices/test_device_scenarios_lab.py", '"device-clock-wrong"'),
    "device-address-changed": ("devices/test_device_scenarios_lab.py", '"device-address-changed"'),
    "mixed-apis": ("devices/test_device_scenarios_lab.py", '"mixed-apis"'),
    "onvif-only": ("diagnosis/test_lab_matrix_apis.py", ',onvif-only"'),
    "isapi-only": ("diagnosis/test_lab_matrix_apis.py", ',isapi-only"'),
    "dahua-only": ("diagnosis/test_lab_matrix.py", "SCENARIOS"),
}


@pytest.mark.parametrize("name", sorted(TESTED_ELSEWHERE))
def test_scenarios_tested_elsewhere_are_named_there(name: str) -> None:
    from diag.lab.scenarios import SCENARIOS

    assert name in {s.name for s in SCENARIOS}
    path, needle = TESTED_ELSEWHERE[name]
    src = (Path(__file__).parents[1] / path).read_text(encoding="utf-8")
    assert needle in src


def test_every_cause_scenario_is_tested() -> None:
    """A scenario added to the table without a test here fails this test."""
    from diag.lab.scenarios import SCENARIOS

    src = Path(__file__).read_text(encoding="utf-8")
    untested = [
        s.name for s in SCENARIOS if f'"{s.name}"' not in src and s.name not in TESTED_ELSEWHERE
    ]
    assert not untested
    assert re  # (keeps the import list honest for the regex helpers above)


@pytest.mark.parametrize(
    ("name", "mode"),
    [("device-hostile-digest", "digest-bare-token"), ("device-hostile-trickle", "trickle-headers")],
)
def test_hostile_device_scenarios_set_one_devices_web_server(name: str, mode: str) -> None:
    """Only ipc1 gets the hostile mode (its emulator config); composing with device-no-power
    keeps both. The behaviour itself: tests/test_failclosed_lab.py on the lab."""
    import datetime as dt
    import json

    from diag.lab import plan as P
    from diag.lab.emulators import hostile
    from diag.lab.scenarios import parse_names

    p = P.build("t1", parse_names(f"device-no-power,{name}"), P.DEFAULT_DEVICES, passwords={},
                today=dt.date(2026, 1, 1), state_root=Path("/run/diag-lab"))  # fmt: skip
    modes = {
        k: json.loads(v).get("hostile") for k, v in p.files.items() if k.startswith("devices/")
    }
    assert mode in hostile.MODES
    assert modes.pop("devices/ipc1.json") == mode
    assert "devices/ipc2.json" not in modes  # no power: no emulator at all
    assert set(modes.values()) == {""}
