"""Hostile values never crash the pipeline: diagnosis, JSON, HTML, terminal table, Prometheus.

Facts carry what devices, servers and resolvers said, and third-party checks may put any value in
them. Random ``CheckResult``s (fact keys from docs/facts.md with values of every wrong type, NaN,
infinities, ints too big for a float, control characters, lone surrogates, markup) go through the
whole chain a run takes: ``diagnose`` -> ``run_to_dict`` -> schema validation -> JSON round trip ->
``html.render`` -> ``summary_table`` -> Prometheus exposition. Nothing may raise.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from diag.config import parse_site
from diag.diagnosis import diagnose
from diag.i18n import Message, msg
from diag.model import STATUSES, CheckResult, Fact, Metric, Run, Site
from diag.monitor import exporters
from diag.reports import charts, html
from diag.reports import json as rjson
from diag.reports.terminal import summary_table
from diag.tui.present import fmt_fact, fmt_value
from diag.tui.present import t as render_msg

ROOT = Path(__file__).resolve().parents[1]
FACT_KEYS = sorted(
    set(re.findall(r"`([a-z0-9_]+(?:\.[a-z0-9_]+)+)`", (ROOT / "docs/facts.md").read_text()))
)

SITE: Site = parse_site(
    {
        "site": {"name": "Hostile", "profile": "loopback"},
        "devices": [
            {"name": "Cam $^$ [bold]1[/]", "kind": "ipc", "added_via": "p2p",
             "address": "198.18.0.10", "streams_kbps": [2048]},
            {"name": "NVR", "kind": "nvr", "added_via": "ip", "address": "198.18.0.11"},
            {"name": "Shared", "kind": "ipc", "added_via": "shared"},
        ],
    }
)  # fmt: skip
NAMES = [d.name for d in SITE.devices]

# Strings a hostile banner, LLDP name or DNS answer could carry.
NASTY_TEXT = [
    "\x1b[2J\x1b[H",
    "\r\x07\x08",
    "\u202eevil\u202c",
    "[bold red]x[/]",
    "[@click=app.quit]q[/]",
    "<script>alert(1)</script>",
    "$^$",
    "$\\x$",
    "\udcff\udcfe",
    "{0}{x}{",
    "a" * 5000,
    "",
    "\x00",
]
NASTY_NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, 10**400, -(10**30), 1e308, -0.0, 2**64]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.one_of(st.sampled_from(["vid", "macs", "up"]), st.text(max_size=5)),
                      inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
targets = st.one_of(
    st.sampled_from(["", *NAMES]), st.sampled_from(NASTY_TEXT), st.text(max_size=10)
)
facts = st.builds(
    Fact,
    key=st.one_of(st.sampled_from(FACT_KEYS), st.text(max_size=12)),
    value=json_values,
    unit=st.sampled_from(["", "ms", "%", "Mbit/s", "\x1b[31m"]),
    target=targets,
)
messages = st.builds(
    msg,
    st.sampled_from(
        ["{a}", "timed out: {a} {b}", "{a[0]}", "{a.real}", "no args", "{a:.2f}", "{a:>99999999}"]
    ),
    a=json_values,
    b=scalars,
)
results = st.builds(
    CheckResult,
    check_id=st.sampled_from(["wan", "dns", "p2p", "lan", "plugin.x-1"]),
    status=st.sampled_from(STATUSES),
    summary=messages,
    metrics=st.dictionaries(
        st.one_of(st.sampled_from(["rtt", "loss"]), st.text(max_size=8)),
        st.builds(Metric, json_values, st.sampled_from(["", "ms", "%", "bit/s", "weird"])),
        max_size=3,
    ),
    facts=st.lists(facts, max_size=8).map(tuple),
    duration_s=st.floats(min_value=0, max_value=1e6),
    targets=st.lists(targets, max_size=3).map(tuple),
)


def whole_pipeline(checks: tuple[CheckResult, ...], site: Site = SITE) -> dict[str, Any]:
    """Everything a run's results go through; returns the JSON document (already validated)."""
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
    verdicts, site_causes = diagnose(site, checks, now=now)
    run = Run(site.name, now, 1.5, checks, verdicts, site_causes)
    doc = rjson.run_to_dict(run)
    assert rjson.validate(doc) == []
    text = rjson.dumps(run)
    text.encode("utf-8")  # strict: a lone surrogate would raise here, as write() would
    again = rjson.run_from_dict(json.loads(text))
    for r in (run, again):
        page = html.render(r, "pl")
        assert "<script>alert(1)</script>" not in page
        table = summary_table(r, "en")
        assert "\x1b" not in table
        generate_latest(exporters.registry_for(r, runs_total=3))
        # The dashboard formats the same values (its detail pane: every fact and metric).
        for c in r.checks:
            render_msg(c.summary, "pl")
            for f in c.facts:
                if not isinstance(f.value, bytes):  # not JSON: only the writers must cope
                    fmt_fact(f, "pl")
            for m in c.metrics.values():
                if not isinstance(m.value, bytes):
                    fmt_value(m.value, m.unit, lang="en")
    # No summary grows without bound: a 1 MB banner is no 1 MB line.
    assert all(len(c["summary"]) < 5000 for c in doc["checks"])
    return doc


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(st.lists(results, min_size=1, max_size=4).map(tuple))
# Found by a 2000-example run (seed 1): "{a:.2f}" on an int too big for a float raised
# OverflowError out of render(), so the summary table, the JSON and the report were lost.
@example((CheckResult("wan", "ok", msg("{a:.2f}", a=10**309)),))
def test_random_results_never_crash_the_pipeline(checks: tuple[CheckResult, ...]) -> None:
    whole_pipeline(checks)


