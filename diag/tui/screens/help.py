"""The help screen: every key, and what the icons, tags and marks mean."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from diag import vocab
from diag.i18n import N_
from diag.model import ADDED_VIA
from diag.tui.present import (
    GREY,
    GREY_MEANING,
    ICON_GLYPH,
    STATUS_GLYPH,
    STATUS_WORD,
    VIA_COLOUR,
    VIA_MEANING,
    VIA_TAG,
    t,
)
from diag.tui.screens.text_modal import TextModal

# Longer descriptions of the keys than the key bar has room for.
KEY_HELP: tuple[tuple[str, str], ...] = (
    ("r", N_("re-run all checks")),
    ("R, enter", N_("re-run the selected check (and the checks it needs)")),
    ("e", N_("export the run as HTML and JSON (the paths are shown)")),
    ("l", N_("switch language: English / polski")),
    ("g", N_("mark / unmark: the app shows the selected device grey")),
    ("w", N_("where the problem is: the path to the platform")),
    ("d", N_("deep re-run (a suspect link): the selected check, or all, with slow measurements")),
    ("c", N_("write the grey devices' fix steps as a checklist (the path is shown)")),
    ("p", N_("the customer's phone: a QR code for its page, then the phone check")),
    ("f", N_("devices found on the LAN, not in the site file")),
    ("tab", N_("move between devices, checks and details (arrows scroll)")),
    ("?", N_("this help")),
    ("q", N_("quit (stops the checks)")),
)


def help_text(lang: str) -> Text:
    out = Text()
    out.append(t(N_("Keys"), lang) + "\n", style="bold underline")
    for key, what in KEY_HELP:
        out.append(f"{key:>9}  ", style="bold")
        out.append(t(what, lang) + "\n")
    out.append("\n" + t(N_("Device icons"), lang) + "\n", style="bold underline")
    for via in ADDED_VIA:
        out.append(f"  {ICON_GLYPH['colour']} ", style=f"bold {VIA_COLOUR[via]}")
        out.append(f"{t(VIA_TAG[via], lang):<6} ", style=VIA_COLOUR[via])
        out.append(t(VIA_MEANING[via], lang) + "\n")
    out.append(f"  {ICON_GLYPH['grey']} ", style=f"bold {GREY}")
    out.append(t(GREY_MEANING, lang) + "\n")
    out.append(f"  {ICON_GLYPH['unknown']} ", style="dim")
    out.append(t(N_("not diagnosed yet"), lang) + "\n")
    out.append("  G ", style="bold reverse")
    out.append(" " + t(N_("you marked: the app shows it grey"), lang) + "\n")
    out.append("\n" + t(N_("Device states (the mark reads without colour)"), lang) + "\n",
               style="bold underline")  # fmt: skip
    for state in vocab.STATES:
        out.append(f"  {vocab.state_glyph(state)} ", style=f"bold {vocab.STATE_STYLE[state]}")
        out.append(t(vocab.state_word(state), lang) + "\n")
    out.append("\n" + t(N_("Check results"), lang) + "\n", style="bold underline")
    for status, glyph in STATUS_GLYPH.items():
        out.append(f"  {glyph} {t(STATUS_WORD[status], lang)}\n")
    out.append("\n" + t(N_("Press escape to close."), lang), style="dim")
    return out


class HelpScreen(TextModal):
    """Keys and legend, over the dashboard."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("question_mark", "dismiss", show=False)]
    BOX = "help"

    def body(self, lang: str) -> Text:
        return help_text(lang)
