"""Fixtures for the monitor tests (helpers live in conftest_helpers.py)."""

from conftest_helpers import pushgateway, site  # noqa: F401  (fixtures)
