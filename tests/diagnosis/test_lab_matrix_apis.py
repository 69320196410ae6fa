"""The device rows of the lab matrix on an ONVIF-only site and on an ISAPI-only site: the same
verdicts (every device's state and top cause), and the injected cause on top in both.

Every device scenario of the matrix with a cause (20 quick lab runs, ~2 min on 2 cores): the
ones whose evidence comes through the device's API (login, network settings, P2P switch, clock)
and the ones where it comes from ARP, ICMP, TCP or VLAN tags (no-power, ip-conflict, vlan,
address-changed, ip-access-broken), where the API must not change the verdict either. They run
the checks the device verdicts come from (the WAN and bandwidth checks add nothing about the
devices, only time and, on a loaded machine, a loss figure that differs from run to run).
In ``radio-link-interference`` the 25 % random loss each way makes the lossy device's state
(offline or degraded) differ between two runs of the same site whatever the API (measured: an
ISAPI-only site gave degraded, degraded, offline in three runs): there only the causes are
compared for that device.
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
    "device-no-power",
    "ip-conflict",
    "vlan-misconfig",
    "radio-link-interference",
    "device-address-changed",
    "ip-access-broken",
]
# Scenarios whose device state is random from run to run (see the module's docstring).
RANDOM_STATE = {"radio-link-interference"}


def verdicts(scenarios: str) -> tuple[dict[str, tuple[str, str | None]], dict[str, Any]]:
    lab = start_lab(scenarios)
    extra = ["vlan"] if scenarios.startswith("vlan-") else []
    try:
        run = lab.diag_run(only=ONLY + extra)
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
    if name in RANDOM_STATE:
        dev = str(sc.device)
        assert onvif[dev][1] == isapi[dev][1]
        onvif, isapi = ({k: v for k, v in x.items() if k != dev} for x in (onvif, isapi))
        onvif[dev] = isapi[dev] = ("", sc.cause)
    assert onvif == isapi
    assert onvif[str(sc.device)][1] == sc.cause
    # Each site was read through the API it has, not a fallback.
    for dev in onvif:
        if onvif_facts.get(("device.auth", dev)) in ("ok", "rejected"):
            assert onvif_facts[("device.api", dev)] == "onvif"
        if isapi_facts.get(("device.auth", dev)) in ("ok", "rejected"):
            assert isapi_facts[("device.api", dev)] == "isapi"
