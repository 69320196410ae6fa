"""The device list: each device with the icon the app would show, how it was added, its state.

The icon is coloured by ``added_via`` like the app's, grey when the app has no connection; on a
monochrome terminal the filled / hollow glyph and the tag (IP, P2P, ACCT, SHARED) carry the same
meaning. The state comes with its mark from the vocabulary (``?`` for a device whose state could
not be measured, ``✗`` offline), so it does not rest on its colour either. A device the installer
marked "the app shows this grey" carries a ``G`` mark.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import DataTable

from diag.i18n import N_
from diag.model import Device, Verdict
from diag.reports.terminal import printable
from diag.tui.present import (
    GREY,
    ICON_GLYPH,
    STATE_GLYPH,
    STATE_STYLE,
    STATE_TAG,
    VIA_COLOUR,
    VIA_TAG,
    t,
)

COLUMNS = ("icon", "name", "via", "state")


class DeviceList(DataTable[Text]):
    """The site's devices with their predicted app icon and state."""

    lang: reactive[str] = reactive("en")

    def __init__(self, devices: tuple[Device, ...], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_header=False)
        self.devices = devices
        self.verdicts: dict[str, Verdict] = {}
        self.grey: dict[str, bool] = {}
        self.checking = False

    def on_mount(self) -> None:
        self._build()

    def watch_lang(self) -> None:
        if self.is_mounted:
            self._build()

    def on_resize(self) -> None:
        self._build()

    def _build(self) -> None:
        keep = self.cursor_row
        self.clear(columns=True)
        longest = max((len(d.name) for d in self.devices), default=8)
        # The tag column is as wide as the longest tag in this language (at most 6 cells).
        via_w = max(len(t(tag, self.lang)) for tag in VIA_TAG.values())
        # The state column: its mark, a space and the longest state word in this language.
        words = (*STATE_TAG.values(), N_("checking…"), N_("not checked"))
        state_w = 2 + max(len(t(w, self.lang)) for w in words)
        # The other columns take 10 cells plus the tags and the states with their padding, plus 1
        # for the scrollbar.
        room = self.size.width - 11 - via_w - state_w if self.size.width else 15
        # Icon and the installer's mark ("G": the app shows it grey) share the first column.
        self.add_column(" ", key="icon", width=2)
        # Longer names are cut to the room there is; the detail pane shows them whole.
        self.add_column(t(N_("Device"), self.lang), key="name", width=max(6, min(longest, room)))
        self.add_column(t(N_("Added"), self.lang), key="via", width=via_w)
        self.add_column(t(N_("State"), self.lang), key="state", width=state_w)
        for d in self.devices:
            self.add_row(*self._cells(d), key=d.name)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1))

    def _cells(self, d: Device) -> tuple[Text, Text, Text, Text]:
        v = self.verdicts.get(d.name)
        colour = VIA_COLOUR[d.added_via]
        if v is None:
            icon = Text(ICON_GLYPH["unknown"], style=colour)
            # Not diagnosed yet: no mark (the dotted icon says so), aligned with the marked rows.
            word = N_("checking…") if self.checking else N_("not checked")
            state = Text("  " + t(word, self.lang), style="dim")
        else:
            grey = v.icon == "grey"
            icon = Text(ICON_GLYPH[v.icon], style=f"bold {GREY if grey else colour}")
            state = Text(
                f"{STATE_GLYPH[v.state]} {t(STATE_TAG[v.state], self.lang)}",
                style=STATE_STYLE[v.state],
            )
        name = Text(
            printable(d.name), style="bold" if v is not None and v.state != "online" else ""
        )
        via = Text(t(VIA_TAG[d.added_via], self.lang), style=colour)
        if self.grey.get(d.name):
            icon.append("G", style="reverse")
        return icon, name, via, state

    @property
    def selected_device(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.devices[min(self.cursor_row, len(self.devices) - 1)].name

    def show(
        self, verdicts: Mapping[str, Verdict], grey: Mapping[str, bool], checking: bool
    ) -> None:
        """New verdicts: updates only the cells (the cursor and scroll stay where they are)."""
        self.verdicts, self.grey, self.checking = dict(verdicts), dict(grey), checking
        if not self.is_mounted:
            return
        for d in self.devices:
            for key, cell in zip(COLUMNS, self._cells(d), strict=True):
                # Each update invalidates the table's render cache: skip what has not changed,
                # a 64-device site would otherwise repaint 256 cells per finished check.
                if _same(self.get_cell(d.name, key), cell):
                    continue
                self.update_cell(d.name, key, cell)


def _same(a: object, b: Text) -> bool:
    return isinstance(a, Text) and a.plain == b.plain and a.style == b.style and a.spans == b.spans
