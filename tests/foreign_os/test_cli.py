"""The CLI as on Windows and macOS: `diag checks`, `diag run` on the loopback example, the
monitor's lock."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from test_cli import loopback_site  # noqa: F401  (the fixture: the loopback example on fakes)

from diag import cli
from diag.checks.base import BUILTIN_CHECKS
from diag.net.linux import LinuxBackend
from foreign_os.conftest import ForeignOS, become_darwin, become_windows


def run_json(capsys: pytest.CaptureFixture[str], site: Path, out: Path) -> dict[str, Any]:
    cli.main(["run", "--site", str(site), "--json", str(out)])
    capsys.readouterr()
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def verdicts(data: dict[str, Any]) -> dict[str, Any]:
    """What a person acts on: each check's status, each device's state and the causes."""
    checks = {c["id"]: c["status"] for c in data["checks"]}
    # The host check reads the laptop itself: its facts are this machine's or the recording's.
    checks.pop("host", None)
    return {
        "checks": checks,
        "devices": {
            d["name"]: (d["state"], sorted(c["id"] for c in d["causes"])) for d in data["devices"]
        },
        "site_causes": sorted(c["id"] for c in data["site"]["causes"]),
    }


def test_checks_lists_every_declared_check(
    foreign_os: ForeignOS, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["checks", "--json"]) == 0
    listed = {c["id"] for c in json.loads(capsys.readouterr().out)["checks"]}
    assert listed == set(BUILTIN_CHECKS)


def test_run_gives_the_same_verdicts_as_on_linux(
    capsys: pytest.CaptureFixture[str],
    loopback_site: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An installer without admin rights on all three (raw sockets in the host namespace are
    # refused by the network guard anyway).
    monkeypatch.setattr(LinuxBackend, "is_privileged", lambda self: False)
    linux = verdicts(run_json(capsys, loopback_site, tmp_path / "linux.json"))
    assert set(linux["checks"]) == set(BUILTIN_CHECKS) - {"host"}
    for name in ("windows", "darwin"):
        with monkeypatch.context() as mp:
            if name == "windows":
                become_windows(mp)
            else:
                become_darwin(mp, tmp_path, False)
            got = verdicts(run_json(capsys, loopback_site, tmp_path / f"{name}.json"))
        # The path-MTU probe needs Linux's socket options: skipped (with the reason) elsewhere,
        # never a verdict; everything else, the device states and causes included, is equal.
        assert got["checks"].pop("mtu") == "skip", name
        assert got == {**linux, "checks": {k: v for k, v in linux["checks"].items() if k != "mtu"}}


def test_monitor_lock_without_fcntl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The lock module imports no fcntl (Windows has none) and excludes a second run."""
    become_windows(monkeypatch)
    import diag.monitor.lock as lock_mod

    lock = importlib.reload(lock_mod)
    assert "fcntl" not in lock.__dict__
    db = tmp_path / "history.sqlite"
    with lock.run_lock(db), pytest.raises(lock.LockBusy), lock.run_lock(db):
        pass
    with lock.run_lock(db, wait_s=0.1):
        pass
    assert sys.modules["fcntl"] is None
