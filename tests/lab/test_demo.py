"""`diag demo` end to end: a lab up, a headless run with reports, the lab down (also on SIGTERM)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
C_LOCALE = {**os.environ, "LC_ALL": "C"}  # the tests read the English status lines


def _lab_gone(name: str) -> bool:
    return not any(n.startswith(f"diag-{name}-") for n in os.listdir("/run/netns"))


def test_headless_demo_writes_reports_and_takes_the_lab_down(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli", "demo", "--headless", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False, env=C_LOCALE,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    name = re.search(r"lab (\w+) up", res.stderr).group(1)  # type: ignore[union-attr]
    assert f"lab {name} down" in res.stderr
    assert _lab_gone(name) and not Path(f"/run/diag-lab/{name}").exists()
    run = json.loads((out / "run.json").read_text())
    assert {d["name"] for d in run["devices"]} == {"nvr", "ipc1", "ipc2", "ipc3"}
    assert all(d["state"] == "online" for d in run["devices"]), run["devices"]
    assert (out / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_demo_takes_the_lab_down_when_interrupted(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "diag.cli", "demo", "--headless", "--out", str(tmp_path)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=C_LOCALE,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "lab NAME up (...)" once the lab is up
    name = re.search(r"lab (\w+) up", line).group(1)  # type: ignore[union-attr]
    time.sleep(0.5)  # the run has started
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130
    assert f"lab {name} down" in rest
    assert _lab_gone(name)
