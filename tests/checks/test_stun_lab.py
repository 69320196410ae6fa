"""The stun check on the lab's real NATs (nftables in the router namespace, coturn RFC 5780)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab

PUBLIC = "203.0.113.2"  # the router's WAN address (docs/lab.md)
CARRIER_PUBLIC = "203.0.113.1"  # the operator's NAT address in the CGNAT scenarios


RUNS: dict[tuple[str, bool], dict[str, Any]] = {}


def stun(lab: Any, deep: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    run = lab.diag_run(only=["stun"], extra=["--deep"] if deep else [])
    RUNS[(lab.name, deep)] = run
    c = next(c for c in run["checks"] if c["id"] == "stun")
    return c, {f["key"]: f["value"] for f in c["facts"] if f["target"] == ""}


def site_causes(lab: Any, deep: bool = False) -> dict[str, float]:
    """Cause id -> confidence the diagnosis drew from this module's last run on ``lab``."""
    run = RUNS[(lab.name, deep)]
    return {c["id"]: c["confidence"] for c in run["site"]["causes"]}


@pytest.mark.parametrize(
    ("scenario", "mapping", "filtering", "name"),
    [
        ("healthy", "EIM", "APDF", "Port Restricted Cone"),
        ("nat-full-cone", "EIM", "EIF", "Full Cone"),
        ("nat-restricted", "EIM", "ADF", "Restricted Cone"),
        ("nat-port-restricted", "EIM", "APDF", "Port Restricted Cone"),
        ("nat-symmetric", "APDM", "APDF", "Symmetric"),
    ],
)
def test_nat_behaviour(
    lab_factory: Any, scenario: str, mapping: str, filtering: str, name: str
) -> None:
    c, f = stun(lab_factory(scenario))
    assert f["nat.udp_blocked"] is False
    assert f["nat.present"] is True
    assert (f["nat.mapping"], f["nat.filtering"], f["nat.rfc3489"]) == (mapping, filtering, name)
    assert f["nat.mapped_address"].startswith(PUBLIC + ":")
    assert f["nat.local_address"].startswith("198.18.0.100:")
    assert f["nat.cgnat"] is False and f["nat.double_nat"] is False
    assert f["nat.alg"] is False
    assert f["nat.hairpinning"] is False  # plain masquerade does not hairpin
    assert c["status"] == ("warn" if mapping != "EIM" else "ok"), c["summary"]
    assert c["metrics"]["classification_s"]["value"] < 1.5
    # End to end: the diagnosis names the NAT only when it stops direct P2P.
    causes = site_causes(lab_factory(scenario))
    if mapping == "APDM":
        assert causes.get("nat-unfriendly", 0) > 0.5
    else:
        assert causes.get("nat-unfriendly", 0) <= 0.5 and causes.get("cgnat", 0) <= 0.5


def test_healthy_gateway_services(lab_factory: Any) -> None:
    """miniupnpd on the router: UPnP IGD, NAT-PMP and PCP are seen, read-only."""
    lab = lab_factory("healthy")
    before = lab.ns_exec("router", "nft", "list", "table", "inet", "lab_upnp").stdout
    _, f = stun(lab)
    after = lab.ns_exec("router", "nft", "list", "table", "inet", "lab_upnp").stdout
    assert f["upnp.present"] is True
    assert isinstance(f["upnp.mappings"], list)
    assert f["natpmp.present"] is True
    assert f["pcp.present"] is True
    assert before == after  # no mapping was added


def test_no_nat(lab_factory: Any) -> None:
    c, f = stun(lab_factory("nat-none"))
    assert f["nat.present"] is False
    assert f["nat.mapped_address"] == f["nat.local_address"]
    assert f["nat.rfc3489"] == "Open Internet"
    assert (f["nat.mapping"], f["nat.filtering"]) == ("EIM", "EIF")
    assert f["nat.cgnat"] is False
    assert c["status"] == "ok"


def test_udp_blocked(lab_factory: Any) -> None:
    c, f = stun(lab_factory("nat-udp-blocked"))
    assert f["nat.udp_blocked"] is True
    assert f["nat.rfc3489"] == "UDP Blocked"
    assert "nat.mapping" not in f
    assert c["status"] == "fail"
    # Two staggered servers, 3 s each: the verdict comes in about 3.5 s, not pystun3's 8.
    assert c["duration_s"] < 5


@pytest.mark.parametrize("scenario", ["nat-cgnat", "cgnat"])
def test_cgnat(lab_factory: Any, scenario: str) -> None:
    c, f = stun(lab_factory(scenario))
    assert f["nat.present"] is True
    assert f["nat.mapped_address"].startswith(CARRIER_PUBLIC + ":")
    assert f["nat.cgnat"] is True
    assert f["nat.double_nat"] is True
    assert c["status"] == "warn"
    assert site_causes(lab_factory(scenario)).get("cgnat", 0) > 0.5


def test_mapping_lifetime_shorter_than_heartbeat(lab_factory: Any) -> None:
    lab = lab_factory("nat-mapping-expiry")
    c, f = stun(lab, deep=True)
    heartbeat = f["nat.heartbeat_interval_s"]
    assert heartbeat == 10
    lifetime = f["nat.mapping_lifetime_s"]
    # The router forgets UDP mappings after 4 s: the lower bound is at most that, and close.
    assert 2.0 <= lifetime <= 4.5
    upper = c["metrics"]["mapping_lifetime_upper_s"]["value"]
    assert lifetime < upper <= heartbeat
    assert c["status"] == "warn"
    assert site_causes(lab, deep=True).get("nat-mapping-expiry", 0) > 0.5


def test_mapping_lifetime_healthy_reaches_heartbeat(lab_factory: Any) -> None:
    c, f = stun(lab_factory("healthy"), deep=True)
    assert f["nat.mapping_lifetime_s"] >= f["nat.heartbeat_interval_s"]
    # Proven as soon as the heartbeat-long idle probe survives, not after the whole budget.
    assert c["metrics"]["lifetime_search_s"]["value"] < f["nat.heartbeat_interval_s"] + 3
    assert site_causes(lab_factory("healthy"), deep=True).get("nat-mapping-expiry", 0) <= 0.5


def test_without_deep_no_lifetime(lab_factory: Any) -> None:
    _, f = stun(lab_factory("nat-mapping-expiry"))
    assert "nat.mapping_lifetime_s" not in f
