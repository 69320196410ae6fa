"""The key bar at the bottom: the dashboard's keys in the current language.

Textual's own footer takes binding descriptions fixed at class definition; this one is re-rendered
when the installer switches language, and fits 80 columns in both.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from diag.i18n import N_
from diag.tui.present import t

# (key shown, what it does); the same list feeds the help screen.
KEYS: tuple[tuple[str, str], ...] = (
    ("r", N_("re-run")),
    ("R", N_("check")),
    ("e", N_("export")),
    ("l", N_("language")),
    ("g", N_("grey")),
    ("w", N_("path")),
    ("?", N_("help")),
    ("q", N_("quit")),
)


class KeyBar(Static):
    """One line of keys."""

    lang: reactive[str] = reactive("en")

    def on_mount(self) -> None:
        self.redraw()

    def watch_lang(self) -> None:
        if self.is_mounted:
            self.redraw()

    def redraw(self) -> None:
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, (key, what) in enumerate(KEYS):
            if i:
                out.append(" ")
            out.append(f" {key} ", style="bold reverse")
            # The language key names the language it switches to, in that language.
            label = (
                ("polski" if self.lang == "en" else "English") if key == "l" else t(what, self.lang)
            )
            out.append(f" {label}")
        self.update(out)
