"""The ports check on the lab: healthy, the router or the operator blocking the platform."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab

LOGIN = "p2p.lab-cloud.test:32100/udp"
RELAY = "relay.lab-cloud.test:443/tcp"


def check(run: dict[str, Any], cid: str) -> dict[str, Any]:
    return next(c for c in run["checks"] if c["id"] == cid)


def facts(c: dict[str, Any], key: str) -> dict[str, Any]:
    return {f["target"]: f["value"] for f in c["facts"] if f["key"] == key}


def test_healthy_every_port_open(lab_factory: Any) -> None:
    lab = lab_factory("healthy")
    c = check(lab.diag_run(only=["ports"]), "ports")
    assert c["status"] == "ok", c["summary"]
    is_open = facts(c, "port.open")
    assert is_open[LOGIN] is True and is_open[RELAY] is True
    assert all(is_open.values()) and len(is_open) == 5
    assert not facts(c, "port.blocked_at")
    # Nothing blocked: no walk, so no scapy import and a quick check.
    assert c["duration_s"] < 2.0


@pytest.mark.parametrize(
    ("scenario", "where", "hop"),
    [("router-port-blocking", "router", 1), ("isp-p2p-blocking", "isp", 2)],
)
def test_blocked_ports_located(lab_factory: Any, scenario: str, where: str, hop: int) -> None:
    lab = lab_factory(scenario)
    c = check(lab.diag_run(only=["ports"]), "ports")
    assert c["status"] == "fail"
    assert facts(c, "port.open")[LOGIN] is False
    assert facts(c, "port.result")[LOGIN] == "timeout"
    at = facts(c, "port.blocked_at")
    assert at == {LOGIN: where, RELAY: where}
    assert facts(c, "port.blocked_hop") == {LOGIN: hop, RELAY: hop}
    # The hops the walk saw are the lab's router and operator.
    assert facts(c, "port.path")[LOGIN] == ["198.18.0.1", "203.0.113.1"][:hop]
    # The reference (a STUN server) passes the same path: others get through.
    ref = facts(c, "port.reference")[""]
    assert ref.endswith(":3478/udp")
    assert facts(c, "port.reference_passes")[ref] is True
    assert facts(c, "port.gateway_hop")[""] == 1
    # 1.5 s probe timeout + 1 s walk; loosely bounded for a loaded CI box.
    assert c["duration_s"] < 7.0
