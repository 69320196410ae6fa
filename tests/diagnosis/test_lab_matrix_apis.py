"""The device rows of the lab matrix on an ONVIF-only site and on an ISAPI-only site: the same
verdicts (every device's state and top cause), and the injected cause on top in both.

A subset of the device scenarios, the ones whose evidence comes through the device's API (login,
network settings, P2P switch, clock), keeps this to eight quick lab runs; they run the checks the
device verdicts come from (the WAN and bandwidth checks add nothing about the devices, only time
and, on a loaded machine, a loss figure that differs from run to run).
"""

from __future__ import annotations

from typing import Any

import pytest
from labkit import start_lab

from diag.lab.scenarios import BY_NAME

pytestmark = pytest.mark.lab

ONLY = ["heartbeat", "p2p", "dns", "host", "ports"]
SUBSET = [
    "device-password-changed",
    "device-net-config",
    "device-p2p-disabled",
    "device-clock-wrong",
]


def verdicts(scenarios: str) -> tuple[dict[str, tuple[str, str | None]], dict[str, Any]]:
    lab = start_lab(scenarios)
    try:
        run = lab.diag_run(only=ONLY)
    finally:
        lab.down()
    out = {
        d["name"]: (d["state"], d["causes"][0]["id"] if d["causes"] else None)
        for d in run["devices"]
    }
    facts = {
        (f["key"], f["target"]): f["value"]
        for c in run["checks"]
        if c["id"] == "heartbeat"
        for f in c["facts"]
    }
    return out, facts


@pytest.mark.parametrize("name", SUBSET)
def test_onvif_only_site_gives_the_isapi_sites_verdicts(name: str) -> None:
    sc = BY_NAME[name]
    onvif, onvif_facts = verdicts(f"{name},onvif-only")
    isapi, isapi_facts = verdicts(f"{name},isapi-only")
    assert onvif == isapi
    assert onvif[str(sc.device)][1] == sc.cause
    # Each site was read through the API it has, not a fallback.
    for dev in onvif:
        if onvif_facts.get(("device.auth", dev)) in ("ok", "rejected"):
            assert onvif_facts[("device.api", dev)] == "onvif"
        if isapi_facts.get(("device.auth", dev)) in ("ok", "rejected"):
            assert isapi_facts[("device.api", dev)] == "isapi"