@pytest.mark.parametrize("value", NASTY_NUMBERS + NASTY_TEXT + [[1, "a"], {"a": math.nan}, b"\xff"])
def test_every_fact_key_with_a_hostile_value(value: Any) -> None:
    """Each documented key, for the site and for a device, with one hostile value."""
    checks = tuple(
        CheckResult(
            f"c{i}",
            "fail",
            msg("saw {v}", v=value),
            metrics={"m": Metric(value, "ms")},
            facts=(Fact(key, value, "ms", ""), Fact(key, value, "ms", NAMES[0])),
        )
        for i, key in enumerate(FACT_KEYS)
    )
    whole_pipeline(checks)


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, 10**5000], ids=["nan", "inf", "-inf", "huge"]
)
def test_message_with_a_non_finite_or_huge_argument_renders(value: Any) -> None:
    # Was: int(nan) / int(inf) raised inside render(), losing the table, the JSON and the report.
    text = msg("loss {v} %", v=value).render("pl")
    # "loss {v} %" has a Polish translation (the path picture's links): "straty nan %".
    assert text.startswith("straty ") and text.endswith(" %") and len(text) < 50


def test_message_arguments_are_bounded_and_wrong_types_do_not_raise() -> None:
    assert len(msg("banner: {b}", b="x" * 10_000_000).render()) < 1100
    # A template indexing an argument of another type shows the raw template, never raises.
    assert msg("{a[0]}", a=5).render() == "{a[0]}"
    assert Message("{a.b}", {"a": 1}).render() == "{a.b}"
    # A float spec on an int beyond a float's range (10**309 > 1.8e308) cannot convert it.
    assert msg("{a:.2f}", a=10**309).render("pl") == "{a:.2f}"
    # A saved run's template may ask for any width: a 1e9 pad would be a gigabyte-long summary.
    for template in ("{a:>999999999}", "{a:.100000f}", "{a:{w}}"):
        assert msg(template, a=1, w=10**9).render() == template
    assert msg("{a:>5} {a:.2f}", a=3).render() == "    3 3.00"  # small specs still apply


