"""The path-MTU check on the lab: full-size packets pass on the healthy site; with the operator
dropping packets above 1400 bytes without ICMP (scenario mtu-blackhole) the DF probes find the
limit, the TCP transfer stalls, and the diagnosis is mtu-blackhole."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab


def mtu(run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    c = next(c for c in run["checks"] if c["id"] == "mtu")
    return c, {f["key"]: f["value"] for f in c["facts"]}


def test_healthy_path_carries_full_size_packets(lab_factory: Any) -> None:
    c, f = mtu(lab_factory("healthy").diag_run(only=["mtu"]))
    assert c["status"] == "ok", c["summary"]
    assert f["mtu.path_mtu"] == 1500 and f["mtu.blackhole"] is False
    assert f["mtu.tcp_stalled"] is False and f["mtu.tcp_acked_bytes"] >= 32768
    assert c["duration_s"] < 1.5


def test_blackhole_found_and_diagnosed(lab_factory: Any) -> None:
    run = lab_factory("mtu-blackhole").diag_run()
    c, f = mtu(run)
    assert c["status"] == "fail"
    assert 1390 <= f["mtu.path_mtu"] <= 1400 < f["mtu.smallest_lost"]
    assert f["mtu.icmp_error"] is False and f["mtu.tcp_stalled"] is True
    causes = run["site"]["causes"]
    assert causes[0]["id"] == "mtu-blackhole", [(x["id"], x["confidence"]) for x in causes]
    # The stalled speed test is explained by the black hole, not read as a slow link.
    assert all(x["confidence"] < 0.5 for x in causes[1:])
