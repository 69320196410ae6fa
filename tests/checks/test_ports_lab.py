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


NO_ROOT_RUN = """
import asyncio, json, sys, time
from diag.checks.base import Context, World
from diag.checks.ports import PortsCheck
from diag.config import load_site
site = load_site(sys.argv[1] if len(sys.argv) > 1 else {site!r})
ctx = Context(site=site, check_id="ports", targets=(), deadline=time.monotonic() + 10,
              world=World(is_root=lambda: False))
out = asyncio.run(PortsCheck().run(ctx))
print(json.dumps([[f.key, f.target, f.value] for f in out.facts]))
"""


@pytest.mark.parametrize(
    ("scenario", "where"), [("router-port-blocking", "router"), ("isp-p2p-blocking", "isp")]
)
def test_blocked_ports_located_without_root(lab_factory: Any, scenario: str, where: str) -> None:
    """The same verdicts from the unprivileged walk (IP_TTL + IP_RECVERR sockets, no scapy)."""
    import json

    lab = lab_factory(scenario)
    out = json.loads(lab.python(NO_ROOT_RUN.format(site=str(lab.site_path))))
    got = {(k, t): v for k, t, v in out}
    assert got[("port.walk_method", "")] == "socket"
    assert got[("port.blocked_at", LOGIN)] == where
    assert got[("port.blocked_at", RELAY)] == where
