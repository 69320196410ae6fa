"""The wan check on the lab: healthy, link outage, used-up data plan (captive portal), a lossy
link, and a stale DDNS name."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab

PUBLIC = "203.0.113.2"


def wan(lab: Any, *extra: str) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    run = lab.diag_run(only=["wan"], extra=extra)
    c = next(c for c in run["checks"] if c["id"] == "wan")
    return c, {(f["key"], f["target"]): f["value"] for f in c["facts"]}


def test_healthy(lab_factory: Any) -> None:
    c, f = wan(lab_factory("healthy"))
    assert c["status"] == "ok", c["summary"]
    assert f[("wan.gateway_reachable", "")] is True
    assert f[("wan.internet_reachable", "")] is True
    assert f[("wan.loss_pct", "")] == 0
    assert f[("wan.captive_portal", "")] is False
    assert f[("wan.only_dns_passes", "")] is False
    assert f[("wan.public_ip", "")] == PUBLIC
    assert f[("ddns.matches_public", "ipc1")] is True
    assert c["duration_s"] < 3.0


def test_link_outage(lab_factory: Any) -> None:
    c, f = wan(lab_factory("link-outage"))
    assert c["status"] == "fail"
    assert f[("wan.gateway_reachable", "")] is True
    assert f[("wan.internet_reachable", "")] is False
    assert f[("wan.only_dns_passes", "")] is False
    assert ("wan.public_ip", "") not in f
    # Every probe runs at once with short timeouts: a dead link must not cost the whole budget.
    assert c["duration_s"] < 7.0


def test_data_plan_exhausted(lab_factory: Any) -> None:
    c, f = wan(lab_factory("data-plan-exhausted"))
    assert c["status"] == "fail"
    assert f[("wan.captive_portal", "")] is True
    assert f[("wan.http_redirect", "")].startswith("http://198.51.100.90/")
    assert f[("wan.only_dns_passes", "")] is True
    assert f[("wan.internet_reachable", "")] is False


def test_wan_loss(lab_factory: Any) -> None:
    # 5 % each way, ~10 % a round trip. A quick run's 20 probes lose none 12 % of the time, so
    # the deep series (100 probes: none lost 3e-5 of the time) is what is asserted. The lab's
    # kernel may lack netem, so only loss is asserted, not delay.
    lab = lab_factory("wan-loss-latency")
    losses = []
    for _ in range(3):
        c, f = wan(lab, "--deep")
        losses.append(f[("wan.loss_pct", "")])
        if f[("wan.loss_pct", "")] > 2.0:
            break
    assert max(losses) > 2.0, losses
    assert c["status"] == "warn"
    assert f[("wan.internet_reachable", "")] is True


def test_ip_access_broken(lab_factory: Any) -> None:
    c, f = wan(lab_factory("ip-access-broken"))
    assert c["status"] == "warn"
    assert f[("wan.public_ip", "")] == PUBLIC
    assert f[("ddns.resolved", "ipc1")] == ["203.0.113.99"]
    assert f[("ddns.matches_public", "ipc1")] is False
