"""The vlan check on the site lab: a healthy trunk shows no foreign tags and the switch's LLDP; in
``vlan-misconfig`` ipc2's frames come tagged with VID 20 and it does not answer untagged ARP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from labkit import Lab

pytestmark = pytest.mark.lab

LabFactory = Callable[..., Lab]


def vlan(lab: Lab, extra: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[Any, Any]]:
    run = lab.diag_run(only=["vlan"], extra=extra)
    check = next(c for c in run["checks"] if c["id"] == "vlan")
    return check, {(f["key"], f["target"]): f["value"] for f in check["facts"]}


def test_healthy_trunk_has_no_foreign_tags_and_an_lldp_neighbour(lab_factory: LabFactory) -> None:
    lab = lab_factory("healthy")
    check, f = vlan(lab)
    assert f[("vlan.tags_seen", "")] == []
    n = f[("lldp.neighbor", "")]
    assert n is not None, "no LLDP heard in the quick listen"
    # The lab's switch announces every second, with the 802.1 TLVs of the laptop's trunk port.
    assert n["system"] == "lab-switch" and n["chassis"]
    assert n["port_descr"] == "p-laptop"  # the switch port the laptop is plugged into
    assert n["pvid"] == 1 and n["vlans"] == [1, 20]
    assert n["vlan_names"] == {"1": "default", "20": "cameras"}
    for d in ("nvr", "ipc1", "ipc2", "ipc3"):
        assert f[("vlan.device_l2_unreachable", d)] is False, d
        assert ("vlan.device_vid", d) not in f
    assert check["status"] == "ok", check["summary"]
    # Every device answered and LLDP was heard: the quick listen ends after its 1 s floor, well
    # before its 2 s limit (the switch sends LLDP every second).
    assert 0.95 <= f[("vlan.sniff_s", "")] < 1.9


@pytest.mark.parametrize("mode", ["quick", "deep"])
def test_vlan_misconfig_shows_the_device_in_vlan_20(lab_factory: LabFactory, mode: str) -> None:
    lab = lab_factory("vlan-misconfig")
    # The lab's ipc2 speaks only when its heartbeat is due (every 10 s): the quick run finds it
    # by asking for it in each VLAN id; the deep run ends as soon as it is placed and LLDP heard.
    check, f = vlan(lab, extra=("--deep",) if mode == "deep" else ())
    mac = next(d["mac"] for d in lab.status["devices"] if d["name"] == "ipc2")
    tags = f[("vlan.tags_seen", "")]
    assert [t["vid"] for t in tags] == [20]
    assert mac in tags[0]["macs"]
    assert f[("vlan.device_vid", "ipc2")] == 20
    assert f[("vlan.device_l2_unreachable", "ipc2")] is True
    for d in ("nvr", "ipc1", "ipc3"):
        assert f[("vlan.device_l2_unreachable", d)] is False, d
        assert ("vlan.device_vid", d) not in f
    assert f[("lldp.neighbor", "")] is not None
    if mode == "deep":
        assert f[("vlan.sniff_s", "")] < 10.0  # ended early: nothing left to learn
    else:
        assert f[("vlan.sniff_s", "")] < 3.0
    assert check["status"] == "warn"


def test_vlan_misconfig_device_is_unreachable_for_heartbeat_too(lab_factory: LabFactory) -> None:
    lab = lab_factory("vlan-misconfig")
    run = lab.diag_run(only=["heartbeat"])
    check = next(c for c in run["checks"] if c["id"] == "heartbeat")
    f = {(x["key"], x["target"]): x["value"] for x in check["facts"]}
    assert f[("device.reachable", "ipc2")] is False
    assert f[("device.arp_macs", "ipc2")] == []
    assert f[("device.reachable", "ipc1")] is True
