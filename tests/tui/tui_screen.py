"""What is on the dashboard's screen, as plain text: what a person would read."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App
from textual.pilot import Pilot
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


async def wait_until(pilot: Pilot[int], cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Lets the app run until ``cond()`` holds; after ``timeout`` s fails showing the screen."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out; screen:\n" + screen_text(pilot.app))
        await pilot.pause(0.02)
