"""The bandwidth check on the lab: the healthy link (tbf 20 Mbit/s up, 50 down) and an upload
shaped to 1 Mbit/s below the streams' need."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab


def bw(run: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    c = next(c for c in run["checks"] if c["id"] == "bandwidth")
    return c, {f["key"]: f["value"] for f in c["facts"]}


def test_healthy_link_measured(lab_factory: Any) -> None:
    lab = lab_factory("healthy")
    c, f = bw(lab.diag_run(only=["bandwidth"]))
    assert c["status"] == "ok", c["summary"]
    # Goodput of a tbf-shaped link: payload / wire ≈ 1448/1514 of the rate; ±10%.
    assert 0.85 * 50 <= f["bw.download_mbps"] <= 1.05 * 50
    assert 0.85 * 20 <= f["bw.upload_mbps"] <= 1.05 * 20
    assert f["bw.needed_upload_mbps"] == pytest.approx(
        (4096 + 2048 + 2048 + 1024 + 1024) * 1.25 / 1000
    )
    assert f["bw.idle_rtt_ms"] < 20
    assert f["bw.loaded_rtt_ms"] >= f["bw.idle_rtt_ms"]
    # 2 × (warm-up + 0.8 s) plus pings; bounded loosely: CI shares 2 cores with other labs.
    assert c["duration_s"] < 6.0


def test_low_bandwidth_upload_below_need(lab_factory: Any) -> None:
    lab = lab_factory("low-bandwidth")
    c, f = bw(lab.diag_run(only=["bandwidth"]))
    assert c["status"] == "fail"
    assert 0.85 <= f["bw.upload_mbps"] <= 1.05
    assert f["bw.upload_mbps"] < f["bw.needed_upload_mbps"]
    # A saturated 1 Mbit/s uplink with a 50 ms modem queue: latency grows under load.
    assert f["bw.bufferbloat_ms"] > 10
