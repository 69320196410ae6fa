"""The heartbeat check on the site lab: each device-side scenario shows up in the facts it injects,
and only for the device it injects it on. One lab per scenario, shared by the module's tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from labkit import Lab

pytestmark = pytest.mark.lab

DEVICES = ("nvr", "ipc1", "ipc2", "ipc3")
# Devices log in one after another (0.5 s each) after the lab starts; 20 s covers a lossy one.
LOGIN_WAIT_S = 20.0


def wait_online(lab: Lab, names: Iterable[str], timeout: float = LOGIN_WAIT_S) -> None:
    """Waits until the platform lists these devices online (its state dump, read on the host)."""
    serials = {d["serial"] for d in lab.status["devices"] if d["name"] in set(names)}
    end = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < end:
        try:
            state = json.loads((lab.state_dir / "platform-state.json").read_text("utf-8"))
            seen = {d["serial"] for d in state.get("devices", []) if d.get("online")}
        except (OSError, ValueError):
            pass
        if serials <= seen:
            return
        time.sleep(0.2)
    raise AssertionError(f"devices not online at the platform: {sorted(serials - seen)}")


def heartbeat(lab: Lab) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    run = lab.diag_run(only=["heartbeat"])
    check = next(c for c in run["checks"] if c["id"] == "heartbeat")
    facts = {(f["key"], f["target"]): f["value"] for f in check["facts"]}
    return check, facts


def assert_healthy(f: dict[tuple[str, str], Any], names: Iterable[str]) -> None:
    for n in names:
        assert f[("device.reachable", n)] is True, n
        assert f[("device.ip_conflict", n)] is False, n
        assert len(f[("device.arp_macs", n)]) == 1, n
        assert f[("device.icmp_loss_pct", n)] == 0.0, n
        assert f[("device.ports", n)] == {"http": True, "rtsp": True}, n
        assert f[("device.auth", n)] == "ok", n
        assert f[("device.gateway_ok", n)] is True, n
        assert f[("device.settings", n)]["p2p_enabled"] is True, n


LabFactory = Callable[..., Lab]


def test_healthy(lab_factory: LabFactory) -> None:
    lab = lab_factory("healthy")
    wait_online(lab, DEVICES)
    check, f = heartbeat(lab)
    assert_healthy(f, DEVICES)
    for n in DEVICES:
        assert f[("device.platform_online", n)] is True, n
        assert 0 <= f[("device.platform_last_seen_s", n)] < 30, n
        # the router keeps UDP mappings longer than the heartbeat: the public address never moves
        assert f[("device.platform_address_changes", n)] == 0, n
        mac = next(d["mac"] for d in lab.status["devices"] if d["name"] == n)
        assert f[("device.arp_macs", n)] == [mac]
        assert f[("device.rtt_ms", n)] < 20
    assert f[("lan.unknown_hosts", "")] == []
    assert f[("lan.swept", "")] == ["198.18.0.0/24"]
    assert f[("lan.icmp", "")] == "raw"
    assert check["status"] == "ok", check["summary"]
    assert check["duration_s"] < 3.0


def test_device_no_power(lab_factory: LabFactory) -> None:
    lab = lab_factory("device-no-power")
    wait_online(lab, ("nvr", "ipc1", "ipc3"))
    check, f = heartbeat(lab)
    assert f[("device.reachable", "ipc2")] is False
    assert f[("device.arp_macs", "ipc2")] == []
    assert f[("device.icmp_loss_pct", "ipc2")] == 100.0
    assert f[("device.ports", "ipc2")] == {"http": False, "rtsp": False}
    assert ("device.auth", "ipc2") not in f  # nothing answered: not measured
    assert f[("device.platform_online", "ipc2")] is False
    assert_healthy(f, ("nvr", "ipc1", "ipc3"))
    assert check["status"] == "fail"


def test_device_password_changed(lab_factory: LabFactory) -> None:
    lab = lab_factory("device-password-changed")
    wait_online(lab, DEVICES)
    _check, f = heartbeat(lab)
    assert f[("device.auth", "nvr")] == "rejected"
    assert f[("device.reachable", "nvr")] is True
    assert ("device.settings", "nvr") not in f
    assert f[("device.platform_online", "nvr")] is True
    assert_healthy(f, ("ipc1", "ipc2", "ipc3"))
    # A second run is a second failed login, not five: the device does not lock us out.
    _check, f = heartbeat(lab)
    assert f[("device.auth", "nvr")] == "rejected"
    assert ("device.auth_locked", "nvr") not in f


def test_device_p2p_disabled(lab_factory: LabFactory) -> None:
    lab = lab_factory("device-p2p-disabled")
    wait_online(lab, ("nvr", "ipc1", "ipc2"))
    _check, f = heartbeat(lab)
    assert f[("device.reachable", "ipc3")] is True
    assert f[("device.auth", "ipc3")] == "ok"
    assert f[("device.settings", "ipc3")]["p2p_enabled"] is False
    assert f[("device.platform_online", "ipc3")] is False
    assert f[("device.gateway_ok", "ipc3")] is True
    assert_healthy(f, ("nvr", "ipc1", "ipc2"))


def test_device_net_config(lab_factory: LabFactory) -> None:
    lab = lab_factory("device-net-config")
    wait_online(lab, ("ipc1", "ipc2", "ipc3"))
    _check, f = heartbeat(lab)
    assert f[("device.reachable", "nvr")] is True
    assert f[("device.settings", "nvr")]["gateway"] != "198.18.0.1"
    assert f[("device.gateway_ok", "nvr")] is False
    assert f[("device.platform_online", "nvr")] is False
    assert_healthy(f, ("ipc1", "ipc2", "ipc3"))


def test_ip_conflict(lab_factory: LabFactory) -> None:
    lab = lab_factory("ip-conflict")
    wait_online(lab, ("nvr", "ipc1", "ipc2"))
    _check, f = heartbeat(lab)
    macs = f[("device.arp_macs", "ipc3")]
    own = next(d["mac"] for d in lab.status["devices"] if d["name"] == "ipc3")
    assert f[("device.ip_conflict", "ipc3")] is True
    assert len(macs) == 2 and own in macs
    for n in ("nvr", "ipc1", "ipc2"):
        assert f[("device.ip_conflict", n)] is False


def test_radio_link_interference(lab_factory: LabFactory) -> None:
    lab = lab_factory("radio-link-interference")
    wait_online(lab, ("nvr", "ipc1", "ipc2"))
    check, f = heartbeat(lab)
    # 25 % each way: ~44 % of echoes lost; 20 echoes never all pass or all fail in practice.
    assert 5.0 < f[("device.icmp_loss_pct", "ipc3")] < 95.0
    assert f[("device.reachable", "ipc3")] is True
    assert f[("device.arp_macs", "ipc3")]  # our own ARP got through at least once
    for n in ("nvr", "ipc1", "ipc2"):
        assert f[("device.icmp_loss_pct", n)] == 0.0, n
    assert check["status"] in ("warn", "fail")
