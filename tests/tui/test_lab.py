"""The dashboard on a real (lab) site: a device without power is found and explained on screen."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from labkit import Lab

pytestmark = pytest.mark.lab

DRIVER = Path(__file__).parent / "lab_drive.py"


def test_device_without_power_is_shown_grey_with_its_cause(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory("device-no-power")
    res = lab.exec(
        sys.executable,
        str(DRIVER),
        "--site",
        str(lab.site_path),
        "--select",
        "ipc2",
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    shown = json.loads(res.stdout.strip().splitlines()[-1])
    assert shown["finished"], shown["screen"]
    # The list: ipc2 hollow (grey), the others filled.
    lines = shown["screen"].splitlines()
    ipc2 = next(ln for ln in lines if " ipc2 " in ln[:40])
    nvr = next(ln for ln in lines if " nvr " in ln[:40])
    assert "○" in ipc2 and "offline" in ipc2, shown["screen"]
    assert "●" in nvr, shown["screen"]
    # The detail pane names the cause first, with its evidence and a fix.
    detail = shown["detail"]
    assert "ipc2" in detail
    why = detail.split("Why", 1)[1]
    assert why.lstrip().startswith("1. Device has no power or its cable is faulty"), detail
    assert "[device-no-power]" in why and "Evidence:" in why and "Fix:" in why
    assert shown["verdicts"]["ipc2"][2][0] == "device-no-power"
