"""Phone-side causes from the phone's measurements, and the checklist for what was not measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from phone.samples import ENDPOINTS, NOW_MS, STUN, raw

from diag.checks.phone import analyse
from diag.config import load_site
from diag.diagnosis import diagnose
from diag.diagnosis.catalog import PHONE_CHECKLIST
from diag.i18n import msg
from diag.model import CheckResult, Device, Fact, Site
from diag.phone.result import parse

SITE = load_site(Path(__file__).parents[2] / "examples" / "loopback-site.toml")
A, B = STUN
HEALTHY_SITE = [
    CheckResult("p2p", "ok", msg("ok"), facts=(Fact("p2p.reachable", True, target="P2P login"),)),
    CheckResult("wan", "ok", msg("ok"), facts=(Fact("wan.internet_reachable", True),)),
    CheckResult(
        "heartbeat",
        "ok",
        msg("ok"),
        facts=tuple(
            f
            for d in SITE.devices
            for f in (
                Fact("device.reachable", True, target=d.name),
                Fact("device.platform_online", True, target=d.name),
            )
        ),
    ),
]


def phone(peer: str = "127.0.0.50", received: float = NOW_MS, **over: Any) -> CheckResult:
    res = parse(raw(**over), peer=peer, received_at_ms=received, stun_servers=STUN,
                endpoint_urls=ENDPOINTS)  # fmt: skip
    out = analyse(res, SITE, ["127.0.0.0/8"])
    return CheckResult("phone", out.status, out.summary, out.metrics, out.facts)


def diag(site: Site = SITE, **over: Any):  # type: ignore[no-untyped-def]
    verdicts, causes = diagnose(site, [*HEALTHY_SITE, phone(**over)])
    return {v.device: v for v in verdicts}, [c for c in causes if c.id == "phone-side"]


def grey(name: str) -> Site:
    devs = tuple(
        Device(**{**d.__dict__, "app_shows_grey": True}) if d.name == name else d
        for d in SITE.devices
    )
    return Site(**{**SITE.__dict__, "devices": devs})


def test_healthy_phone_gives_no_phone_cause() -> None:
    devs, causes = diag()
    assert not [c for c in causes if c.confidence >= 0.5]
    assert all(v.state == "online" for v in devs.values())


BLOCKED = {"combined": [], "per_server": [{"server": A}, {"server": B}], "timed_out": True}
SYMMETRIC = {
    "combined": ["198.51.100.40:1000", "198.51.100.40:1001"],
    "per_server": [{"server": A, "srflx": ["198.51.100.40:1002"]},
                   {"server": B, "srflx": ["198.51.100.40:1003"]}],
}  # fmt: skip
DOWN = [{"url": u, "outcome": "timeout", "ms": 5000} for u in ENDPOINTS]


@pytest.mark.parametrize(
    ("over", "words", "fix"),
    [
        ({"battery": {"level": 0.12, "charging": False}}, "battery is at 12 %", "Charge the phone"),
        ({"connection": {"save_data": True}}, "Data saver is on", "data saver off"),
        ({"ice": BLOCKED}, "blocks UDP", "allow outgoing UDP"),
        ({"ice": SYMMETRIC}, "symmetric NAT", "only relayed"),
        ({"endpoints": DOWN}, "does not reach the platform", "switch the phone"),
        ({"sent_at_ms": NOW_MS + 600_000}, "600 s ahead of", "automatic"),
        ({"connection": {"effective_type": "2g"}}, "as 2g", "very slow"),
    ],
)
def test_measured_phone_causes(over: dict[str, Any], words: str, fix: str) -> None:
    _, causes = diag(**over)
    assert causes and causes[0].confidence >= 0.5
    c = causes[0]
    assert c.detail is not None and words in c.detail.render("en")
    assert any(fix in s.render("en") for s in c.fix)
    assert c.evidence and all(e.key.startswith("phone.") for e in c.evidence)
    assert c.detail.render("pl") != c.detail.render("en")


@pytest.mark.parametrize(
    "over",
    [
        {"battery": {"level": 0.12, "charging": True}},  # low but charging: no saver
        {"battery": {"level": 0.5, "charging": False}},
        {"connection": {"save_data": None}},  # not measured is not "on"
        {"ice": None},  # not measured is not "blocked"
        {"sent_at_ms": NOW_MS + 30_000},  # 30 s off: within what logins allow
    ],
)
def test_near_misses_give_no_phone_cause(over: dict[str, Any]) -> None:
    _, causes = diag(**over)
    assert not [c for c in causes if c.confidence >= 0.5]


def test_grey_device_gets_the_phone_finding_as_its_cause() -> None:
    devs, _ = diag(grey("NVR loopback"), ice=BLOCKED)
    v = devs["NVR loopback"]
    assert v.icon == "grey" and v.causes[0].id == "phone-side"
    assert v.causes[0].confidence >= 0.5
    assert "blocks UDP" in v.causes[0].detail.render("en")  # type: ignore[union-attr]


def test_checklist_shows_only_what_was_not_measured() -> None:
    every = {i.step for i in PHONE_CHECKLIST}
    # No phone result: the whole checklist.
    verdicts, _ = diagnose(grey("NVR loopback"), HEALTHY_SITE)
    nvr = next(v for v in verdicts if v.device == "NVR loopback")
    assert {s.text for s in nvr.causes[0].fix} == every
    # A healthy phone that measured battery, data saver and reached the platform.
    devs, _ = diag(grey("NVR loopback"), battery={"level": 0.9, "charging": False})
    steps = {s.text for s in devs["NVR loopback"].causes[0].fix}
    assert devs["NVR loopback"].causes[0].confidence >= 0.5
    measured = {
        i.step for i in PHONE_CHECKLIST if i.id in ("battery", "airplane-mode", "data-saver")
    }
    assert steps == every - measured
    assert any("permissions" in s for s in steps)
