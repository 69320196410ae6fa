"""Heartbeat check: frame/XML/JSON parsers, statistics, planning, and the whole check against the
real device emulator and an HTTPS status API on loopback (no root paths: ARP is skipped)."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from device_emulator import PASSWORD, free_port
from fakes import FakeDNS, HttpsServer, answer, make_ca, make_cert, make_site
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.checks import heartbeat as hb
from diag.checks.base import World, registry_from
from diag.model import CheckResult, Device, ServicePort
from diag.net import addr as net_addr
from diag.net import arp as net_arp
from diag.net import icmp as net_icmp
from diag.net import ifaces as net_ifaces
from diag.net import l2 as net_l2
from diag.net import linux as net_linux
from diag.runner import Runner, plan

MAC_A, MAC_B = "02:00:5e:00:53:0a", "02:00:5e:00:53:0b"


def arp_reply(
    ip: str, mac: str, vid: int | None = None, to_mac: str = "02:00:5e:00:53:64"
) -> bytes:
    eth = net_addr.mac_bytes(to_mac) + net_addr.mac_bytes(mac)
    if vid is not None:
        eth += struct.pack("!HH", 0x8100, vid)
    eth += b"\x08\x06"
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        0x0800,
        6,
        4,
        2,
        net_addr.mac_bytes(mac),
        socket.inet_aton(ip),
        net_addr.mac_bytes(to_mac),
        socket.inet_aton("198.18.0.100"),
    )
    return eth + body


# --- ARP frames -------------------------------------------------------------------------------


def test_arp_request_is_a_broadcast_who_has_padded_to_60_bytes() -> None:
    f = net_arp.build_arp_request(net_addr.mac_bytes(MAC_A), "198.18.0.100", "198.18.0.21")
    assert len(f) == 60
    l2 = net_l2.parse_frame(f)
    assert l2 is not None and l2.dst == "ff:ff:ff:ff:ff:ff" and l2.src == MAC_A and l2.vid is None
    arp = net_arp.parse_arp(l2.payload)
    assert arp == net_arp.ArpPacket(1, MAC_A, "198.18.0.100", "198.18.0.21")


def test_tagged_arp_request_carries_the_vlan_id() -> None:
    f = net_arp.build_arp_request(net_addr.mac_bytes(MAC_A), "198.18.0.100", "198.18.0.21", vid=20)
    l2 = net_l2.parse_frame(f)
    assert l2 is not None and l2.vid == 20 and l2.ethertype == net_l2.ETH_P_ARP


def test_two_macs_answering_for_one_address_are_both_kept_in_order() -> None:
    answers = [
        net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_A)),
        net_arp.answer_from_frame(arp_reply("198.18.0.22", MAC_A)),
        net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_B)),
        net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_A)),  # a retransmission's answer
    ]
    agg = net_arp.aggregate_answers([a for a in answers if a is not None])
    assert agg == {"198.18.0.21": [MAC_A, MAC_B], "198.18.0.22": [MAC_A]}


def test_answers_from_another_vlan_do_not_count_as_reachable() -> None:
    inline = net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_B, vid=20))
    stripped = net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_B), aux_vid=20)
    prio = net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_A, vid=0))
    assert inline is not None and inline.vid == 20
    assert stripped is not None and stripped.vid == 20
    assert prio is not None and prio.vid is None  # priority tag: the port's own VLAN
    assert net_arp.aggregate_answers([inline, stripped, prio]) == {"198.18.0.21": [MAC_A]}
    assert net_arp.aggregate_answers([inline], untagged_only=False) == {"198.18.0.21": [MAC_B]}


def test_arp_requests_and_junk_are_not_answers() -> None:
    req = net_arp.build_arp_request(net_addr.mac_bytes(MAC_A), "198.18.0.21", "198.18.0.100")
    assert net_arp.answer_from_frame(req) is None
    assert net_arp.answer_from_frame(b"") is None
    assert net_arp.answer_from_frame(b"\xff" * 13) is None
    assert net_arp.answer_from_frame(arp_reply("198.18.0.21", MAC_A)[:30]) is None
    bad_hlen = bytearray(arp_reply("198.18.0.21", MAC_A))
    bad_hlen[14 + 4] = 8
    assert net_arp.answer_from_frame(bytes(bad_hlen)) is None


def test_aux_vid_reads_tpacket_auxdata() -> None:
    valid = struct.pack("IIIHHHH", net_l2.TP_STATUS_VLAN_VALID, 60, 60, 0, 14, 0x2014, 0x8100)
    invalid = struct.pack("IIIHHHH", 0, 60, 60, 0, 14, 0x2014, 0x8100)
    assert net_l2.aux_vid([(net_l2.SOL_PACKET, net_l2.PACKET_AUXDATA, valid)]) == 20
    assert net_l2.aux_vid([(net_l2.SOL_PACKET, net_l2.PACKET_AUXDATA, invalid)]) is None
    assert net_l2.aux_vid([(net_l2.SOL_PACKET, net_l2.PACKET_AUXDATA, b"\x00")]) is None
    assert net_l2.aux_vid([]) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.one_of(st.none(), st.integers(0, 4095)))
def test_frame_parsers_never_raise(data: bytes, vid: int | None) -> None:
    net_arp.answer_from_frame(data, vid)
    net_arp.parse_arp(data)
    l2 = net_l2.parse_frame(data, vid)
    if l2 is not None:
        assert l2.vid is None or 0 <= l2.vid <= 4095


# --- ICMP and statistics ----------------------------------------------------------------------


def test_jitter_is_mean_absolute_difference_of_answered_rtts() -> None:
    assert net_icmp.jitter_ms([1.0, 3.0, 2.0, None, 5.0]) == 2.0
    assert net_icmp.jitter_ms([4.0, 4.0, 4.0]) == 0.0
    assert net_icmp.jitter_ms([None, 4.0, None]) is None
    assert net_icmp.jitter_ms([]) is None


def test_ping_stats_loss_rtt_jitter() -> None:
    s = net_icmp.PingStats(5, (1.0, None, 3.0, None, 2.0), "raw")
    assert s.received == 3
    assert s.loss_pct == 40.0
    assert s.rtt_ms == 2.0
    assert s.jitter_ms == 1.5
    assert net_icmp.PingStats(3, (None, None, None), "raw").rtt_ms is None
    assert net_icmp.PingStats(3, (None, None, None), "raw").loss_pct == 100.0


def test_echo_request_checksum_and_reply_parsing() -> None:
    pkt = net_icmp.build_echo(0x1234, 7, b"payload!")
    assert net_icmp.icmp_checksum(pkt) == 0  # a correct checksum sums to zero
    reply = bytes([0, 0]) + pkt[2:]
    assert net_icmp.parse_echo_reply(reply, raw=False) == (0x1234, 7, b"payload!")
    iphdr = bytes([0x45]) + b"\x00" * 19
    assert net_icmp.parse_echo_reply(iphdr + reply, raw=True) == (0x1234, 7, b"payload!")
    assert net_icmp.parse_echo_reply(pkt, raw=False) is None  # a request, not a reply
    assert net_icmp.parse_echo_reply(b"\x45", raw=True) is None


# --- interfaces and sweep planning ------------------------------------------------------------

ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""


def test_default_route_from_proc_net_route() -> None:
    assert net_linux.parse_default_route(ROUTE) == ("198.18.0.1", "eth0")
    assert net_linux.parse_default_route(ROUTE.splitlines()[0]) == (None, None)
    assert net_linux.parse_default_route("garbage\nx 00000000 zz 0003") == (None, None)


def iface(name: str = "eth0", *nets: str) -> net_ifaces.LocalInterface:
    import ipaddress

    return net_ifaces.LocalInterface(
        name, 2, "02:00:5e:00:53:64", tuple(ipaddress.IPv4Interface(n) for n in nets)
    )


def test_sweep_of_own_24_skips_own_address() -> None:
    targets, swept, offlink = net_ifaces.sweep_targets(iface("eth0", "198.18.0.100/24"), [])
    assert swept == ["198.18.0.0/24"] and offlink == []
    assert len(targets) == 253 and "198.18.0.100" not in targets
    assert targets[0] == "198.18.0.1" and targets[-1] == "198.18.0.254"


def test_wide_subnets_are_cut_to_the_24_around_the_laptop_and_offlink_ones_listed() -> None:
    targets, swept, offlink = net_ifaces.sweep_targets(
        iface("eth0", "198.18.7.100/16"), ["198.18.0.0/16", "203.0.113.0/24"]
    )
    assert swept == ["198.18.7.0/24"]
    assert offlink == ["203.0.113.0/24"]
    assert len(targets) == 253


def test_pick_interface_prefers_config_then_devices_then_gateway_then_subnets() -> None:
    a, b = iface("eth0", "198.18.0.100/24"), iface("wlan0", "198.19.5.2/24")
    site = make_site(
        devices=[{"name": "c", "kind": "ipc", "added_via": "p2p", "address": "198.19.5.9"}]
    )
    assert net_ifaces.pick_interface(site, [a, b]) == b
    assert net_ifaces.pick_interface(make_site(network={"gateway": "198.18.0.1"}), [a, b]) == a
    assert net_ifaces.pick_interface(make_site(network={"subnets": ["198.19.0.0/16"]}), [a, b]) == b
    configured = make_site(network={"interface": "eth0"})
    assert net_ifaces.pick_interface(configured, [a, b]) == a
    missing = make_site(network={"interface": "eth9"})
    assert net_ifaces.pick_interface(missing, [a, b]) is None


def test_a_site_not_on_any_local_link_gets_no_interface() -> None:
    """A loopback test site, or a laptop on another network: nothing is swept or sniffed."""
    a = iface("eth0", "198.18.0.100/24")
    site = make_site(
        network={"gateway": "127.0.0.1", "subnets": ["203.0.113.0/24"]},
        devices=[{"name": "c", "kind": "ipc", "added_via": "p2p", "address": "127.0.0.10"}],
    )
    assert net_ifaces.pick_interface(site, [a]) is None
    assert net_ifaces.pick_interface(make_site(), [a]) is None


# --- device XML and platform JSON -------------------------------------------------------------

NS = 'xmlns="http://www.hikvision.com/ver20/XMLSchema" version="2.0"'
DEVICE_INFO = f"""<?xml version="1.0" encoding="UTF-8"?>
<DeviceInfo {NS}><deviceName>Gate</deviceName><deviceID>x</deviceID><model>DS-2CD</model>
<serialNumber>IPC123</serialNumber><macAddress>02:00:5e:00:53:21</macAddress>
<firmwareVersion>V5.7</firmwareVersion><deviceType>IPCamera</deviceType></DeviceInfo>"""
NETWORK = f"""<NetworkInterface {NS}><id>1</id><IPAddress><ipVersion>v4</ipVersion>
<ipAddress>198.18.0.21</ipAddress><subnetMask>255.255.255.0</subnetMask>
<DefaultGateway><ipAddress>198.18.0.1</ipAddress></DefaultGateway>
<PrimaryDNS><ipAddress>198.51.100.53</ipAddress></PrimaryDNS>
<SecondaryDNS><ipAddress>0.0.0.0</ipAddress></SecondaryDNS></IPAddress></NetworkInterface>"""


def test_device_info_and_network_settings_parse_with_namespaces() -> None:
    info = hb.parse_device_info(DEVICE_INFO)
    assert info is not None and info["serial"] == "IPC123" and info["type"] == "IPCamera"
    net = hb.parse_network(NETWORK)
    assert net == {
        "ip": "198.18.0.21",
        "mask": "255.255.255.0",
        "gateway": "198.18.0.1",
        "dns": ["198.51.100.53"],
        "dhcp": None,
    }
    assert hb.parse_p2p("<P2P><enabled>false</enabled><status>disabled</status></P2P>") is False
    assert hb.parse_p2p(f"<P2P {NS}><enabled>true</enabled></P2P>") is True
    assert hb.parse_p2p("<P2P><enabled>maybe</enabled></P2P>") is None


def test_hostile_xml_is_refused_not_expanded() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><DeviceInfo><model>&b;</model></DeviceInfo>'
    )
    assert hb.parse_device_info(bomb) is None
    assert hb.parse_xml(b"<a>" + b"x" * (hb.MAX_BODY + 1) + b"</a>") is None
    assert hb.parse_network("<html>login</html>") is None
    assert hb.parse_device_info("<NetworkInterface/>") is None
    assert hb.parse_p2p("\x00\xff not xml") is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_xml_parsers_never_raise(text: str) -> None:
    hb.parse_device_info(text)
    hb.parse_network(text)
    hb.parse_p2p(text)
    hb.parse_platform_status(text)
    hb.parse_address_changes(text)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"online": true, "last_heartbeat_s_ago": 3.25}', (True, 3.25)),
        ('{"online": false, "last_heartbeat_s_ago": null}', (False, None)),
        ('{"online": false, "last_heartbeat_s_ago": -4}', (False, None)),
        ('{"online": "yes"}', None),
        ("[1, 2]", None),
        ("<html>", None),
    ],
)
def test_platform_status_json(body: str, expected: Any) -> None:
    assert hb.parse_platform_status(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"online": true, "address_changes": 3}', 3),
        ('{"online": true, "address_changes": 0}', 0),
        ('{"online": true, "address_changes": -1}', None),
        ('{"online": true, "address_changes": true}', None),
        ('{"online": true}', None),
        ("not json", None),
    ],
)
def test_platform_address_changes(body: str, expected: int | None) -> None:
    assert hb.parse_address_changes(body) == expected


@pytest.mark.parametrize(
    ("settings_", "site_gw", "ok"),
    [
        (
            {"gateway": "198.18.0.1", "ip": "198.18.0.21", "mask": "255.255.255.0"},
            "198.18.0.1",
            True,
        ),
        (
            {"gateway": "198.18.0.254", "ip": "198.18.0.21", "mask": "255.255.255.0"},
            "198.18.0.1",
            False,
        ),
        ({"gateway": "198.19.0.1", "ip": "198.18.0.21", "mask": "255.255.255.0"}, None, False),
        ({"gateway": "0.0.0.0"}, "198.18.0.1", False),
        ({"gateway": None}, "198.18.0.1", False),
        ({"gateway": "198.18.0.1", "ip": "198.18.0.21", "mask": "bogus"}, "198.18.0.1", False),
    ],
)
def test_gateway_matches(settings_: dict[str, Any], site_gw: str | None, ok: bool) -> None:
    assert hb.gateway_matches(settings_, site_gw) is ok


def test_targets_are_devices_with_an_address_or_a_serial_the_api_can_look_up() -> None:
    devs = [
        {"name": "a", "kind": "ipc", "added_via": "p2p", "address": "127.0.0.1"},
        {"name": "b", "kind": "ipc", "added_via": "shared", "serial": "S1"},
        {"name": "c", "kind": "ipc", "added_via": "shared"},
    ]
    assert hb.HeartbeatCheck().targets(make_site(devices=devs)) == ("a",)
    api = make_site(devices=devs, profile={"status_api_url": "https://127.0.0.1:1"})
    assert hb.HeartbeatCheck().targets(api) == ("a", "b")


def test_http_port_by_name_then_by_number() -> None:
    d = Device("x", "ipc", "p2p", "127.0.0.1", ports=(ServicePort("web", 8080),))
    assert hb.http_port(d) == 8080
    d = Device("x", "ipc", "p2p", "127.0.0.1", ports=(ServicePort("admin", 80),))
    assert hb.http_port(d) == 80
    d = Device("x", "ipc", "p2p", "127.0.0.1", ports=(ServicePort("rtsp", 554),))
    assert hb.http_port(d) is None


# --- the whole check on loopback --------------------------------------------------------------


@pytest.fixture
def no_icmp(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback always answers ICMP where unprivileged pings are allowed: take it out of the
    picture so TCP/HTTP behaviour is what the test sees on every host."""
    monkeypatch.setattr(hb, "icmp_available", lambda *a, **k: None)

    async def no_ping(*a: Any, **k: Any) -> None:
        return None

    monkeypatch.setattr(hb, "ping", no_ping)


