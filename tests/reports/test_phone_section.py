"""The report's phone section: the phone's measurements, its causes, hostile text as text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from phone.samples import ENDPOINTS, NOW_MS, STUN, raw

from diag.checks.phone import analyse
from diag.config import load_site
from diag.diagnosis import diagnose
from diag.model import CheckResult, Run
from diag.phone.result import parse
from diag.reports import html

SITE = load_site(Path(__file__).parents[2] / "examples" / "loopback-site.toml")
HOSTILE_UA = "<script>alert(1)</script>"
BLOCKED = {"combined": [], "per_server": [{"server": s} for s in STUN], "timed_out": True}


def report(lang: str = "en", **over: object) -> str:
    res = parse(raw(ua=HOSTILE_UA, **over), peer="127.0.0.50", received_at_ms=NOW_MS,
                stun_servers=STUN, endpoint_urls=ENDPOINTS)  # fmt: skip
    out = analyse(res, SITE, ["127.0.0.0/8"])
    checks = (CheckResult("phone", out.status, out.summary, out.metrics, out.facts),)
    verdicts, causes = diagnose(SITE, checks)
    run = Run(SITE.name, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 1.0, checks, verdicts, causes)
    return html.render(run, lang)


def section(page: str) -> str:
    start = page.index('<section id="phone">')
    return page[start : page.index("</section>", start)]


def test_phone_section_shows_measurements_and_not_measured() -> None:
    s = section(report())
    assert "127.0.0.50" in s and "on the cameras&#39; network" in s
    assert "Battery" in s and "not measured" in s  # plain HTTP: no battery API
    assert "Data saver" in s and "203.0.113.2" in s and "endpoint-independent" in s


def test_phone_section_shows_the_phone_cause_and_what_to_do() -> None:
    s = section(report(ice=BLOCKED))
    assert "blocks UDP" in s and "What to do" in s and "allow outgoing UDP" in s


def test_hostile_user_agent_is_text() -> None:
    page = report()
    assert HOSTILE_UA not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section(page)


def test_phone_section_in_polish() -> None:
    s = section(report("pl", ice=BLOCKED))
    assert "Telefon" in s and "blokuje UDP" in s


def test_run_without_a_phone_says_so() -> None:
    run = Run(SITE.name, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 1.0, (), (), ())
    assert "was not measured in this run" in section(html.render(run, "en"))
