"""Fixtures for the dashboard's tests: the loopback site; helpers importable by name."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tui_fakes, tui_screen, tui_frozen: shared by the tests, the lab driver and bench/bench_tui.py.
sys.path.insert(0, str(Path(__file__).parent))

from tui_fakes import SITE_FILE

from diag.config import load_site
from diag.model import Site


@pytest.fixture
def site() -> Site:
    return load_site(SITE_FILE)
