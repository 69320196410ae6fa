"""Fixtures for the dashboard's tests: the loopback site and the fake checks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from diag.config import load_site
from diag.model import Site

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

SITE_FILE = HERE / "site.toml"


@pytest.fixture
def site() -> Site:
    return load_site(SITE_FILE)
