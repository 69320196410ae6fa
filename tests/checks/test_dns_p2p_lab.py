"""dns and p2p checks in the site lab: healthy, dns-failure, p2p-server-unavailable, port blocking.

One lab per scenario for the whole module (``lab_factory``); each test runs ``diag run --only
dns,p2p`` inside the laptop namespace once per scenario (cached) and reads the facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from diag.reports.json import validate

pytestmark = pytest.mark.lab

PLATFORM = "198.51.100.10"
LIE = "198.51.100.66"
NAMES = ("p2p.lab-cloud.test", "relay.lab-cloud.test", "api.lab-cloud.test")
SERVERS = ("P2P login", "P2P relay", "Status API")
_runs: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module")
def run_in(lab_factory: Callable[..., Any]) -> Callable[[str], dict[str, Any]]:
    def get(scenario: str) -> dict[str, Any]:
        if scenario not in _runs:
            data = lab_factory(scenario).diag_run(only=["dns", "p2p"])
            assert validate({k: v for k, v in data.items() if k != "_exit_code"}) == []
            _runs[scenario] = data
        return _runs[scenario]

    return get


def facts(run: dict[str, Any], check: str) -> dict[tuple[str, str], Any]:
    c = next(c for c in run["checks"] if c["id"] == check)
    return {(f["key"], f["target"]): f["value"] for f in c["facts"]}


def status(run: dict[str, Any], check: str) -> str:
    return str(next(c for c in run["checks"] if c["id"] == check)["status"])


def dns_works(run: dict[str, Any]) -> bool:
    """Every name answered NOERROR at the site resolver, as the independent one says.

    Used where DNS is not the fault under test: on a loaded machine a correct answer may come
    late enough to make the check warn "slow", which is not what these scenarios are about.
    """
    d = facts(run, "dns")
    rcodes = [v for (k, _t), v in d.items() if k == "dns.site.rcode"]
    return (
        bool(rcodes)
        and set(rcodes) == {"NOERROR"}
        and not any(v for (k, _t), v in d.items() if k == "dns.mismatch")
    )


def test_healthy(run_in: Callable[[str], dict[str, Any]]) -> None:
    run = run_in("healthy")
    assert status(run, "dns") == "ok"
    assert status(run, "p2p") == "ok"
    d = facts(run, "dns")
    assert d[("dns.resolver.site", "")] == "198.51.100.53"
    assert d[("dns.resolver.independent", "")] == "198.51.100.54"
    for name in NAMES:
        assert d[("dns.site.rcode", name)] == "NOERROR"
        assert d[("dns.site.answer", name)] == [PLATFORM]
        assert d[("dns.mismatch", name)] is False
        assert d[("dns.site.slow", name)] is False
    p = facts(run, "p2p")
    for server in SERVERS:
        assert p[("p2p.reachable", server)] is True
        assert p[("p2p.resolved", server)] == [PLATFORM]
        assert 0 < p[("p2p.rtt_ms", server)] < 1000
    # The platform saw the router's WAN address (port-restricted NAT in healthy).
    assert p[("p2p.public_address", "P2P login")].startswith("203.0.113.2:")
    assert p[("p2p.tls_valid", "Status API")] is True


def test_dns_failure(run_in: Callable[[str], dict[str, Any]]) -> None:
    run = run_in("dns-failure")
    assert status(run, "dns") == "fail"
    d = facts(run, "dns")
    lied = [n for n in NAMES if d.get(("dns.mismatch", n)) is True]
    assert lied, d
    for name in lied:
        assert d[("dns.site.answer", name)] == [LIE]
        assert d[("dns.independent.answer", name)] == [PLATFORM]
    # Every name answers at the independent resolver; the site resolver fails or lies for all.
    for name in NAMES:
        assert d[("dns.independent.rcode", name)] == "NOERROR"
        assert d[("dns.site.rcode", name)] != "NOERROR" or d[("dns.mismatch", name)] is True
    # p2p follows the site resolver, as the devices do: to the lie, where nothing answers.
    p = facts(run, "p2p")
    assert status(run, "p2p") == "fail"
    assert p[("p2p.resolved", "P2P login")] in ([LIE], [])


def test_p2p_server_unavailable(run_in: Callable[[str], dict[str, Any]]) -> None:
    run = run_in("p2p-server-unavailable")
    assert dns_works(run), facts(run, "dns")
    assert status(run, "p2p") == "fail"
    p = facts(run, "p2p")
    for server in SERVERS:
        assert p[("p2p.reachable", server)] is False
        assert p[("p2p.resolved", server)] == [PLATFORM]
        assert p[("p2p.error", server)] in ("refused", "timeout", "unreachable")


def test_router_port_blocking(run_in: Callable[[str], dict[str, Any]]) -> None:
    run = run_in("router-port-blocking")
    assert dns_works(run), facts(run, "dns")
    assert status(run, "p2p") == "warn"
    p = facts(run, "p2p")
    # The blocked ports (UDP 32100, TCP 443) time out; the status API on 8443 still answers.
    assert p[("p2p.reachable", "P2P login")] is False
    assert p[("p2p.error", "P2P login")] == "timeout"
    assert p[("p2p.reachable", "P2P relay")] is False
    assert p[("p2p.error", "P2P relay")] == "timeout"
    assert p[("p2p.reachable", "Status API")] is True
