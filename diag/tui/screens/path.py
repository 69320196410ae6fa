"""The path screen (key ``w``): where the problem is, from the platform down to each device."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from diag.model import Run
from diag.reports.path import path_model
from diag.tui.screens.text_modal import TextModal
from diag.tui.widgets.path_view import path_text


class PathScreen(TextModal):
    """The path picture of the run shown, over the dashboard; follows the language switch."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("w", "dismiss", show=False)]
    BOX = "path"

    def __init__(self, run: Run, lang: str) -> None:
        self.model = path_model(run)
        super().__init__(lang)

    def body(self, lang: str) -> Text:
        return path_text(self.model, lang)
