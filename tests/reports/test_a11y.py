"""The report's structure for assistive technology, on every saved scenario run, both languages:
a named element has a role that takes a name, headings never skip a level, images have text."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from saved_runs import load, names

from diag.i18n import LANGS
from diag.reports import html
from diag.reports.sample import sample_run

# Elements whose role takes a name from aria-label (a plain span or div has none: the Nu checker's
# "aria-label on a span" error).
NAMED = {"a", "button", "img", "svg", "input", "select", "textarea", "iframe", "table", "nav",
         "section", "article", "figure", "main", "header", "footer", "form"}  # fmt: skip


class Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.levels: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "aria-label" in a and tag not in NAMED and not a.get("role"):
            self.problems.append(f"aria-label on a plain <{tag} class={a.get('class')!r}>")
        if tag == "img" and not a.get("alt"):
            self.problems.append(f"<img> without alt: {a.get('src', '')[:40]}")
        if len(tag) == 2 and tag[0] == "h" and tag[1].isdigit():
            level = int(tag[1])
            if self.levels and level > self.levels[-1] + 1:
                self.problems.append(f"h{self.levels[-1]} -> h{level}")
            if not self.levels and level != 1:
                self.problems.append(f"first heading is h{level}")
            self.levels.append(level)


def outline(text: str) -> Outline:
    o = Outline()
    o.feed(text)
    return o


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", names())
def test_saved_scenario_report_has_a_sound_outline(name: str, lang: str) -> None:
    o = outline(html.render(load(name), lang))
    assert not o.problems, o.problems
    assert o.levels.count(1) == 1


def test_sample_report_has_a_sound_outline() -> None:
    o = outline(html.render(sample_run(12), "pl"))
    assert not o.problems and 3 in o.levels and 4 in o.levels


def test_the_outline_check_finds_the_old_errors() -> None:
    o = outline('<h1>x</h1><h2>a</h2><h4>b</h4><span class="icon" aria-label="camera"></span>')
    assert o.problems == ["h2 -> h4", "aria-label on a plain <span class='icon'>"]


def test_device_icon_is_an_image_with_a_name() -> None:
    text = html.render(sample_run(4), "en")
    assert 'role="img" class="icon icon-' in text
