"""VLAN check: the LLDP parser on crafted and hostile frames, what a listen makes of frames, the
facts, and planning (no root: skip). Real sockets are exercised in test_vlan_lab.py."""

from __future__ import annotations

import ipaddress
import socket
import struct

from fakes import make_site
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.checks import vlan
from diag.checks.base import registry_from
from diag.model import Device
from diag.net import addr as net_addr
from diag.net import arp as net_arp
from diag.net import ifaces as net_ifaces
from diag.net import l2 as net_l2
from diag.runner import plan

SWITCH = "02:00:5e:00:53:fe"
OWN = "02:00:5e:00:53:64"
CAM = "02:00:5e:00:53:21"


def tlv(typ: int, value: bytes) -> bytes:
    return struct.pack("!H", (typ << 9) | len(value)) + value


def lldpdu(*extra: bytes, end: bool = True) -> bytes:
    body = (
        tlv(1, b"\x04" + net_addr.mac_bytes(SWITCH))
        + tlv(2, b"\x05ge-0/0/7")
        + tlv(3, b"\x00\x78")
        + tlv(4, b"camera uplink")
        + tlv(5, b"core-sw1")
        + b"".join(extra)
    )
    return body + (tlv(0, b"") if end else b"")


def pvid(v: int) -> bytes:
    return tlv(127, vlan.OUI_8021 + b"\x01" + struct.pack("!H", v))


def vlan_name(v: int, name: bytes) -> bytes:
    return tlv(127, vlan.OUI_8021 + b"\x03" + struct.pack("!HB", v, len(name)) + name)


def eth(payload: bytes, etype: int, src: str = SWITCH, dst: str = "01:80:c2:00:00:0e") -> bytes:
    return net_addr.mac_bytes(dst) + net_addr.mac_bytes(src) + struct.pack("!H", etype) + payload


# --- LLDP -------------------------------------------------------------------------------------


def test_lldp_neighbour_with_port_vlan_and_vlan_names() -> None:
    n = vlan.parse_lldp(lldpdu(pvid(1), vlan_name(1, b"default"), vlan_name(20, b"cameras")))
    assert n.problems == ()
    assert (n.chassis, n.port, n.system, n.port_descr, n.ttl) == (
        SWITCH,
        "ge-0/0/7",
        "core-sw1",
        "camera uplink",
        120,
    )
    assert n.pvid == 1
    assert n.fact_value() == {
        "chassis": SWITCH,
        "system": "core-sw1",
        "port": "ge-0/0/7",
        "port_descr": "camera uplink",
        "pvid": 1,
        "vlans": [1, 20],
        "vlan_names": {"1": "default", "20": "cameras"},
    }


def test_lldp_ids_by_subtype_network_address_and_mac() -> None:
    frame = (
        tlv(1, b"\x05\x01" + socket.inet_aton("198.18.0.2"))
        + tlv(2, b"\x03" + net_addr.mac_bytes(CAM))
        + tlv(3, b"\x00\x05")
        + tlv(0, b"")
    )
    n = vlan.parse_lldp(frame)
    assert (n.chassis, n.port, n.problems) == ("198.18.0.2", CAM, ())


def test_other_organisations_tlvs_are_ignored_and_pvid_zero_is_none() -> None:
    other = tlv(127, b"\x00\x12\x0f\x01" + b"\x03\x6c\x00\x00\x10")  # 802.3 MAC/PHY
    n = vlan.parse_lldp(lldpdu(other, pvid(0)))
    assert n.pvid is None and n.vlans == () and n.problems == ()


def test_truncated_lldp_keeps_what_was_read_and_says_why() -> None:
    whole = lldpdu(pvid(20))
    n = vlan.parse_lldp(whole[:-6])
    assert n.chassis == SWITCH and n.system == "core-sw1"
    assert "truncated" in n.problems
    missing = vlan.parse_lldp(tlv(5, b"lonely") + tlv(0, b""))
    assert {"missing chassis id", "missing port id", "missing ttl"} <= set(missing.problems)
    short = vlan.parse_lldp(tlv(1, b"\x04") + tlv(127, b"\x00\x80") + tlv(0, b""))
    assert "short tlv 1" in short.problems and "short tlv 127" in short.problems


