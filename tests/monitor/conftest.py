"""Fixtures for the monitor tests (helpers live in conftest_helpers.py)."""

from conftest_helpers import pushgateway  # noqa: F401  (fixture)
