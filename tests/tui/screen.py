"""What is on the dashboard's screen, as plain text: what a person would read."""

from __future__ import annotations

from textual.app import App


def screen_text(app: App[object]) -> str:
    """The screen's characters, line by line (no colour), from Textual's compositor."""
    from textual.strip import Strip

    update = app.screen._compositor.render_full_update(simplify=True)
    lines = [Strip.join(list(line)).text.rstrip() for line in update.strips]
    return "\n".join(lines)