def device_entry(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "cam",
        "kind": "ipc",
        "added_via": "p2p",
        "address": "127.0.0.1",
        "serial": "IPC123",
        "ports": {"http": port, "rtsp": free_port()},
        "credentials": {"username": "admin", "password": "env:DIAG_TEST_CAM_PW"},
        **extra,
    }


async def run_heartbeat(site: Any, deadline_s: float = 15.0, root: bool = False) -> CheckResult:
    check = hb.HeartbeatCheck()
    reg = registry_from(check)
    # Not root by default: the root paths have their own tests (netns and lab).
    world = World(is_root=lambda: root)
    the_plan = plan(site, reg, ["heartbeat"], root=root)
    results = await Runner(reg, world=world, deadline_s=deadline_s).run(site, the_plan)
    return results[0]


def facts(res: CheckResult) -> dict[tuple[str, str], Any]:
    return {(f.key, f.target): f.value for f in res.facts}


@pytest.fixture
def dns_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDNS]:
    with FakeDNS({"p2p.lab-cloud.test": answer("198.51.100.10")}) as dns:
        monkeypatch.setattr(hb, "DNS_PORT", dns.port)
        yield dns


def secret_free(res: CheckResult) -> bool:
    blob = repr(res) + json.dumps([[f.key, f.value, f.target] for f in res.facts], default=str)
    blob += res.summary.render("en") + res.summary.render("pl")
    return PASSWORD not in blob


