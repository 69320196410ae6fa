"""Helpers for the monitor tests: synthetic runs and a real Pushgateway on loopback."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from promkit import free_port  # type: ignore[import-not-found]

from diag.i18n import msg
from diag.model import Cause, CheckResult, DeviceState, Fact, Metric, Run, Verdict

# The site box's default interface: kernel counters (errors, drops), Mbit/s, bytes.
IFACE = {"up": True, "mtu": 1500, "speed_mbps": 100, "errors_in": 3, "errors_out": 0}
IFACE |= {"drops_in": 12, "drops_out": 1}


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
            {"names": Metric(3, ""), "site_failed": Metric(0, "")},
            (
                Fact("dns.site.time_ms", 12.5, "ms", "p2p.example.test"),
                Fact("dns.site.time_ms", 30.0, "ms", "relay.example.test"),
            ),
            duration_s=0.02,
        ),
        CheckResult(
            "bandwidth",
            "warn",
            msg("slow"),
            {"upload": Metric(1.5, "Mbit/s")},
            (Fact("bw.upload_mbps", 1.5, "Mbit/s"), Fact("bw.needed_upload_mbps", 4.0, "Mbit/s")),
            duration_s=2.0,
        ),
        CheckResult(
            "wan",
            "ok",
            msg("link fine"),
            {"loss": Metric(1.5, "%")},
            (
                Fact("wan.loss_pct", 1.5, "%"),
                Fact("wan.rtt_ms", 40.0, "ms"),
                Fact("wan.internet_reachable", True),
            ),
            duration_s=0.5,
        ),
        CheckResult(
            "stun",
            "ok",
            msg("NAT"),
            {"rtt_ms": Metric(20.0, "ms")},
            (Fact("nat.mapping", "EIM"), Fact("nat.filtering", "APDF"), Fact("nat.cgnat", False)),
            duration_s=0.5,
        ),
        CheckResult(
            "host",
            "ok",
            msg("host"),
            {},
            (
                Fact("host.default_interface", "eth0"),
                Fact("host.interface", IFACE, target="eth0"),
            ),
            duration_s=0.1,
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
