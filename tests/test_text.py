"""The one sanitizer for text from outside (diag.text) in every output: terminal, HTML, JSON; and
names cut after escaping, by display width, so the columns line up."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag import text
from diag.i18n import msg
from diag.lab.emulators.hostile import HOSTILE_MODEL, HOSTILE_NAME
from diag.model import CheckResult, Fact, Run, Verdict
from diag.reports import json as rjson
from diag.reports.html import render
from diag.reports.terminal import summary_table

RAW = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
SITE_NAME = "Site\x1b]0;pwned\x07\x00"
NAMES = [HOSTILE_NAME, "カメラ玄関-入口-駐車場", "cam\u0301e\u0301", "plain", "x" * 40]


def hostile_run() -> Run:
    verdicts = tuple(Verdict(n, "ipc", "p2p", "online", "colour") for n in NAMES)
    facts = (Fact("device.info", {"name": HOSTILE_NAME, "model": HOSTILE_MODEL}, target=NAMES[0]),)
    check = CheckResult("heartbeat", "ok", msg("banner {b}", b=HOSTILE_NAME), facts=facts)
    return Run(SITE_NAME, dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 1.0, (check,), verdicts)


def test_printable_escapes_and_is_idempotent() -> None:
    s = text.printable(HOSTILE_NAME + "\u2028\ud800")
    assert "\\x9b" in s and "\\x85" in s and "\\u202e" in s and "\\u2028" in s and "\\ud800" in s
    assert RAW.search(s) is None and text.printable(s) == s


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.integers(2, 40))
def test_cut_and_pad_fit_the_columns(value: str, cols: int) -> None:
    cut = text.cut(value, cols)
    assert text.width(cut) <= cols and RAW.search(cut) is None
    assert text.width(text.pad(value, cols)) == cols


def test_wide_characters_count_twice() -> None:
    assert text.width("漢字") == 4 and text.width("e\u0301") == 1
    assert text.cut("漢字漢字", 5) == "漢字…"


def test_terminal_columns_line_up_whatever_the_names() -> None:
    table = summary_table(hostile_run())
    assert RAW.search(table) is None
    rows = [ln for ln in table.splitlines() if ln.rstrip().endswith("-")]
    assert len(rows) == len(NAMES)
    # The state word starts at the same display column on every row: cut after escaping, by width.
    starts = {text.width(ln[: ln.index(" online")]) for ln in rows}
    assert len(starts) == 1, rows
    assert "\\x9b" in table and "\\u202e" in table  # shown as what it is, not dropped


def test_html_has_no_raw_control_or_bidi_characters() -> None:
    page = render(hostile_run())
    assert RAW.search(page) is None
    assert "\\x9b" in page and "\\u202e" in page and "\\x1b" in page


def test_json_escapes_them_and_reads_back_the_same() -> None:
    dumped = rjson.dumps(hostile_run())
    assert RAW.search(dumped) is None
    assert "\\u009b" in dumped and "\\u202e" in dumped
    data = json.loads(dumped)
    assert data["devices"][0]["name"] == HOSTILE_NAME
    assert data["checks"][0]["facts"][0]["value"]["model"] == HOSTILE_MODEL
    assert rjson.validate(data) == []


@pytest.mark.parametrize("name", NAMES)
def test_json_escape_keeps_every_value(name: str) -> None:
    raw = json.dumps({"n": name}, ensure_ascii=False)
    assert json.loads(text.json_escape(raw)) == {"n": name}
