"""What is on the dashboard's screen, as plain text: what a person would read."""

from __future__ import annotations

from textual.app import App
from textual.widget import Widget


def screen_lines(app: App[object]) -> list[str]:
    """The screen's characters, line by line (no colour), from Textual's compositor."""
    from textual.strip import Strip

    update = app.screen._compositor.render_full_update(simplify=True)
    return [Strip.join(list(line)).text for line in update.strips]


def screen_text(app: App[object]) -> str:
    return "\n".join(line.rstrip() for line in screen_lines(app))


def region_text(app: App[object], widget: Widget) -> str:
    """The part of the screen a widget's content covers, wrapped lines joined with single spaces."""
    r = widget.content_region
    lines = screen_lines(app)[r.y : r.y + r.height]
    return " ".join(" ".join(line[r.x : r.x + r.width] for line in lines).split())