def test_json_of_bad_unicode_and_huge_numbers_is_valid_utf8_json() -> None:
    f = (
        Fact("p2p.error", "\udcffbanner", target="srv"),
        Fact("wan.rtt_ms", 10**400),
        Fact("lldp.neighbor", b"\xff\xfeswitch"),
        Fact("wan.loss_pct", math.nan),
    )
    r = CheckResult("wan", "warn", msg("{x}", x=math.inf), {"m": Metric([1, 2], "ms")}, f)
    doc = whole_pipeline((r,))
    values = {x["key"]: x["value"] for x in doc["checks"][0]["facts"]}
    assert values["p2p.error"] == "\\udcffbanner"
    assert values["wan.rtt_ms"] is None and values["wan.loss_pct"] is None
    assert values["lldp.neighbor"] == "\\xff\\xfeswitch"
    assert doc["checks"][0]["summary_msg"]["args"]["x"] is None
    assert doc["checks"][0]["metrics"]["m"]["value"] == "[1, 2]"


def test_prometheus_skips_values_that_are_not_finite_numbers() -> None:
    r = CheckResult(
        "thirdparty",
        "ok",
        msg("ok"),
        {"big": Metric(10**400, "ms"), "nan": Metric(math.nan), "s": Metric("3"),
         "good": Metric(20, "ms")},
    )  # fmt: skip
    run = Run("S", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1.0, (r,))
    text = generate_latest(exporters.registry_for(run)).decode()
    assert 'diag_check_thirdparty_good_seconds{site="S"} 0.02' in text
    assert "_big" not in text and "_nan" not in text and "_s{" not in text


@pytest.mark.parametrize("label", ["Cam $^$", "$\\x$", "a$b$c", "NVR $5 and $6"])
def test_chart_labels_with_dollar_signs_are_text_not_mathtext(label: str) -> None:
    # Was: matplotlib parsed "$...$" as mathtext and raised on "$^$": no report at all.
    import base64

    uri = charts.bar_chart([charts.Bar(label, 5.0)], "ms", label)
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    assert label.replace("&", "&amp;") in svg


@pytest.mark.parametrize("value", [math.nan, math.inf, 1e308, -5.0])
def test_chart_of_a_broken_value_draws(value: float) -> None:
    assert charts.bar_chart([charts.Bar("a", value), charts.Bar("b", 3.0)], "ms", "t", limit=value)


def test_html_report_shows_hostile_text_escaped_everywhere() -> None:
    bad = "<img src=x onerror=alert(1)>"
    checks = (
        CheckResult(
            "vlan",
            "warn",
            msg("neighbour {n}", n=bad),
            facts=(
                Fact("lldp.neighbor", {"system_name": bad, "port": bad}),
                Fact("p2p.reachable", False, target=bad),
                Fact("p2p.error", bad, target=bad),
                Fact("dns.site.rcode", "NOERROR", target=bad),
                Fact("dns.site.answer", [bad], target=bad),
                Fact("device.reachable", False, target=NAMES[0]),
            ),
        ),
    )
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    verdicts, causes = diagnose(SITE, checks, now=now)
    page = html.render(Run(SITE.name, now, 1.0, checks, verdicts, causes))
    assert bad not in page
    assert page.count("&lt;img src=x onerror=alert(1)&gt;") >= 4


@pytest.mark.parametrize("label", ["cam\x1b[2J", "a\x00b", "\x07bell", "x\udcff"])
def test_chart_svg_stays_well_formed_xml_with_control_characters(label: str) -> None:
    # Was: "\x1b" went into the SVG's <text>; XML forbids it, so the browser showed no chart.
    import base64
    import xml.etree.ElementTree as ET

    uri = charts.bar_chart([charts.Bar(label, 5.0)], "ms", label)
    ET.fromstring(base64.b64decode(uri.split(",", 1)[1]))


def test_reports_with_undecodable_text_are_written(tmp_path: Path) -> None:
    # Was: UnicodeEncodeError from write_text: the HTML report was not written at all.
    bad = "banner \udcff\udcfe"
    r = CheckResult("wan", "warn", msg("{b}", b=bad), facts=(Fact("lldp.neighbor", bad),))
    run = Run("S", dt.datetime(2026, 11, 25, tzinfo=dt.UTC), 1.0, (r,))
    html.write(run, tmp_path / "r.html")
    rjson.write(run, tmp_path / "r.json")
    assert "banner \\udcff\\udcfe" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert rjson.load(tmp_path / "r.json").checks[0].summary.render() == "banner \\udcff\\udcfe"
