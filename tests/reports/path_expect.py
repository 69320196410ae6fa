"""What the path picture must show for a lab scenario: the element the scenario breaks is marked
bad from a measurement and is among the places the picture names; nothing injected, nothing bad.
Shared by the saved-run tests (test_path.py) and the live lab matrix (test_lab_matrix.py)."""

from __future__ import annotations

from diag.lab.scenarios import BY_NAME
from diag.model import Run
from diag.reports.path import WAN, PathModel, device_id, link_id, path_model

# Where each site-wide fault is on the path, as the lab injects it (diag/lab/scenarios.py).
SITE_PLACE = {
    "router-port-blocking": "router",
    "isp-p2p-blocking": "operator",
    "link-outage": WAN,
    "low-bandwidth": WAN,
    "wan-loss-latency": WAN,
    "data-plan-exhausted": "operator",
    "p2p-server-unavailable": "platform",
    "dns-failure": "dns",
    "nat-unfriendly": "router",
    "nat-mapping-expiry": "router",
    "cgnat": "operator",
}
# The measured mark each fault must show there (not only the diagnosis's title).
MEASURED = {
    "router-port-blocking": "blocked-ports",
    "isp-p2p-blocking": "blocked-ports",
    "link-outage": "link-down",
    "low-bandwidth": "slow-uplink",
    "wan-loss-latency": "loss",
    "data-plan-exhausted": "captive-portal",
    "p2p-server-unavailable": "platform-down",
    "dns-failure": "lying-resolver",
    "nat-unfriendly": "nat",
    "nat-mapping-expiry": "mapping-expiry",
    "cgnat": "cgnat",
    "device-no-power": "silent",
    "vlan-misconfig": "silent",
    "ip-conflict": "ip-conflict",
    "device-net-config": "net-config",
    "device-p2p-disabled": "not-at-platform",
    "radio-link-interference": "loss",
}


def expected_place(scenario: str) -> str | None:
    """The element id the scenario breaks; None: nothing injected; "": a site fault this map
    does not place yet (a newer cause)."""
    sc = BY_NAME[scenario]
    if sc.cause is None:
        return None
    if sc.cause == "radio-link-interference":
        return link_id("switch", device_id(str(sc.device)))
    if sc.device:
        return device_id(sc.device)
    return SITE_PLACE.get(sc.cause, "")


def check_path(run: Run, scenarios: str) -> PathModel:
    """Asserts the picture of ``run`` for ``scenarios`` ("a" or "a+b")."""
    model = path_model(run)
    places = [expected_place(s) for s in scenarios.split("+")]
    if all(p is None for p in places):
        assert model.marked("bad") == [], "nothing injected, nothing may be marked bad"
        assert model.culprits() == []
    for name, place in zip(scenarios.split("+"), places, strict=True):
        if not place:
            continue
        element = model.element(place)
        assert element is not None, place
        assert element.level == "bad", (name, place, element)
        assert place in model.culprits(), (name, model.culprits())
        want = MEASURED.get(str(BY_NAME[name].cause))
        kinds = {m.kind for m in element.marks if m.source == "measured"}
        if want and len(places) == 1:
            assert want in kinds, (name, place, kinds)
    return model
