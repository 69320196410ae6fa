"""The path screen (key ``w``): where the problem is, from the platform down to each device."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from diag.model import Run
from diag.reports.path import path_model
from diag.tui.widgets.path_view import path_text


class PathScreen(ModalScreen[None]):
    """The path picture of the run shown, over the dashboard; follows the language switch."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", show=False),
        Binding("w", "dismiss", show=False),
        Binding("q", "dismiss", show=False),
        Binding("l", "app.switch_language", show=False),
    ]

    def __init__(self, run: Run, lang: str) -> None:
        super().__init__()
        self.model = path_model(run)
        self.lang = lang

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="path"):
            yield Static(path_text(self.model, self.lang), id="path-body")

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._relang, init=False)

    def _relang(self, lang: str) -> None:
        self.lang = lang
        self.query_one("#path-body", Static).update(path_text(self.model, lang))
