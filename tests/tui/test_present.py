"""The dashboard's words and the site header's cells, without a screen."""

from __future__ import annotations

from tui_fakes import site_facts

from diag.i18n import msg, render
from diag.model import CheckResult, Fact, Site
from diag.tui.present import fmt_fact, fmt_value, progress_bar, site_summary


def cells(
    site: Site, results: list[CheckResult], running: bool = False
) -> dict[str, tuple[str, str]]:
    return {i.label: (render(i.value), i.level) for i in site_summary(site, results, running)}


def result(check_id: str, facts: list[Fact], status: str = "ok") -> CheckResult:
    return CheckResult(check_id, status, msg("x"), facts=tuple(facts))  # type: ignore[arg-type]


def test_header_from_healthy_facts(site: Site) -> None:
    got = cells(site, [result("wan", site_facts())])
    assert got["NAT"] == ("Port Restricted Cone (EIM/APDF)", "ok")
    assert got["DNS"] == ("ok 1/1, 14 ms", "ok")
    assert got["WAN"] == ("203.0.113.7 0% 21 ms", "ok")
    # 5.2 Mbit/s up is below the 9.6 the streams need.
    assert got["Upload"] == ("5.2 Mbit/s, streams need 9.6; down 40", "bad")


def test_header_symmetric_cgnat_dns_lies_captive(site: Site) -> None:
    facts = [
        Fact("nat.rfc3489", "Symmetric"),
        Fact("nat.mapping", "APDM"),
        Fact("nat.filtering", "APDF"),
        Fact("nat.cgnat", True),
        Fact("dns.site.rcode", "NOERROR", target="a.test"),
        Fact("dns.mismatch", True, target="a.test"),
        Fact("wan.captive_portal", True),
    ]
    got = cells(site, [result("x", facts)])
    assert got["NAT"] == ("Symmetric (APDM/APDF) · CGNAT", "bad")
    assert got["DNS"] == ("wrong answers (1/1 resolved)", "bad")
    assert got["WAN"] == ("captive portal", "bad")


def test_header_slow_dns_and_lossy_wan_warn(site: Site) -> None:
    facts = [
        Fact("dns.site.rcode", "NOERROR", target="a.test"),
        Fact("dns.site.rcode", "SERVFAIL", target="b.test"),
        Fact("wan.loss_pct", 7.5, "%"),
        Fact("wan.rtt_ms", 20.0, "ms"),
        Fact("nat.udp_blocked", True),
    ]
    got = cells(site, [result("x", facts)])
    assert got["DNS"] == ("SERVFAIL (1/2 resolved)", "bad")
    assert got["WAN"] == ("7.5% 20 ms", "warn")
    assert got["NAT"] == ("UDP blocked", "bad")


def test_header_says_how_an_unmeasured_cell_ended(site: Site) -> None:
    running = cells(site, [], running=True)
    assert running["NAT"] == ("checking…", "unknown")
    done = cells(
        site,
        [
            result("stun", [], "error"),
            CheckResult("bandwidth", "skip", msg("needs {needs}", needs="profile.speedtest_url")),
        ],
        running=True,
    )
    assert done["NAT"] == ("check failed", "bad")
    assert done["Upload"] == ("skipped: needs profile.speedtest_url", "unknown")
    assert done["DNS"] == ("checking…", "unknown")
    assert cells(site, [])["DNS"] == ("not checked", "unknown")


def test_header_in_polish(site: Site) -> None:
    items = site_summary(site, [result("wan", [Fact("wan.internet_reachable", False)])])
    wan = next(i for i in items if i.label == "WAN")
    assert render(wan.value, "pl") == "brak internetu"


def test_values_keep_units_and_hostile_text_is_tamed() -> None:
    assert fmt_value(12.0, "ms") == "12 ms"
    assert fmt_value(0.25, "%") == "0.25%"
    assert fmt_value(None, "ms") == "—"
    # Structures read like the report's evidence: no JSON brackets, quotes or true/false.
    assert fmt_value({"b": 1, "a": [1, 2]}) == "a: 1, 2; b: 1"
    assert fmt_value({"http": True, "rtsp": False}, lang="pl") == "http: tak; rtsp: nie"
    assert fmt_value([], "ms") == "—" and fmt_value({}) == "—"
    assert fmt_value(["198.18.0.0/24"]) == "198.18.0.0/24"
    # A broken measurement is text, not a crash (int(nan) raised, float(10**400) overflows).
    assert fmt_value(float("nan"), "ms") == "nan ms"
    assert fmt_value(float("inf")) == "inf"
    assert fmt_value(10**400) == ">1e15"
    evil = "banner\x1b[2J\x07" + "x" * 200
    out = fmt_value(evil, limit=40)
    assert "\x1b" not in out and "\x07" not in out and len(out) == 40 and out.endswith("…")
    assert fmt_fact(Fact("device.reachable", False, target="cam"), "pl") == (
        "device.reachable [cam] = nie"
    )
    assert progress_bar(0.5, 4) == "██░░" and progress_bar(2.0, 4) == "████"


def test_text_from_outside_cannot_drive_the_terminal() -> None:
    from diag.tui.present import clean, t

    evil = "cam\x1b]0;pwned\x07\u202eevil"
    assert clean(evil) == "cam\\x1b]0;pwned\\x07\\u202eevil"
    assert clean("two\nlines") == "two\nlines"  # line breaks are layout, kept
    assert "\x1b" not in t(msg("banner {b}", b=evil), "en")
    line = fmt_fact(Fact("device.ports", {"http": True}, target=evil), "en")
    assert "\x1b" not in line and "\u202e" not in line
