"""A modal screen of one scrollable text over the dashboard that follows the language switch.

The help (``?``) and the path picture (``w``) are such screens: escape or ``q`` closes them, ``l``
switches the language and the text is drawn again in it. A subclass names its box's id (styled
in ``app.tcss``), adds the key that opened it as one more way to close it, and draws ``body()``.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class TextModal(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", show=False),
        Binding("q", "dismiss", show=False),
        # A modal screen hides the app's keys; the language switch is kept, the text follows it.
        Binding("l", "app.switch_language", show=False),
    ]
    # The id of the scrolling box (its body is "<BOX>-body").
    BOX: ClassVar[str] = "text"

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def body(self, lang: str) -> Text:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with VerticalScroll(id=self.BOX):
            yield Static(self.body(self.lang), id=f"{self.BOX}-body")

    def on_mount(self) -> None:
        self.watch(self.app, "lang", self._relang, init=False)

    def _relang(self, lang: str) -> None:
        self.lang = lang
        self.query_one(f"#{self.BOX}-body", Static).update(self.body(lang))