def test_hostile_strings_are_cleaned_and_capped() -> None:
    evil = b"\x1b[31mRED\x1b[0m<script>\x00\xff" + b"A" * 400
    n = vlan.parse_lldp(lldpdu(vlan_name(20, evil[:200])))
    sysn = vlan.parse_lldp(
        tlv(1, b"\x07x") + tlv(2, b"\x07y") + tlv(3, b"\x00\x01") + tlv(5, evil[:500])
    ).system
    assert sysn is not None
    assert "\x1b" not in sysn and "\x00" not in sysn and len(sysn) <= vlan.MAX_TEXT
    assert "\ufffd" in sysn  # the invalid byte is shown as such, not dropped silently
    assert all("\x1b" not in name for _v, name in n.vlans)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_lldp_parser_never_raises_on_random_bytes(data: bytes) -> None:
    n = vlan.parse_lldp(data)
    for text in (n.chassis, n.port, n.system, n.port_descr):
        assert text is None or len(text) <= vlan.MAX_TEXT
    assert n.pvid is None or 0 < n.pvid < 4096
    assert len(n.vlans) <= 64 and len(n.problems) <= 16
    n.fact_value()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 127), st.binary(max_size=40)),
        max_size=12,
    )
)
def test_lldp_parser_on_well_framed_random_tlvs(tlvs: list[tuple[int, bytes]]) -> None:
    data = b"".join(tlv(t, v) for t, v in tlvs)
    n = vlan.parse_lldp(data)
    assert "truncated" not in n.problems  # every TLV's length was honest


# --- what a listen makes of frames ------------------------------------------------------------


def arp(op: int, mac: str, ip: str, target: str, vid: int | None = None) -> bytes:
    f = net_arp.build_arp_request(net_addr.mac_bytes(mac), ip, target, vid)
    if op == 2:
        f = bytearray(f)
        off = 18 if vid is not None else 14
        f[off + 6 : off + 8] = b"\x00\x02"
        f = bytes(f)
    return f


def test_observed_tags_macs_and_tagged_arp_senders() -> None:
    obs = vlan.Observed()
    obs.feed(arp(1, CAM, "198.18.0.21", "198.18.0.1", vid=20), None, OWN)
    obs.feed(arp(1, CAM, "198.18.0.21", "198.18.0.1"), 20, OWN)  # tag stripped by the kernel
    obs.feed(arp(1, "02:00:5e:00:53:99", "198.18.5.9", "198.18.5.1"), 30, OWN)
    obs.feed(arp(1, OWN, "198.18.0.100", "198.18.0.21", vid=20), None, OWN)  # our own probe
    obs.feed(arp(1, "02:00:5e:00:53:77", "198.18.0.77", "198.18.0.1", vid=0), None, OWN)
    assert obs.tags == {20: [CAM], 30: ["02:00:5e:00:53:99"]}
    assert obs.tagged_ips == {"198.18.0.21": 20, "198.18.5.9": 30}
    assert obs.untagged_answers == {}
    assert obs.frames == 5


def test_untagged_answers_mark_l2_reachable_devices() -> None:
    obs = vlan.Observed()
    obs.feed(arp(2, CAM, "198.18.0.21", "198.18.0.100"), None, OWN)
    obs.feed(arp(1, "02:00:5e:00:53:10", "198.18.0.10", "198.18.0.1"), None, OWN)  # a request
    assert obs.untagged_answers == {"198.18.0.21": [CAM]}


def test_device_vid_by_tagged_arp_or_by_configured_mac() -> None:
    obs = vlan.Observed(tags={20: [CAM]}, tagged_ips={"198.18.0.22": 30})
    assert obs.device_vid(Device("a", "ipc", "p2p", "198.18.0.21", mac=CAM)) == 20
    assert obs.device_vid(Device("b", "ipc", "p2p", "198.18.0.22")) == 30
    assert obs.device_vid(Device("c", "ipc", "p2p", "198.18.0.23")) is None


def test_malformed_lldp_is_counted_and_the_last_complete_neighbour_wins() -> None:
    obs = vlan.Observed()
    obs.feed(eth(lldpdu(pvid(1)), net_l2.ETH_P_LLDP), None, OWN)
    obs.feed(eth(b"\x02\x09zz", net_l2.ETH_P_LLDP), None, OWN)  # garbage
    obs.feed(eth(lldpdu(pvid(1))[:-8], net_l2.ETH_P_LLDP), None, OWN)  # truncated but readable
    assert obs.lldp_malformed == 2
    n = obs.neighbor()
    assert n is not None and n.problems == () and n.pvid == 1
    for _ in range(50):
        obs.feed(eth(lldpdu(), net_l2.ETH_P_LLDP), None, OWN)
    assert len(obs.lldp) <= 8


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.one_of(st.none(), st.integers(0, 4095)))
def test_feed_never_raises(frame: bytes, vid: int | None) -> None:
    obs = vlan.Observed()
    obs.feed(frame, vid, OWN)
    obs.feed(eth(frame, net_l2.ETH_P_LLDP), vid, OWN)
    obs.feed(eth(frame, net_l2.ETH_P_ARP), vid, OWN)
    assert obs.frames == 3


# --- facts and planning -----------------------------------------------------------------------


def laptop() -> net_ifaces.LocalInterface:
    return net_ifaces.LocalInterface("eth0", 2, OWN, (ipaddress.IPv4Interface("198.18.0.100/24"),))


