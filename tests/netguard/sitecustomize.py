"""Installs the test suite's network guard in every Python child process of the tests."""

import os

if os.environ.get("DIAG_NETGUARD") == "1":
    import guard  # type: ignore[import-not-found]  # same folder, on PYTHONPATH

    guard.install()
