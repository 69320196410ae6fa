"""The phone check: facts from a phone result (pure), and the check reading the inbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from phone.samples import ENDPOINTS, NOW_MS, STUN, raw

from diag.checks.base import Context
from diag.checks.phone import PhoneCheck, analyse, ice_facts
from diag.config import load_site
from diag.phone import inbox
from diag.phone.result import Ice, StunGathering, parse

SITE = load_site(Path(__file__).parents[2] / "examples" / "loopback-site.toml")
A, B = STUN


def result(**over: object):  # type: ignore[no-untyped-def]
    return parse(raw(**over), peer="127.0.0.50", received_at_ms=NOW_MS,
                 stun_servers=STUN, endpoint_urls=ENDPOINTS)  # fmt: skip


def facts(**over: object) -> dict[str, object]:
    out = analyse(result(**over), SITE, ["127.0.0.0/8"])
    return {f.key: f.value for f in out.facts if not f.target}


@pytest.mark.parametrize(
    ("ice", "udp_blocked", "mapping", "public"),
    [
        # One candidate for both servers together, each alone answered: endpoint-independent.
        (Ice((StunGathering(A, ("203.0.113.2:1",)), StunGathering(B, ("203.0.113.2:2",))),
             ("203.0.113.2:3",)), False, "independent", "203.0.113.2"),
        # Two candidates from one socket, one address: a new port per server (symmetric).
        (Ice((StunGathering(A, ("203.0.113.9:1",)), StunGathering(B, ("203.0.113.9:2",))),
             ("203.0.113.9:3", "203.0.113.9:4")), False, "dependent", "203.0.113.9"),
        # Only one server answered: UDP works, the mapping cannot be told.
        (Ice((StunGathering(A, ("203.0.113.2:1",)), StunGathering(B, ())), ("203.0.113.2:3",)),
         False, None, "203.0.113.2"),
        # Nothing from anyone: UDP blocked.
        (Ice((StunGathering(A, ()), StunGathering(B, ())), (), timed_out=True), True, None, None),
        # Two public addresses (Wi-Fi and mobile at once): not classified.
        (Ice((StunGathering(A, ("203.0.113.2:1",)), StunGathering(B, ("198.51.100.7:2",))),
             ("203.0.113.2:3", "198.51.100.7:4")), False, None, None),
        # Not measured at all: every fact unknown, never "not blocked".
        (None, None, None, None),
    ],
)  # fmt: skip
def test_ice_facts(ice: Ice | None, udp_blocked: bool | None, mapping: str | None,
                   public: str | None) -> None:  # fmt: skip
    got = ice_facts(ice)
    assert (got["udp_blocked"], got["nat_mapping"], got["public_ip"]) == (
        udp_blocked,
        mapping,
        public,
    )


def test_facts_from_a_healthy_phone() -> None:
    f = facts()
    assert f["phone.address"] == "127.0.0.50"
    assert f["phone.on_site_lan"] is True  # the loopback site's devices are in 127.0.0.0/8
    assert f["phone.battery_pct"] is None  # not measured (plain HTTP), never False or 0
    assert f["phone.save_data"] is False
    assert f["phone.udp_blocked"] is False and f["phone.nat_mapping"] == "independent"
    assert f["phone.platform_reachable"] is True
    assert f["phone.clock_offset_s"] == pytest.approx(0.25)
    assert "battery" in f["phone.not_measured"]  # type: ignore[operator]


def test_phone_elsewhere_is_not_on_the_site_lan() -> None:
    out = analyse(result(), SITE, ["127.0.0.0/8"])
    res = parse(raw(), peer="100.64.7.9", received_at_ms=NOW_MS, stun_servers=STUN,
                endpoint_urls=ENDPOINTS)  # fmt: skip
    out = analyse(res, SITE, ["127.0.0.0/8"])
    assert {f.key: f.value for f in out.facts}["phone.on_site_lan"] is False


def test_warn_on_blocked_udp_or_unreachable_platform() -> None:
    blocked = {"combined": [], "per_server": [{"server": A}, {"server": B}], "timed_out": True}
    assert analyse(result(ice=blocked), SITE).status == "warn"
    down = [{"url": ENDPOINTS[0], "outcome": "timeout", "ms": 5000}]
    assert analyse(result(endpoints=down), SITE).status == "warn"
    assert analyse(result(), SITE).status == "ok"


def ctx() -> Context:
    return Context(SITE, "phone", ("site",), deadline=1e12)


async def test_check_skips_without_a_phone_result() -> None:
    inbox.clear()
    out = await PhoneCheck().run(ctx())
    assert out.status == "skip" and out.facts == ()


async def test_check_reads_the_latest_result() -> None:
    inbox.put(result(), ("127.0.0.0/8",))
    try:
        out = await PhoneCheck().run(ctx())
    finally:
        inbox.clear()
    assert out.status == "ok"
    assert any(f.key == "phone.udp_blocked" and f.value is False for f in out.facts)
