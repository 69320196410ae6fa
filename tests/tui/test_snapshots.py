"""Layout pinned by snapshots on a frozen run, at 80x24 (a small laptop over SSH) and 160x48.

Update after an intended change with ``pytest tests/tui --snapshot-update`` and look at the
report before committing the new SVGs.
"""

from __future__ import annotations

from typing import Any

from tui_frozen import frozen_run, frozen_world

from diag.model import Site
from diag.tui.app import DiagApp


def frozen_app(site: Site, **kw: Any) -> DiagApp:
    return DiagApp(site, frozen=frozen_run(site), world=frozen_world(), autorun=False, **kw)


def test_80x24_offline_device_selected(site: Site, snap_compare: Any) -> None:
    assert snap_compare(frozen_app(site), press=["down", "down"], terminal_size=(80, 24))


def test_160x48_offline_device_selected(site: Site, snap_compare: Any) -> None:
    assert snap_compare(frozen_app(site), press=["down", "down"], terminal_size=(160, 48))


def test_80x24_checks_in_polish(site: Site, snap_compare: Any) -> None:
    app = frozen_app(site, lang="pl")
    assert snap_compare(app, press=["tab", "down", "down", "down"], terminal_size=(80, 24))


def test_80x24_help(site: Site, snap_compare: Any) -> None:
    assert snap_compare(frozen_app(site), press=["question_mark"], terminal_size=(80, 24))


def test_80x24_path(site: Site, snap_compare: Any) -> None:
    assert snap_compare(frozen_app(site), press=["w"], terminal_size=(80, 24))


def test_80x24_unknown_device_selected(site: Site, snap_compare: Any) -> None:
    # The "?" mark in the list and what was not measured in the details, in Polish.
    app = frozen_app(site, lang="pl")
    assert snap_compare(app, press=["down", "down", "down"], terminal_size=(80, 24))
