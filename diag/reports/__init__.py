"""Reports of a run: JSON (``json``), the HTML report (``html``), the terminal table (``terminal``).

``save()`` writes the files a command was asked for; the modules load lazily (the HTML report
pulls in Jinja and matplotlib, which a JSON-only run never needs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diag.model import Run


def save(
    run: Run,
    lang: str,
    json_path: str | None,
    html_path: str | None,
    say: Callable[[str], object],
) -> None:
    """Writes the run as JSON and/or the HTML report, saying each file written (in ``lang``)
    as it is done; an ``OSError`` is the caller's to report (what was written stays said)."""
    from diag.i18n import msg, render

    if json_path:
        from diag.reports import json as rjson

        rjson.write(run, json_path, lang)
        say(render(msg("JSON written to {path}", path=json_path), lang))
    if html_path:
        from diag.reports.html import write as write_html

        write_html(run, html_path, lang)
        say(render(msg("HTML written to {path}", path=html_path), lang))
