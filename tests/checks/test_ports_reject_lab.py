"""The ports walk on nft drop and reject at the site's router and at the operator, TCP and UDP.

One healthy lab; each case adds its own nft table to the router's or the operator's forward
chain (as ``bench/campaign.py`` injects them), runs the ports check and removes the table. A
forward filter on hop k lets time-exceeded from k through and meets the probe one TTL longer:
the walk must name hop k whatever the verdict (drop, ICMP port unreachable from k's address,
admin-prohibited, an RST forged with the platform's address) and while k's ICMP budget is
spent on the devices' heartbeats (Linux: 6 errors per destination, then 1/s). A platform whose
own input chain rejects is the platform, beyond the operator.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.lab

PLATFORM = "198.51.100.10"
LOGIN = "p2p.lab-cloud.test:32100/udp"
RELAY = "relay.lab-cloud.test:443/tcp"
BOTH = (("udp", 32100), ("tcp", 443))
ICMP_REFILL_S = 6.0


def _rules(role: str, verdict: str, ports: tuple[tuple[str, int], ...]) -> list[str]:
    # The operator's rule matches what comes up from the site, as the campaign's does.
    match = 'iifname "down0" ' if role == "isp" else ""
    return [f"{match}ip daddr {PLATFORM} {p} dport {n} {verdict}" for p, n in ports]


CASES = {
    "router drops": ("router", "forward", _rules("router", "drop", BOTH), "router"),
    "router rejects": ("router", "forward", _rules("router", "reject", BOTH), "router"),
    "router resets tcp": (
        "router",
        "forward",
        _rules("router", "reject with tcp reset", BOTH[1:]),
        "router",
    ),
    "operator drops": ("isp", "forward", _rules("isp", "drop", BOTH), "isp"),
    "operator rejects": ("isp", "forward", _rules("isp", "reject", BOTH), "isp"),
    "operator says prohibited": (
        "isp",
        "forward",
        _rules("isp", "reject with icmp type admin-prohibited", BOTH),
        "isp",
    ),
    "operator resets tcp": (
        "isp",
        "forward",
        _rules("isp", "reject with tcp reset", BOTH[1:]),
        "isp",
    ),
    "platform rejects in its input chain": (
        "platform",
        "input",
        [f"ip daddr {PLATFORM} {p} dport {n} reject" for p, n in BOTH],
        "beyond",
    ),
}


def _facts(run: dict[str, Any], key: str) -> dict[str, Any]:
    c = next(c for c in run["checks"] if c["id"] == "ports")
    return {f["target"]: f["value"] for f in c["facts"] if f["key"] == key}


@pytest.mark.parametrize("name", CASES)
def test_filter_placed_at_its_hop(lab_factory: Any, name: str) -> None:
    role, hook, rules, where = CASES[name]
    lab = lab_factory("healthy")
    table = (
        "table ip portstest {\n chain c {\n"
        f"  type filter hook {hook} priority -10; policy accept;\n"
        + "".join(f"  {r}\n" for r in rules)
        + " }\n}\n"
    )
    added = lab.ns_exec(role, "nft", "-f", "-", input=table)
    assert added.returncode == 0, added.stderr
    try:
        run = lab.diag_run(only=["ports"])
    finally:
        lab.ns_exec(role, "nft", "delete", "table", "ip", "portstest")
        # The next case starts with the hops' ICMP budgets full again (6 errors, 1/s), as a
        # run on a site would: only the devices' heartbeats spend them.
        time.sleep(ICMP_REFILL_S)
    blocked = {RELAY} if len(rules) == 1 else {LOGIN, RELAY}
    at = _facts(run, "port.blocked_at")
    assert {k: at.get(k) for k in blocked} == dict.fromkeys(blocked, where), _facts(
        run, "port.path"
    )
    hop = {"router": 1, "isp": 2, "beyond": 2}[where]
    assert {k: _facts(run, "port.blocked_hop").get(k) for k in blocked} == dict.fromkeys(
        blocked, hop
    )
