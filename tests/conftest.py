"""Test-suite wide fixtures: the network guard (SPEC section 7) and lab gating."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

GUARD_DIR = Path(__file__).parent / "netguard"
_LOG = Path(os.environ.get("TMPDIR", "/tmp")) / f"diag-netguard-{os.getpid()}.log"

# Before any test code runs: remember the host namespace, guard this process and its children.
try:
    os.environ.setdefault("DIAG_HOST_NETNS", os.readlink("/proc/self/ns/net"))
except OSError:
    pass
os.environ["DIAG_NETGUARD"] = "1"
os.environ["DIAG_NETGUARD_LOG"] = str(_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(GUARD_DIR), os.environ.get("PYTHONPATH", "")) if p
)
sys.path.insert(0, str(GUARD_DIR))
import guard  # noqa: E402

guard.install()

from labkit import *  # noqa: E402, F403  (lab fixtures: tests/labkit.py)


@pytest.fixture(autouse=True)
def _device_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test learns device MACs into a file of its own (diag.devices.learnt), never into the
    user's state dir; lab runs inherit it through the environment. Not in ``tmp_path``: a test
    that lists its own directory sees only what it wrote."""
    where = tmp_path_factory.mktemp("device-state") / "devices.json"
    monkeypatch.setenv("DIAG_DEVICE_STATE", str(where))


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    """``start(**cfg) -> Emulator``: lab device emulators on loopback (tests/device_emulator.py),
    as many as the test starts, all stopped when it ends."""
    from device_emulator import Emulator

    started: list[Emulator] = []

    def start(**cfg: Any) -> Emulator:
        e = Emulator(tmp_path, **cfg)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def is_root() -> bool:
    return os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Lab tests need root. As root (and in CI) they must run, never be skipped.
    if is_root():
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError("CI must run as root: lab tests may not be skipped")
    skip = pytest.mark.skip(reason="lab tests need root (network namespaces)")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _network_guard() -> object:
    """Fails the test if it (or a child) reached a non-loopback address from the host namespace."""
    start = _LOG.stat().st_size if _LOG.exists() else 0
    yield
    if _LOG.exists() and _LOG.stat().st_size > start:
        with _LOG.open(encoding="utf-8") as fh:
            fh.seek(start)
            text = fh.read()
        pytest.fail("network guard: traffic outside loopback from the host namespace:\n" + text)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _LOG.unlink(missing_ok=True)
