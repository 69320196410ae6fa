"""The site header: the site's name and run state, then NAT, DNS, WAN and upload from the facts.

Two lines at most on an 80-column terminal. Each value has a word for how good it is in colour
and a leading mark (``✓``, ``!``, ``✗``, ``?``) so it reads the same without colour.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from diag.i18n import Message
from diag.model import CheckResult, Site
from diag.reports.terminal import printable
from diag.tui.present import LEVEL_STYLE, Level, site_summary, t

LEVEL_MARK: dict[Level, str] = {"ok": "✓", "warn": "!", "bad": "✗", "unknown": "?"}


class SiteHeader(Static):
    """Site name, run state, and the site-wide measurements."""

    lang: reactive[str] = reactive("en")

    def __init__(self, site: Site, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.site = site
        self.status: Message | None = None
        self.results: tuple[CheckResult, ...] = ()
        self.running = False
        self._shown: tuple[str, tuple[object, ...]] | None = None

    def on_mount(self) -> None:
        self.redraw()

    def watch_lang(self) -> None:
        if self.is_mounted:
            self.redraw()

    def on_resize(self) -> None:
        self.redraw()

    def show(self, status: Message, results: Iterable[CheckResult], running: bool) -> None:
        self.status, self.results, self.running = status, tuple(results), running
        if self.is_mounted:
            self.redraw()

    def redraw(self) -> None:
        lang = self.lang
        title = Text("diag", style="bold reverse")
        title.append(f" {printable(self.site.name)}", style="bold")
        if self.status is not None:
            title.append(f" · {t(self.status, lang)}")
        # The first line never wraps: the facts below must keep their two lines at 80 columns.
        width = self.content_region.width
        if width and title.cell_len > width:
            title.truncate(width - 1)
            title.append("…")
        out = Text()
        out.append_text(title)
        out.append("\n")
        items = site_summary(self.site, self.results, self.running)
        for i, item in enumerate(items):
            if i:
                out.append(" │ ", style="dim")
            out.append(f"{t(item.label, lang)} ", style="bold")
            out.append(
                f"{LEVEL_MARK[item.level]} {t(item.value, lang)}", style=LEVEL_STYLE[item.level]
            )
        key = (out.plain, tuple(out.spans))
        if key != self._shown:  # redrawn on every finished check; most change nothing here
            self._shown = key
            self.update(out)
