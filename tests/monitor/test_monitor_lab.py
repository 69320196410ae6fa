"""`diag monitor` on the lab with the real checks, as the cron job on a site box runs it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from labkit import Lab  # type: ignore[import-not-found]

from diag.monitor.store import Store

pytestmark = pytest.mark.lab
DIAG = str(Path(sys.executable).with_name("diag"))


def monitor(lab: Lab, db: Path, *args: str) -> tuple[int, str]:
    res = lab.exec(
        DIAG, "monitor", "--site", str(lab.site_path), "--db", str(db), *args, timeout=120
    )
    return res.returncode, res.stdout.strip()


def test_healthy_site_is_ok_with_metrics(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory("healthy")
    prom = tmp_path / "diag.prom"
    code, line = monitor(lab, tmp_path / "h.sqlite", "--prometheus", str(prom))
    assert code == 0, line
    assert line.startswith("DIAG OK - ") and "4/4 devices online" in line
    text = prom.read_text()
    assert 'diag_device_info{added_via="p2p-account",device="nvr",kind="nvr"' in text
    assert 'diag_device_up{device="nvr",site=' in text
    assert 'diag_check_status{check="stun"' in text
    # the speed test and the phone check (interactive: no phone posts to a cron run) stay out
    # of cron runs unless asked for
    assert 'check="bandwidth"' not in text and 'check="phone"' not in text
    assert "check_phone=" not in line and "phone skip" not in line


def test_powered_off_camera_is_critical_and_recorded(
    lab_factory: Callable[..., Lab], tmp_path: Path
) -> None:
    lab = lab_factory("device-no-power")
    db = tmp_path / "h.sqlite"
    code, line = monitor(lab, db)
    assert code == 2, line
    assert "ipc2 offline" in line and "no power" in line
    with Store(db) as s:
        assert s.last_states()["ipc2"] == "offline"
        (o,) = s.outages("ipc2")
        assert o.end is None and o.cause == "device-no-power"