def test_facts_for_a_device_in_another_vlan() -> None:
    site = make_site(
        devices=[
            {"name": "nvr", "kind": "nvr", "added_via": "p2p", "address": "198.18.0.10"},
            {"name": "cam", "kind": "ipc", "added_via": "p2p", "address": "198.18.0.21"},
            {"name": "far", "kind": "ipc", "added_via": "p2p", "address": "203.0.113.50"},
        ]
    )
    obs = vlan.Observed(
        tags={20: [CAM]},
        tagged_ips={"198.18.0.21": 20},
        untagged_answers={"198.18.0.10": ["02:00:5e:00:53:10"]},
    )
    out = vlan.vlan_facts(site, laptop(), obs, 2.0)
    f = {(x.key, x.target): x.value for x in out}
    assert f[("vlan.tags_seen", "")] == [{"vid": 20, "macs": [CAM]}]
    assert f[("vlan.device_l2_unreachable", "cam")] is True
    assert f[("vlan.device_vid", "cam")] == 20
    assert f[("vlan.device_l2_unreachable", "nvr")] is False
    assert ("vlan.device_vid", "nvr") not in f
    assert ("vlan.device_l2_unreachable", "far") not in f  # not in the laptop's subnet
    assert f[("lldp.neighbor", "")] is None  # listened, heard none
    res = vlan.summarize(out, "eth0", obs)
    assert res.status == "warn"
    assert "devices silent on L2: 1" in res.summary.render("en")
    assert "warstwie 2: 1" in res.summary.render("pl")


def test_healthy_facts_are_ok() -> None:
    site = make_site(
        devices=[{"name": "nvr", "kind": "nvr", "added_via": "p2p", "address": "198.18.0.10"}]
    )
    obs = vlan.Observed(untagged_answers={"198.18.0.10": ["02:00:5e:00:53:10"]})
    obs.feed(eth(lldpdu(pvid(1)), net_l2.ETH_P_LLDP), None, OWN)
    out = vlan.vlan_facts(site, laptop(), obs, 2.0)
    f = {(x.key, x.target): x.value for x in out}
    assert f[("vlan.tags_seen", "")] == []
    assert f[("lldp.neighbor", "")]["system"] == "core-sw1"  # type: ignore[index]
    assert vlan.summarize(out, "eth0", obs).status == "ok"


def test_without_root_the_plan_skips_with_the_reason() -> None:
    site = make_site()
    p = plan(site, registry_from(vlan.VlanCheck()), ["vlan"], root=False)
    skip = p.item("vlan").skip
    assert skip is not None and "root" in skip.render("en")


def run_bpf(frame: bytes, tag_present: bool) -> int:
    """A classic-BPF interpreter for the few opcodes the filter uses (what the kernel does)."""
    acc, pc = 0, 0
    prog = vlan.BPF_PROGRAM
    while True:
        code, jt, jf, k = prog[pc]
        if code == 0x20:  # ld word; only the ancillary VLAN-present load is used
            assert k == (-0x1000 + 48) & 0xFFFFFFFF
            acc = int(tag_present)
        elif code == 0x28:  # ldh [k]
            if k + 2 > len(frame):
                return 0
            acc = struct.unpack_from("!H", frame, k)[0]
        elif code == 0x15:  # jeq #k
            pc += jt if acc == k else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


def test_bpf_filter_keeps_tagged_lldp_and_arp_and_drops_the_rest() -> None:
    ipv4 = eth(b"\x45" + b"\x00" * 40, 0x0800, dst=OWN)
    assert run_bpf(ipv4, tag_present=False) == 0
    assert run_bpf(ipv4, tag_present=True) > 0  # the kernel took a tag off it
    assert run_bpf(arp(1, CAM, "198.18.0.21", "198.18.0.1", vid=20), False) > 0
    assert run_bpf(arp(2, CAM, "198.18.0.21", "198.18.0.100"), False) > 0
    assert run_bpf(eth(lldpdu(), net_l2.ETH_P_LLDP), False) > 0
    assert run_bpf(eth(b"", 0x88A8), False) > 0
    assert run_bpf(eth(b"", 0x86DD), False) == 0
    assert run_bpf(b"\x00" * 6, False) == 0


def test_vid_scan_asks_learnt_ids_first_then_every_id_once() -> None:
    order = vlan.vid_scan_order([30, 20, 30, 0, 5000])
    assert order[:2] == [30, 20]
    assert len(order) == 4094 and sorted(order) == list(range(1, 4095))


def test_a_flood_of_forged_arp_is_bounded() -> None:
    obs = vlan.Observed()
    for i in range(vlan.MAX_HOSTS + 500):
        ip = f"198.18.{i // 250}.{i % 250 + 1}"
        obs.feed(arp(1, CAM, ip, "198.18.0.1", vid=20), None, OWN)
        obs.feed(arp(2, CAM, ip, "198.18.0.100"), None, OWN)
    assert len(obs.tagged_ips) == vlan.MAX_HOSTS
    assert len(obs.untagged_answers) == vlan.MAX_HOSTS
    assert obs.tags == {20: [CAM]}
