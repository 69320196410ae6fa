"""The report's history section: timeline cells, outage list, escaping, Polish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from conftest_helpers import make_run  # type: ignore[import-not-found]

from diag.monitor.store import Store
from diag.monitor.timeline import history_section

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(hours=6)


def _store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "h.sqlite")
    seq = ["online", "online", "offline", "online"] + ["online"] * 8
    for i, st in enumerate(seq):
        s.record(make_run({"<b>cam</b>": st, "nvr": "online"}, T0 + i * STEP))  # type: ignore[dict-item]
    return s


def test_section_shows_uptime_cells_and_outages(tmp_path: Path) -> None:
    s = _store(tmp_path)
    html = history_section(s.device_history(), T0.date(), (T0 + dt.timedelta(days=3)).date())
    assert "&lt;b&gt;cam&lt;/b&gt;" in html and "<b>cam</b>" not in html
    assert "91.67%" in html  # 11 of 12 samples up
    assert "100.00%" in html
    assert "2026-11-02: 75.0%" in html  # the day with the outage is drawn as its own cell
    assert "6 h 00 min" in html
    assert "Device has no power" in html


def test_section_in_polish(tmp_path: Path) -> None:
    s = _store(tmp_path)
    html = history_section(s.device_history(), T0.date(), T0.date(), lang="pl")
    assert "Historia" in html and "Dostępność" in html
