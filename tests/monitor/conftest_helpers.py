"""Helpers for the monitor tests: synthetic runs and a real Pushgateway on loopback."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diag.i18n import msg
from diag.model import Cause, CheckResult, DeviceState, Metric, Run, Verdict


def make_run(
    states: dict[str, DeviceState],
    at: dt.datetime,
    cause: str | None = "device-no-power",
    site: str = "Test site",
) -> Run:
    verdicts = tuple(
        Verdict(
            name,
            "ipc",
            "p2p-account",
            state,
            "grey" if state == "offline" else "colour",
            (Cause(cause, 0.9),) if cause and state != "online" else (),
        )
        for name, state in states.items()
    )
    checks = (
        CheckResult(
            "dns",
            "ok",
            msg("all names resolve"),
            {"site_time_ms": Metric(12.5, "ms"), "names": Metric(3, "")},
            duration_s=0.02,
        ),
        CheckResult(
            "bandwidth", "warn", msg("slow"), {"upload_mbps": Metric(1.5, "Mbit/s")}, duration_s=2.0
        ),
    )
    return Run(site, at, 1.25, checks, verdicts, (), "en", None, "test")


# The test plugin (a check registered through its own dist-info) and a site for it: the monitor
# tests run `diag monitor` in real processes without sending any traffic.
PLUGIN = Path(__file__).parent / "plugin"
PLUGIN_SITE = """
[site]
name = "Monitor test site"

[profile]
p2p_servers = []
stun_servers = []
dns_names = []

[[devices]]
name = "NVR"
kind = "nvr"
added_via = "p2p-account"
address = "127.0.0.10"

[[devices]]
name = "Gate camera"
kind = "ipc"
added_via = "p2p"
address = "127.0.0.21"
"""


def plugin_env(tmp: Path) -> dict[str, str]:
    """The environment of a monitor process that loads the test plugin (states in ``tmp``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN), env.get("PYTHONPATH", "")])
    env["DIAG_FAKE_STATES"] = str(tmp / "states.json")
    return env


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The plugin site's file in a fresh folder, all devices up."""
    p = tmp_path / "site.toml"
    p.write_text(PLUGIN_SITE)
    (tmp_path / "states.json").write_text("{}")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Pushgateway (Debian's prometheus-pushgateway) on a loopback port."""
    exe = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
    if not Path(exe).exists():
        pytest.fail("prometheus-pushgateway is not installed: run scripts/setup.sh")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [exe, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path_factory.mktemp("pgw"),
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/-/ready", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            pytest.fail("Pushgateway did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(5)