async def test_healthy_device_logs_in_and_reports_its_settings(
    emulator: Any, dns_fake: FakeDNS, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    dev = emulator(p2p_enabled=True, platform=f"127.0.0.1:{free_port()}", heartbeat_interval_s=60)
    site = make_site(
        devices=[device_entry(dev.port)],
        network={"gateway": "127.0.0.254"},
        profile={"dns_names": ["p2p.lab-cloud.test"]},
    )
    res = await run_heartbeat(site)
    f = facts(res)
    assert f[("device.auth", "cam")] == "ok"
    assert f[("device.ports", "cam")] == {"http": True, "rtsp": False}
    assert f[("device.reachable", "cam")] is True
    assert f[("device.settings", "cam")] == {
        "gateway": "127.0.0.254",
        "dns": ["127.0.0.1"],
        "p2p_enabled": True,
    }
    assert f[("device.gateway_ok", "cam")] is True
    assert f[("device.info", "cam")]["serial"] == "IPC123"
    assert f[("lan.arp_skipped", "")] == "needs-root"
    assert ("device.arp_macs", "cam") not in f  # not measured without root: absent
    assert ("p2p.lab-cloud.test", "A") in dns_fake.queries
    assert res.status == "ok", res.summary
    assert secret_free(res)
    assert PASSWORD not in dev.stop()


async def test_wrong_password_is_rejected_after_one_try(
    emulator: Any, dns_fake: FakeDNS, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", "not-the-password")
    dev = emulator()
    site = make_site(devices=[device_entry(dev.port)], network={"gateway": "127.0.0.254"})
    res = await run_heartbeat(site)
    f = facts(res)
    assert f[("device.auth", "cam")] == "rejected"
    assert ("device.settings", "cam") not in f
    assert f[("device.reachable", "cam")] is True
    assert res.status == "warn"
    # One failed login per run: four more runs still do not lock the device out...
    for _ in range(3):
        await run_heartbeat(site)
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    assert facts(await run_heartbeat(site))[("device.auth", "cam")] == "ok"


async def test_locked_out_device_is_reported_and_not_hammered(
    emulator: Any, dns_fake: FakeDNS, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", "wrong")
    dev = emulator()
    site = make_site(devices=[device_entry(dev.port)])
    for _ in range(5):
        await run_heartbeat(site)
    f = facts(await run_heartbeat(site))
    assert f[("device.auth", "cam")] == "rejected"
    assert f[("device.auth_locked", "cam")] is True


async def test_p2p_switched_off_and_wrong_gateway_show_in_settings(
    emulator: Any, dns_fake: FakeDNS, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    dev = emulator(
        reported={"ip": "127.0.0.1", "mask": "255.0.0.0", "gateway": "127.0.0.99", "dns": []}
    )
    site = make_site(devices=[device_entry(dev.port)], network={"gateway": "127.0.0.254"})
    f = facts(await run_heartbeat(site))
    assert f[("device.settings", "cam")] == {
        "gateway": "127.0.0.99",
        "dns": [],
        "p2p_enabled": False,
    }
    assert f[("device.gateway_ok", "cam")] is False


async def test_dns_that_does_not_answer_makes_the_gateway_not_ok(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    monkeypatch.setattr(hb, "DNS_PORT", free_port())  # nothing listens: ICMP port unreachable
    monkeypatch.setattr(hb, "DNS_TIMEOUT_S", 0.3)
    dev = emulator()
    site = make_site(devices=[device_entry(dev.port)], network={"gateway": "127.0.0.254"})
    f = facts(await run_heartbeat(site))
    assert f[("device.settings", "cam")]["gateway"] == "127.0.0.254"
    assert f[("device.gateway_ok", "cam")] is False


async def test_unresolvable_credentials_are_a_fact_and_no_login_is_tried(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.delenv("DIAG_TEST_CAM_PW", raising=False)
    dev = emulator()
    site = make_site(devices=[device_entry(dev.port)])
    f = facts(await run_heartbeat(site))
    assert f[("device.auth", "cam")] == "no-credentials"
    log = dev.stop()
    assert "/ISAPI/" not in log


async def test_device_that_is_off_is_unreachable_and_fails_the_check(
    monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    site = make_site(devices=[device_entry(free_port())])
    res = await run_heartbeat(site)
    f = facts(res)
    assert f[("device.reachable", "cam")] is False
    assert f[("device.ports", "cam")] == {"http": False, "rtsp": False}
    assert ("device.auth", "cam") not in f
    assert res.status == "fail"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    return ca, make_cert(d, ca=ca), make_cert(d, stem="selfsigned")


@pytest.mark.parametrize(
    ("status", "body", "expect"),
    [
        (200, b'{"serial": "IPC 1/2", "online": true, "last_heartbeat_s_ago": 4.5}', (True, 4.5)),
        (200, b'{"serial": "IPC 1/2", "online": false, "last_heartbeat_s_ago": 300}', (False, 300)),
        (404, b'{"error": "unknown device"}', (False, None)),
    ],
)
async def test_platform_view_of_the_heartbeat(
    pki: tuple[Any, Any, Any], status: int, body: bytes, expect: tuple[bool, Any]
) -> None:
    ca, cert, _ = pki
    with HttpsServer(cert, status=status, body=body) as api:
        site = make_site(
            profile={"status_api_url": f"https://127.0.0.1:{api.port}", "ca_file": str(ca.cert)},
            devices=[{"name": "shared", "kind": "ipc", "added_via": "shared", "serial": "IPC 1/2"}],
        )
        res = await run_heartbeat(site)
        assert api.hits == ["/api/v1/devices/IPC%201%2F2"]
    f = facts(res)
    assert (
        f[("device.platform_online", "shared")],
        f[("device.platform_last_seen_s", "shared")],
    ) == expect
    assert res.status == ("ok" if expect[0] else "warn")


async def test_platform_with_an_untrusted_certificate_is_an_error_not_a_verdict(
    pki: tuple[Any, Any, Any],
) -> None:
    ca, _cert, selfsigned = pki
    with HttpsServer(selfsigned, body=b'{"online": true}') as api:
        site = make_site(
            profile={"status_api_url": f"https://127.0.0.1:{api.port}", "ca_file": str(ca.cert)},
            devices=[{"name": "shared", "kind": "ipc", "added_via": "shared", "serial": "S"}],
        )
        f = facts(await run_heartbeat(site))
    assert f[("device.platform_error", "shared")] == "tls"
    assert ("device.platform_online", "shared") not in f


def test_pl_catalogue_translates_the_summaries() -> None:
    from diag.i18n import catalog

    cat = catalog("pl")
    for text in (
        "Device heartbeat",
        "{up} of {total} devices answer on the LAN; problems on {problems} of them",
        "{up} of {total} devices answer on the LAN",
        "probed {device}",
    ):
        assert cat.get(text), text


async def test_unreadable_ca_file_is_a_local_error_fact(tmp_path: Path) -> None:
    site = make_site(
        profile={"status_api_url": "https://127.0.0.1:9", "ca_file": str(tmp_path / "none.pem")},
        devices=[{"name": "shared", "kind": "ipc", "added_via": "shared", "serial": "S"}],
    )
    res = await run_heartbeat(site)
    assert res.status != "error", res.summary
    assert facts(res)[("device.platform_error", "shared")] == "ca-file"


@pytest.mark.parametrize(
    ("status", "body", "auth"),
    [
        (401, b"", "unsupported"),  # a challenge we do not speak (none at all here)
        (404, b"not here", "unsupported"),  # no ISAPI on this device
        (500, b"oops", "error"),
        (403, b"", "rejected"),
    ],
)
@pytest.mark.parametrize("api", ["isapi", "auto"])
async def test_login_outcomes_other_than_ok_and_digest_rejection(
    status: int, body: bytes, auth: str, api: str, monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    with HttpsServer(None, status=status, body=body) as web:
        site = make_site(devices=[device_entry(web.port, api=api)])
        res = await run_heartbeat(site)
        if api == "isapi" or auth == "rejected":
            # one try, nothing after it (a refusal ends auto's search too)
            assert web.hits == ["/ISAPI/System/deviceInfo"]
        else:
            # auto: each API once (ONVIF's POST is not a GET hit), none of them twice
            assert web.hits == [
                "/ISAPI/System/deviceInfo",
                "/cgi-bin/magicBox.cgi?action=getSystemInfo",
            ]
    f = facts(res)
    assert f[("device.auth", "cam")] == auth
    assert ("device.settings", "cam") not in f
    assert secret_free(res)


async def test_hostile_device_body_is_capped_and_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, no_icmp: None
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    huge = b"<DeviceInfo>" + b"A" * (4 * hb.MAX_BODY) + b"</DeviceInfo>"
    with HttpsServer(None, status=200, body=huge) as web:
        site = make_site(devices=[device_entry(web.port)])
        res = await run_heartbeat(site)
    f = facts(res)
    assert res.status != "error", res.summary
    assert f[("device.auth", "cam")] == "ok"
    assert ("device.info", "cam") not in f  # truncated: not parsed
    assert ("device.settings", "cam") not in f


async def test_platform_answering_garbage_is_a_bad_reply(pki: tuple[Any, Any, Any]) -> None:
    ca, cert, _ = pki
    with HttpsServer(cert, status=200, body=b"\x00\xff<html>" * 20000) as api:
        site = make_site(
            profile={"status_api_url": f"https://127.0.0.1:{api.port}", "ca_file": str(ca.cert)},
            devices=[{"name": "shared", "kind": "ipc", "added_via": "shared", "serial": "S"}],
        )
        f = facts(await run_heartbeat(site))
    assert f[("device.platform_error", "shared")] == "bad-reply"
    assert ("device.platform_online", "shared") not in f


async def test_as_root_on_a_loopback_site_no_raw_or_packet_socket_is_opened(
    emulator: Any, dns_fake: FakeDNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root, but the site is not on any local link: no sweep, no sniffing of the host's LAN, no
    raw ICMP (the network guard fails this test if the check opens either)."""
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    dev = emulator()
    site = make_site(devices=[device_entry(dev.port)], network={"gateway": "127.0.0.254"})
    res = await run_heartbeat(site, root=True)
    f = facts(res)
    assert f[("lan.arp_skipped", "")] == "no-interface"
    assert ("lan.icmp", "") not in f and ("device.icmp_loss_pct", "cam") not in f
    assert f[("device.auth", "cam")] == "ok"
    assert f[("device.reachable", "cam")] is True


def test_frames_the_kernel_marks_for_another_host_are_not_ours() -> None:
    assert net_l2.is_ours(("eth0", 0x0806, 0, 1, b"\x02" * 6))  # PACKET_HOST
    assert net_l2.is_ours(("eth0", 0x0806, 1, 1, b"\x02" * 6))  # broadcast
    assert not net_l2.is_ours(("eth0", 0x0806, net_l2.PACKET_OTHERHOST, 1, b"\x02" * 6))
    assert net_l2.is_ours(None)


def test_device_resolvers_are_asked_only_when_the_site_names_them_or_they_are_local() -> None:
    import ipaddress

    site = make_site(
        network={
            "site_resolver": "198.51.100.53",
            "gateway": "198.18.0.1",
            "subnets": ["198.18.5.0/24"],
        },
        profile={"independent_resolvers": ["198.51.100.54"]},
    )
    iface = net_ifaces.LocalInterface(
        "eth0", 2, "02:00:00:00:00:01", (ipaddress.IPv4Interface("198.18.0.100/24"),)
    )
    env = hb.Env(root=False, iface=iface, site_gateway="198.18.0.1", deep=False)
    assert hb.may_query("198.51.100.53", site, env)  # the site's resolver
    assert hb.may_query("198.51.100.54", site, env)  # the independent one
    assert hb.may_query("198.18.0.1", site, env)  # the gateway
    assert hb.may_query("198.18.0.253", site, env)  # on the laptop's link
    assert hb.may_query("198.18.5.9", site, env)  # a configured subnet
    assert not hb.may_query("203.0.113.77", site, env)  # anything else: not probed
    assert not hb.may_query("not-an-ip", site, env)


@pytest.mark.parametrize(("mode", "reachable"), [("ok", True), ("silent", False), ("kiss", False)])
async def test_the_ntp_server_a_device_names_is_asked_by_sntp(
    emulator: Any,
    dns_fake: FakeDNS,
    monkeypatch: pytest.MonkeyPatch,
    no_icmp: None,
    mode: str,
    reachable: bool,
) -> None:
    """The device reports NTP on with a server (the loopback NTP fake in ``mode``): the laptop
    asks that server and records whether it gave a synchronized time, and its offset."""
    import asyncio

    from diag.lab.emulators.ntp import NtpServer

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: NtpServer(mode, 120.0), local_addr=("127.0.0.1", 0)
    )
    monkeypatch.setattr(hb, "NTP_PORT", transport.get_extra_info("sockname")[1])
    monkeypatch.setattr(hb, "NTP_TIMEOUT_S", 0.6)
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    try:
        dev = emulator(ntp={"enabled": True, "servers": ["127.0.0.1", "pool.ntp.example"]})
        site = make_site(devices=[device_entry(dev.port)], network={"gateway": "127.0.0.254"})
        f = facts(await run_heartbeat(site))
    finally:
        transport.close()
    assert f[("device.ntp_reachable", "cam")] is reachable
    (probe,) = f[("device.ntp_probe", "cam")]
    assert probe["server"] == "127.0.0.1"
    if reachable:
        assert probe["status"] == "ok" and abs(probe["offset_s"] - 120.0) < 1.0
    else:
        assert probe["status"] == {"silent": "timeout", "kiss": "kiss"}[mode]
        assert probe["offset_s"] is None
    # A name is not resolved and asked: the tool probes what the site names and its subnets.
    assert f[("device.ntp_not_asked", "cam")] == ["pool.ntp.example"]
