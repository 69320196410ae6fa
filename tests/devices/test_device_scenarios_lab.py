"""The two device-side scenarios of issue 12, diagnosed by a real quick ``diag run`` in the lab."""

from __future__ import annotations

from typing import Any

import pytest
from labkit import Lab, start_lab

pytestmark = pytest.mark.lab


def verdicts(lab: Lab) -> dict[str, dict[str, Any]]:
    run = lab.diag_run()
    return {d["name"]: d for d in run["devices"]}


def test_device_clock_wrong() -> None:
    lab = start_lab("device-clock-wrong")
    try:
        v = verdicts(lab)
    finally:
        lab.down()
    ipc2 = v["ipc2"]
    assert ipc2["causes"] and ipc2["causes"][0]["id"] == "device-clock-wrong", ipc2
    assert ipc2["causes"][0]["confidence"] >= 0.85 and ipc2["state"] == "offline"
    for name in ("nvr", "ipc1", "ipc3"):
        assert all(c["id"] != "device-clock-wrong" for c in v[name]["causes"]), v[name]


def test_device_address_changed() -> None:
    lab = start_lab("device-address-changed")
    try:
        v = verdicts(lab)
        moved = next(d for d in lab.status["devices"] if d["name"] == "ipc1")
    finally:
        lab.down()
    ipc1 = v["ipc1"]
    assert moved["lives_at"] != moved["address"]
    assert ipc1["causes"] and ipc1["causes"][0]["id"] == "device-address-changed", ipc1
    assert ipc1["state"] == "offline" and ipc1["icon"] == "grey"
    assert moved["lives_at"] in str(ipc1["causes"][0])
    assert all(c["id"] != "device-no-power" or c["confidence"] < 0.5 for c in ipc1["causes"])
