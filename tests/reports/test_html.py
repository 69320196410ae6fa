"""The HTML report: self-contained, escaped, complete in English and Polish, rendered from JSON."""

from __future__ import annotations

import argparse
import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from diag.i18n import msg
from diag.model import CheckResult, Fact, Run
from diag.reports import html
from diag.reports import json as rjson
from diag.reports.command import add_arguments
from diag.reports.command import main as report_main
from diag.reports.sample import sample_run

HOSTILE = "<script>alert(1)</script>"
# A URL a browser would fetch: http(s), protocol-relative, or any scheme but data: and fragments.
FETCHABLE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
CSS_FETCH = re.compile(r"url\(\s*[\"']?\s*(?!data:|#)|@import", re.IGNORECASE)


class _Refs(HTMLParser):
    """Every URL-bearing attribute of real elements, and the text of <style> blocks."""

    URL_ATTRS = frozenset(
        {"src", "href", "srcset", "poster", "action", "formaction", "data", "background"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self.tags: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in self.URL_ATTRS and value is not None:
                self.urls.append(value)
            if name == "style" and value:
                self.styles.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def external_refs(page: str) -> list[str]:
    p = _Refs()
    p.feed(page)
    bad = [u for u in p.urls if FETCHABLE.match(u) and not u.strip().lower().startswith("data:")]
    bad += [s[:80] for s in p.styles if CSS_FETCH.search(s)]
    return bad


def elements(page: str) -> list[str]:
    p = _Refs()
    p.feed(page)
    return p.tags


def hostile_run() -> Run:
    run = sample_run(8, hostile_name=HOSTILE)
    # Outside strings everywhere a check can put them: a summary, a banner-like fact, a DNS answer.
    evil = CheckResult(
        "dns",
        "fail",
        msg("resolver said {answer}", answer='"><img src=x onerror=alert(2)>'),
        facts=(
            Fact("dns.site.rcode", "NOERROR", target="evil.example<b>x</b>"),
            Fact(
                "dns.site.answer", ["<iframe src=//198.51.100.9/>"], target="evil.example<b>x</b>"
            ),
        ),
    )
    return dataclasses.replace(run, checks=(*run.checks, evil))


def test_report_is_self_contained_with_a_csp() -> None:
    page = html.render(sample_run(8), "en")
    assert page.startswith("<!doctype html>")
    assert "default-src 'none'; style-src 'unsafe-inline'; img-src data:" in page
    assert external_refs(page) == []
    tags = set(elements(page))
    assert not tags & {"script", "link", "iframe", "object", "embed", "base"}
    # charts are inline SVG data URIs
    assert page.count('src="data:image/svg+xml;base64,') == 3


def test_external_ref_finder_catches_what_it_must() -> None:
    # The guard above is only as good as its finder.
    for bad in (
        '<img src="https://x/y.png">',
        "<a href='//x'>",
        '<p style="background: url(http://x)">',
        "<style>@import 'a.css';</style>",
        "<style>p { background: url(x.png) }</style>",
    ):
        assert external_refs(bad), bad
    assert external_refs('<a href="#device-1"><img src="data:image/png;base64,AA"></a>') == []


def test_every_outside_string_is_escaped() -> None:
    page = html.render(hostile_run(), "en")
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<iframe" not in page and "<b>x</b>" not in page
    assert "&lt;iframe" in page
    assert external_refs(page) == []
    assert "iframe" not in elements(page) and "script" not in elements(page)


def test_grey_devices_come_first_with_their_top_cause() -> None:
    run = sample_run(8)
    page = html.render(run, "en")
    summary = page[page.index('id="summary"') : page.index('id="devices"')]
    grey = [v for v in run.devices if v.icon == "grey"]
    assert grey
    for v in grey:
        assert v.device in summary
    # the one-line why: the top cause's title sits in the summary
    assert "Device is in a different VLAN than the recorder or gateway" in summary
    assert summary.index("offline") < summary.index("degraded")


def test_device_cards_show_evidence_with_units_and_fixes() -> None:
    page = html.render(sample_run(8), "en")
    devices = page[page.index('id="devices"') : page.index('id="network"')]
    assert "12 %" in devices  # radio loss evidence with its unit
    assert "Mbit/s" in devices
    assert "Put the device&#39;s switch port in the same VLAN" in devices
    assert 'class="icon icon-nvr' in devices and 'class="icon icon-ipc' in devices


def test_network_section_names_the_blocking_hop_and_the_nat() -> None:
    page = html.render(sample_run(8), "en")
    net = page[page.index('id="network"') : page.index('id="checks"')]
    assert "198.51.100.10:32100/udp" in net and "at the site&#39;s router" in net
    assert "Port Restricted Cone" in net and "EIM" in net and "APDF" in net
    assert "198.51.100.53" in net  # the site resolver


def test_appendix_lists_every_check() -> None:
    run = sample_run(8)
    page = html.render(run, "en")
    appendix = page[page.index('id="checks"') :]
    for c in run.checks:
        assert f">{c.check_id}<" in appendix


def test_polish_report_is_polish() -> None:
    page = html.render(sample_run(8), "pl")
    assert '<html lang="pl">' in page
    for word in ("Podsumowanie", "Urządzenia", "Dowody", "Co zrobić", "Sieć", "Załącznik"):
        assert word in page, word
    for english in (">Evidence<", ">What to do<", ">Summary<", "Device has no power"):
        assert english not in page, english
    assert "Urządzenie jest w innym VLAN-ie" in page


def test_empty_run_renders() -> None:
    import datetime as dt

    run = Run("Empty", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 0.0, ())
    page = html.render(run, "en")
    assert "The site file lists no devices." in page
    assert "Every device is online" in page


def test_long_hostile_values_are_cut() -> None:
    value = "A" * 100_000
    assert len(html.fmt_value(value)) <= html.MAX_VALUE_CHARS


def test_report_from_saved_json_in_the_other_language(tmp_path: Path) -> None:
    run = sample_run(8, hostile_name=HOSTILE)
    saved = tmp_path / "run.json"
    rjson.write(run, saved, "en")
    out = tmp_path / "report.html"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    rc = report_main(parser.parse_args(["--from", str(saved), "--html", str(out), "--lang", "pl"]))
    assert rc == 0
    page = out.read_text(encoding="utf-8")
    assert "Udostępnienie tego urządzenia wygasło" in page  # causes re-rendered in Polish
    assert "&lt;script&gt;" in page and HOSTILE not in page


@pytest.mark.parametrize("content", ["not json", '{"schema_version": 1}', ""])
def test_report_command_rejects_a_bad_run(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    rc = report_main(parser.parse_args(["--from", str(bad), "--html", str(tmp_path / "x.html")]))
    assert rc == 2
    err = capsys.readouterr().err
    assert "not a diag run" in err or "cannot read a run" in err
    assert not (tmp_path / "x.html").exists()


def test_cli_report_subcommand(tmp_path: Path) -> None:
    from diag.cli import main

    saved = tmp_path / "run.json"
    rjson.write(sample_run(4), saved)
    out = tmp_path / "r.html"
    assert main(["report", "--from", str(saved), "--html", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_extra_sections_markup_is_kept_and_plain_strings_are_escaped() -> None:
    from markupsafe import Markup

    page = html.render(
        sample_run(2),
        "en",
        sections=[Markup('<section id="history"><h2>History</h2></section>'), "<b>raw</b>"],
    )
    assert '<section id="history"><h2>History</h2></section>' in page
    assert "&lt;b&gt;raw&lt;/b&gt;" in page and "<b>raw</b>" not in page
    assert page.index('id="history"') < page.index('id="checks"')


def test_element_ids_are_unique() -> None:
    ids = re.findall(r'\sid="([^"]+)"', html.render(sample_run(16), "en"))
    assert ids and len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_healthy_devices_are_compact_tiles_problem_devices_full_cards() -> None:
    import datetime as dt

    from diag.model import Cause, Verdict

    note = Cause(
        "share-not-possible",
        0.2,
        detail=msg("{device} was added by P2P without an account", device="cam-a"),
    )
    run = Run(
        "Tiles",
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        1.0,
        (),
        devices=(
            Verdict("cam-a", "ipc", "p2p", "online", "colour", (note,)),
            Verdict("cam-b", "ipc", "p2p-account", "offline", "grey", ()),
        ),
    )
    page = html.render(run, "en")
    devices = page[page.index('id="devices"') : page.index('id="network"')]
    assert devices.count('<article class="card') == 1
    assert devices.count('class="chip"') == 1
    assert "cam-a was added by P2P without an account" in devices
    # grey with no cause found: says so, never "no problem"
    card = devices[devices.index('<article class="card') : devices.index('class="chip"')]
    assert "No cause found from the site" in card and "No problem found" not in card


def test_missing_evidence_is_shown_for_measured_devices_without_hiding_their_cause() -> None:
    from diag.model import Cause, Verdict

    gap = msg(
        "not measured: the clock of {device} (its API did not give it), so a wrong device clock "
        "cannot be ruled out",
        device="cam-quiet",
    )
    slow = Cause("low-bandwidth", 0.8)
    run = dataclasses.replace(
        sample_run(2),
        devices=(
            Verdict("cam-quiet", "ipc", "p2p", "online", "colour", unmeasured=(gap,)),
            Verdict("cam-slow", "ipc", "p2p", "degraded", "colour", (slow,), unmeasured=(gap,)),
        ),
    )
    for lang, words in (("en", "not measured: the clock of"), ("pl", "niezmierzone: zegar")):
        page = html.render(run, lang)
        # The quiet online tile and the degraded card both say what was not measured...
        assert page.count(words) >= 2, lang
        # ...and the summary's "why" of the degraded device is still its cause.
        ctx = html.context(run, lang)
        (row,) = [d for d in ctx["attention"] if d["name"] == "cam-slow"]
        assert row["top"] is not None and row["unmeasured"]
        summary = page.split('class="attention"', 1)[1].split("</table>", 1)[0]
        assert row["top"]["title"] in summary and words not in summary
