"""Polish that reads as Polish: CLDR numbers, dates, durations and plural forms, through Babel.

Every message the code and the templates use is rendered in both languages with counts 0, 1, 2,
5, 22 and fractional values: none may raise, leave a placeholder or a plural block behind, or
show an English decimal point in Polish; every plural block covers the language's CLDR
categories and picks the one Babel's rules choose.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from test_i18n import extract

from diag.i18n import (
    LANGS,
    Message,
    _plural_blocks,
    catalog,
    fields,
    format_datetime,
    format_duration,
    format_number,
    msg,
    plural_category,
    plural_tags,
    render,
)

COUNTS = (0, 1, 2, 5, 22)
FRACTIONS = (1.5, 0.25, 12345.5)
DEVICES = "{n, plural, one {# device} other {# devices}}"


def templates() -> list[str]:
    return sorted(t for t in extract() if fields(t))


def test_there_are_messages_with_arguments_to_render() -> None:
    assert len(templates()) > 100


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("value", [*COUNTS, *FRACTIONS])
def test_every_message_renders_with_counts_and_fractions(lang: str, value: float) -> None:
    bad = []
    for text in templates():
        args = {f: value for f in fields(text)}
        out = render(Message(text, args), lang)
        if "plural," in out or any("{" + f + "}" in out for f in fields(text)):
            bad.append(f"{text!r} -> {out!r}")
        if isinstance(value, float) and lang == "pl" and re.search(r"\d\.\d", out):
            # A decimal point between digits in Polish; a dotted address in the template itself
            # (no argument) is not a number.
            if not re.search(r"\d\.\d", catalog("pl").get(text, text)):
                bad.append(f"decimal point in Polish: {text!r} -> {out!r}")
    assert not bad, "\n".join(bad[:20])


def test_polish_plural_blocks_cover_every_cldr_category() -> None:
    pl = catalog("pl")
    need = plural_tags("pl")
    assert need == {"one", "few", "many", "other"}
    blocks = [(k, b) for k, v in pl.items() for b in _plural_blocks(v)]
    assert len(blocks) >= 10, "the Polish catalogue should use plural forms"
    missing = [f"{k!r}: {sorted(b[3])}" for k, b in blocks if not need <= set(b[3])]
    assert not missing, "\n".join(missing)
    english = [b for t in extract() for b in _plural_blocks(t)]
    assert all({"one", "other"} <= set(b[3]) for b in english)


@pytest.mark.parametrize(
    ("n", "want"),
    [
        (0, "sprawdzono 0 urządzeń"),
        (1, "sprawdzono 1 urządzenie"),
        (2, "sprawdzono 2 urządzenia"),
        (5, "sprawdzono 5 urządzeń"),
        (12, "sprawdzono 12 urządzeń"),
        (22, "sprawdzono 22 urządzenia"),
        (112, "sprawdzono 112 urządzeń"),
        (1.5, "sprawdzono 1,5 urządzenia"),
    ],
)
def test_polish_device_counts_follow_cldr(n: float, want: str) -> None:
    assert render(msg("{n} devices checked", n=n), "pl") == want


@pytest.mark.parametrize("value", [*COUNTS, 1.5, 2.0, 21.0])
def test_the_chosen_form_is_the_one_babel_picks(value: float) -> None:
    from babel import Locale

    expect = Locale.parse("pl").plural_form(int(value) if value == int(value) else value)
    assert plural_category(value, "pl") == expect
    forms = {"one": "A", "few": "B", "many": "C", "other": "D"}
    template = "{n, plural, " + " ".join(f"{k} {{{v}}}" for k, v in forms.items()) + "}"
    assert render(Message(template, {"n": value}), "pl") == forms[expect]


def test_english_plurals_and_exact_matches() -> None:
    assert [render(msg(DEVICES, n=n)) for n in (0, 1, 2, 1.5)] == [
        "0 devices",
        "1 device",
        "2 devices",
        "1.5 devices",
    ]
    exact = "{n, plural, =0 {no device} one {# device} other {# devices}}"
    assert render(msg(exact, n=0)) == "no device"
    assert render(msg(exact + " of {site}", n=1, site="Yard")) == "1 device of Yard"


def test_a_broken_plural_block_never_raises() -> None:
    for text in ("{n, plural, one {x", "{n, plural, one {x}}", "{n, plural,}", "{n, plural, one}"):
        out = render(Message(text, {"n": 1}), "pl")
        assert isinstance(out, str)
    assert render(msg(DEVICES, n="many")) == "many devices"  # a word where a count belongs
    assert render(Message(DEVICES, {}), "pl") == DEVICES  # a missing argument: the raw text


@pytest.mark.parametrize(
    ("value", "pl", "en"),
    [
        (1.5, "1,5", "1.5"),
        (0.25, "0,25", "0.25"),
        (1234.5, "1234,5", "1,234.5"),  # CLDR pl: no grouping below five digits
        (12345.678, "12\xa0345,68", "12,345.68"),
        (1234567.0, "1\xa0234\xa0567", "1,234,567"),
        (-0.001, "0", "0"),
        (float("nan"), "nan", "nan"),
    ],
)
def test_numbers_in_cldr_format(value: float, pl: str, en: str) -> None:
    assert format_number(value, "pl") == pl
    assert format_number(value, "en") == en
    assert render(msg("{x} ms", x=value), "pl") == f"{pl} ms"


def test_integers_are_not_grouped() -> None:
    # Counts, ports and years: "32 100" would read as two numbers.
    assert format_number(32100, "pl") == "32100"
    assert render(msg("port {p}", p=32100), "pl").endswith("32100")


def test_dates_and_durations() -> None:
    moment = dt.datetime(2026, 11, 25, 9, 30, 5, tzinfo=dt.UTC)
    assert format_datetime(moment, "pl") == "25 listopada 2026, 09:30:05 UTC"
    assert format_datetime(moment, "en") == "25 November 2026, 09:30:05 UTC"
    assert format_datetime(moment, "pl", short=True) == "25.11.2026, 09:30"
    assert format_datetime(moment, "en", short=True) == "2026-11-25 09:30"
    assert format_duration(3.5, "pl") == "3,5 s"
    assert format_duration(3.5, "en") == "3.5 s"
    assert format_duration(125, "pl") == "2 min 5 s"
    assert render(msg("at {when}", when=moment), "pl") == "at 25 listopada 2026, 09:30:05 UTC"
