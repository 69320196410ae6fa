"""IPv6 facts: which addresses are global (pure), and the check on loopback fakes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from netfakes_bpw import context, make_site

from diag.checks import ipv6


def test_global_ipv6_filters_local_and_reserved_ranges() -> None:
    got = ipv6.global_ipv6(
        [
            "fe80::1%eth0",  # link-local
            "::1",
            "fd12:3456::1",  # ULA
            "2001:db8::5",  # documentation
            "2a00:1450:4001:81b::200e",
            "2a00:1450:4001:81b::200e",
            "198.51.100.1",
            "not an address",
        ]
    )
    assert got == ["2a00:1450:4001:81b::200e"]


async def test_no_global_address_is_an_ipv4_only_fact(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ipv6, "_interface_ipv6", lambda: ["fe80::1%lo", "::1"])
    out = await ipv6.Ipv6Check().run(context(make_site(), "ipv6"))
    f = {x.key: x.value for x in out.facts}
    assert out.status == "ok"
    assert f["ipv6.global_address"] is False and f["ipv6.platform_reachable"] is None
    assert out.summary.render("en") == "no global IPv6 address: IPv4 only"
    assert out.summary.render("pl") == "brak globalnego adresu IPv6: tylko IPv4"


async def test_unreadable_interfaces_are_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ipv6, "_interface_ipv6", lambda: None)
    out = await ipv6.Ipv6Check().run(context(make_site(), "ipv6"))
    assert out.status == "error"
    assert {x.key: x.value for x in out.facts}["ipv6.global_address"] is None
