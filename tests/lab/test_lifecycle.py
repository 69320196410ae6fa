"""The lab's life cycle through the CLI: up/status/exec/down, several labs, cycles, crashes, root.

These tests run `diag lab down --all`; to leave alone labs that other test runs have up on the same
machine, they use their own namespace prefix and state root (DIAG_LAB_NS_PREFIX,
DIAG_LAB_STATE_ROOT). The code paths are the same as with the defaults.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from diag.config import load_site

pytestmark = pytest.mark.lab

PREFIX = f"dlt{os.getpid() % 10000}-"
ROOT = Path(f"/run/diag-lab-test-{os.getpid()}")
ENV = {**os.environ, "DIAG_LAB_NS_PREFIX": PREFIX, "DIAG_LAB_STATE_ROOT": str(ROOT)}
SPEC_ROLES = {
    "laptop", "switch", "router", "isp", "platform", "stun", "dns-isp", "dns-public", "speedtest",
    "portal",
}  # fmt: skip
ALLOWED = [
    ipaddress.ip_network(n)
    for n in ("198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "100.64.0.0/10", "127.0.0.0/8")
]


def cli(*args: str, timeout: float = 60, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "diag.cli", "lab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
        check=False,
    )


def leftovers() -> dict[str, list[str]]:
    """Everything of ours still on the machine: namespaces, processes, veths, state, /etc/netns."""
    ns = (
        sorted(n for n in os.listdir("/run/netns") if n.startswith(PREFIX))
        if Path("/run/netns").exists()
        else []
    )
    procs = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(ROOT) in cmd and "pytest" not in cmd:
            procs.append(f"{pid}: {cmd[:120]}")
    host_links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False
    ).stdout
    veths = [
        ln for ln in host_links.splitlines() if re.search(r": (p-|h-|wan0|down0|inet0|lan0)", ln)
    ]
    etc = (
        [p.name for p in Path("/etc/netns").glob(f"{PREFIX}*")]
        if Path("/etc/netns").exists()
        else []
    )
    state = [p.name for p in ROOT.iterdir()] if ROOT.exists() else []
    out = {"namespaces": ns, "processes": procs, "veths": veths, "etc": etc, "state": state}
    return {k: v for k, v in out.items() if v}


@pytest.fixture(autouse=True, scope="module")
def _clean() -> Iterator[None]:
    yield
    cli("down", "--all")
    shutil.rmtree(ROOT, ignore_errors=True)


def test_list_speaks_the_persons_language() -> None:
    # The same choice as the rest of diag: DIAG_LANG, then the locale (LC_ALL, LC_MESSAGES, LANG).
    base = {k: v for k, v in ENV.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG", "DIAG_LANG")}
    lines = {}
    for name, extra in (
        ("en", {}),
        ("locale", {"LANG": "pl_PL.UTF-8"}),
        ("diag", {"DIAG_LANG": "pl"}),
    ):
        res = cli("list", env={**base, **extra})
        assert res.returncode == 0, res.stderr
        lines[name] = next(x for x in res.stdout.splitlines() if x.startswith("weak-uplink"))
    assert "overloaded LTE cell" in lines["en"]
    assert lines["locale"] == lines["diag"] != lines["en"]


def test_list_json_needs_no_root() -> None:
    res = cli("list", "--json")
    assert res.returncode == 0
    rows = json.loads(res.stdout)
    assert {"name", "cause", "description"} <= set(rows[0])
    assert rows[0]["name"] == "healthy" and rows[0]["cause"] is None
    assert {r["cause"] for r in rows if r["name"] == "cgnat"} == {"cgnat"}


def test_up_status_exec_down() -> None:
    t0 = time.monotonic()
    res = cli("up", "--scenario", "healthy")
    up_s = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    name = res.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{4}", name)
    assert up_s < 15  # the budget is 5 s (bench/lab_timing.py); this only catches a hang

    st = json.loads(cli("status", "--json").stdout)  # only one lab: --lab is optional
    assert st["name"] == name and st["status"] == "up"
    roles = {n["role"]: n for n in st["namespaces"]}
    assert SPEC_ROLES | {"nvr", "ipc1", "ipc2", "ipc3"} <= set(roles)
    assert all(n["exists"] and n["name"].startswith(PREFIX) for n in st["namespaces"])
    assert roles["router"]["interfaces"] and all(p["alive"] for p in st["processes"])
    assert {i["name"]: i["addresses"] for i in roles["laptop"]["interfaces"]} == {
        "eth0": ["198.18.0.100/24"]
    }
    site = load_site(st["site_config"])
    assert len(site.devices) == 4 and site.network.gateway == "198.18.0.1"

    # exec runs in the laptop namespace: no link to the host, the venv's diag on PATH.
    res = cli("exec", "--", "ip", "-j", "-4", "addr")
    addrs = {a["ifname"]: [i["local"] for i in a["addr_info"]] for a in json.loads(res.stdout)}
    assert addrs == {"lo": ["127.0.0.1"], "eth0": ["198.18.0.100"]}
    assert "default via 198.18.0.1" in cli("exec", "--", "ip", "route").stdout
    res = cli("exec", "--lab", name, "--", "diag", "checks", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["checks"]

    # Every address anywhere in the lab is in the plan.
    for ns in st["namespaces"]:
        for iface in ns["interfaces"]:
            for a in iface["addresses"]:
                ip = ipaddress.ip_interface(a).ip
                assert any(ip in n for n in ALLOWED), (ns["role"], a)

    # ... and in every generated file (configs, rules, scripts, the site config).
    state_dir = Path(st["state_dir"])
    for f in state_dir.rglob("*"):
        if f.suffix in (".toml", ".nft", ".conf", ".json", ".sh") and f.is_file():
            for m in re.finditer(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])", f.read_text()):
                ip = ipaddress.ip_address(m.group(1))
                ok = any(ip in n for n in ALLOWED) or ip in ipaddress.ip_network("0.0.0.0/8")
                assert ok or str(ip).startswith("255."), (f.name, str(ip))

    t0 = time.monotonic()
    assert cli("down").returncode == 0
    assert time.monotonic() - t0 < 10
    assert not leftovers()


def test_several_labs_at_once() -> None:
    a = cli("up", "--scenario", "healthy", "--devices", "1").stdout.strip()
    b = cli("up", "--scenario", "dns-failure", "--devices", "1").stdout.strip()
    assert a and b and a != b
    res = cli("status")
    assert res.returncode == 2 and "--lab" in res.stderr
    for lab, answer in ((a, "198.51.100.10"), (b, "198.51.100.66")):
        res = cli("exec", "--lab", lab, "--", "dig", "+short", "+time=1", "p2p.lab-cloud.test")
        assert res.stdout.strip() == answer
    assert cli("down", "--lab", a).returncode == 0
    assert json.loads(cli("status", "--json").stdout)["name"] == b
    assert cli("down", "--all").returncode == 0
    assert not leftovers()


def test_twenty_cycles_leave_nothing() -> None:
    for _ in range(20):
        res = cli("up", "--devices", "1")
        assert res.returncode == 0, res.stderr
        assert cli("down").returncode == 0
    assert not leftovers()


def test_kill_9_of_lab_processes_and_of_up_itself() -> None:
    # A lab whose daemons die by SIGKILL...
    name = cli("up").stdout.strip()
    st = json.loads(cli("status", "--json").stdout)
    victims = [p["pid"] for p in st["processes"] if p["name"] in ("coturn-a", "platform")]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    # ... and a `diag lab up` killed half-way through.
    proc = subprocess.Popen(
        [sys.executable, "-m", "diag.cli", "lab", "up", "--scenario", "vlan-misconfig"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        n.startswith(PREFIX) and name not in n for n in os.listdir("/run/netns")
    ):
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert leftovers()  # there is something to clean up
    res = cli("down", "--all")
    assert res.returncode == 0
    assert not leftovers()


def test_not_root_is_told_what_is_needed() -> None:
    res = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "diag.cli", "lab", "up"],
        capture_output=True, text=True, env=ENV, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 2
    assert "root" in res.stderr and "CAP_NET_ADMIN" in res.stderr


def test_bad_arguments_exit_2() -> None:
    res = cli("up", "--scenario", "nat-bogus")
    assert res.returncode == 2 and "nat-bogus" in res.stderr
    res = cli("up", "--scenario", "device-no-power", "--devices", "2")
    assert res.returncode == 2 and "ipc2" in res.stderr
    res = cli("status", "--lab", "zzzz")
    assert res.returncode == 2
    assert not leftovers()
