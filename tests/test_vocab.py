"""One vocabulary: the report, the dashboard and the terminal paint and word things alike."""

from __future__ import annotations

import pytest

from diag import vocab
from diag.i18n import LANGS, render
from diag.model import ADDED_VIA, DEVICE_STATES
from diag.reports import html
from diag.reports.sample import sample_run
from diag.reports.terminal import summary_table
from diag.tui import present


def test_report_and_dashboard_paint_a_device_in_the_same_colour() -> None:
    run = sample_run(8)
    ctx = html.context(run, "en")
    by_name = {d.device: d for d in run.devices}
    for d in [*ctx["devices"], *ctx["quiet_devices"]]:
        v = by_name[d["name"]]
        want = present.GREY if v.icon == "grey" else present.VIA_COLOUR[v.added_via]
        assert d["colour"] == want
    assert [x["colour"] for x in ctx["legend"]] == [
        *(vocab.ICON_COLOURS[v] for v in vocab.ADDED_VIA_ORDER),
        vocab.ICON_GREY,
    ]


def test_every_state_has_a_word_a_style_and_a_rank_including_unknown() -> None:
    for s in (*DEVICE_STATES, "unknown"):
        assert s in vocab.STATE_WORD and s in vocab.STATE_STYLE and s in vocab.STATE_ORDER
    ranks = [vocab.state_rank(s) for s in ("offline", "unknown", "degraded", "online")]
    assert ranks == sorted(ranks)  # worst first
    assert vocab.state_rank("a-state-from-a-newer-version") == vocab.state_rank("unknown")


@pytest.mark.parametrize("lang", LANGS)
def test_added_via_tags_fit_the_column_and_are_words(lang: str) -> None:
    tags = [render(vocab.VIA_TAG[v], lang) for v in ADDED_VIA]
    assert all(len(t) <= 6 for t in tags), tags
    assert len(set(tags)) == len(tags)
    if lang == "pl":
        # "KONT" and "UDST" were no Polish words: the account tag is the word itself.
        assert "KONTO" in tags and not {"KONT", "UDST"} & set(tags)


def test_where_blocked_is_worded_alike_in_the_check_summary_and_the_report() -> None:
    from diag.checks import ports

    assert ports._WHERE is vocab.WHERE_BLOCKED
    run = sample_run(4)
    rows = html.context(run, "pl")["network"]["ports"]
    blocked = [r for r in rows if not r["open"]]
    assert blocked and all(
        r["where"] in {render(w, "pl") for w in vocab.WHERE_BLOCKED.values()} for r in blocked
    )


def test_terminal_table_uses_the_vocabulary_words() -> None:
    run = sample_run(4)
    text = summary_table(run, "pl")
    for v in run.devices:
        assert render(vocab.state_word(v.state), "pl") in text


def test_monitor_report_and_dashboard_word_states_icons_and_ports_alike() -> None:
    from diag.monitor import alerts

    # The monitor's status line and alerts word a state as every other view does.
    assert alerts.STATE_WORD is vocab.STATE_TAG
    run = sample_run(8)
    for lang in LANGS:
        ctx = html.context(run, lang)
        # "blocked" / "open" of a probed port: the vocabulary's words.
        rows = ctx["network"]["ports"]
        assert rows and all(r["state"] == render(vocab.port_word(r["open"]), lang) for r in rows)
        # The legend's grey is the dashboard help's grey.
        assert ctx["legend"][-1]["label"] == render(vocab.GREY_MEANING, lang)
        for d in ctx["devices"]:
            assert d["state_glyph"] == vocab.STATE_GLYPH[d["state"]]
        text = summary_table(run, lang)
        for v in run.devices:
            assert render(vocab.icon_word(v.icon), lang) in text


def test_every_state_has_a_mark_that_reads_without_colour() -> None:
    glyphs = [vocab.state_glyph(s) for s in vocab.STATES]
    assert len(set(glyphs)) == len(glyphs)
    assert vocab.state_glyph("unknown") == "?"
    assert vocab.state_glyph("a-state-from-a-newer-version") == "?"
