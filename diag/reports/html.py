"""The self-contained HTML report (placeholder until the report module lands)."""

from __future__ import annotations

from pathlib import Path

from diag.model import Run


def write(run: Run, path: str | Path, lang: str = "en") -> None:
    raise NotImplementedError("the HTML report is not built yet")
