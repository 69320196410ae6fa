"""Plain-tool probes (ping, dig, curl, python sockets) run inside a lab's namespaces."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from labkit import Lab

PROBES = Path(__file__).with_name("probes.py")
DNS_ISP, DNS_PUBLIC = "198.51.100.53", "198.51.100.54"
PLATFORM = "198.51.100.10"
ALLOWED = ("198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "100.64.0.0/10", "127.0.0.0/8")


def probe(lab: Lab, name: str, *args: str, role: str = "laptop", timeout: float = 60) -> Any:
    res = lab.ns_exec(role, sys.executable, str(PROBES), name, *args, timeout=timeout)
    assert res.returncode == 0, f"probe {name} failed: {res.stderr[-1500:]}"
    return json.loads(res.stdout)


def ping(lab: Lab, host: str, role: str = "laptop") -> bool:
    """Whether ``host`` answers a ping sent every 0.2 s for up to 2 s (ends at the first reply).

    Not a single ping: the first request waits for ARP, and on a loaded CI machine one lost
    datagram must not read as "unreachable" (``-c 1 -w 2``: one reply needed, 2 s at most).
    """
    res = lab.ns_exec(role, "ping", "-n", "-q", "-c", "1", "-w", "2", "-i", "0.2", "-W", "1", host)
    return res.returncode == 0


def ping_loss(lab: Lab, host: str, count: int = 100, role: str = "laptop") -> float:
    """Packet loss to ``host`` in %, from ``count`` pings 10 ms apart."""
    res = lab.ns_exec(
        role, "ping", "-n", "-q", "-c", str(count), "-i", "0.01", "-W", "1", host, timeout=60
    )
    m = re.search(r"([\d.]+)% packet loss", res.stdout)
    assert m, res.stdout + res.stderr
    return float(m.group(1))


def ping_rtt(lab: Lab, host: str, count: int = 10) -> float:
    """Average round-trip time to ``host`` in ms."""
    res = lab.ns_exec("laptop", "ping", "-n", "-q", "-c", str(count), "-i", "0.05", host)
    m = re.search(r"= [\d.]+/([\d.]+)/", res.stdout)
    assert m, res.stdout + res.stderr
    return float(m.group(1))


def dig(lab: Lab, name: str, server: str = DNS_ISP) -> tuple[str, list[str]]:
    """(status, A records) from ``dig @server name``; status TIMEOUT when nothing answered."""
    # Two tries: on a loaded CI machine one datagram to a just-started dnsmasq can go unanswered
    # within a second; a scenario's fault must show either way (a lying or dead resolver).
    res = lab.exec("dig", "+time=1", "+tries=2", f"@{server}", name, "A")
    m = re.search(r"status: (\w+)", res.stdout)
    if not m:
        return "TIMEOUT", []
    answers = re.findall(r"^\S+\s+\d+\s+IN\s+A\s+(\S+)$", res.stdout, re.M)
    return m.group(1), sorted(answers)


def curl(lab: Lab, url: str, *opts: str, role: str = "laptop") -> tuple[int, str]:
    """(HTTP status or 0 when no answer, body) of ``curl url``."""
    res = lab.ns_exec(
        role, "curl", "-s", "-m", "3", "-o", "-", "-w", "\n%{http_code}", *opts, url, timeout=30
    )
    body, _, code = res.stdout.rpartition("\n")
    return int(code or 0), body


def digest(lab: Lab, device: str, path: str = "/ISAPI/System/deviceInfo", pw: str | None = None):
    dev = next(d for d in lab.status["devices"] if d["name"] == device)
    if pw is None:
        pw = (lab.state_dir / "secrets" / f"{device}.pass").read_text().strip()
    return curl(lab, f"http://{dev['address']}{path}", "--digest", "-u", f"admin:{pw}")


def device_addr(lab: Lab, device: str) -> str:
    return str(next(d["address"] for d in lab.status["devices"] if d["name"] == device))


def platform_devices(lab: Lab) -> dict[str, dict[str, Any]]:
    """serial -> the platform's status of that device (its HTTPS API, queried from the laptop)."""
    ca = lab.state_dir / "pki" / "ca.crt"
    # By name (the certificate's), pinned to the platform's address: works even when DNS lies.
    code, body = curl(
        lab,
        "https://api.lab-cloud.test:8443/api/v1/devices",
        "--cacert",
        str(ca),
        "--resolve",
        f"api.lab-cloud.test:8443:{PLATFORM}",
    )
    assert code == 200, (code, body)
    return {d["serial"]: d for d in json.loads(body)}


def natdiscovery(lab: Lab, server: str, port: int = 3478, tests: str = "-m -f") -> str:
    """turnutils_natdiscovery's verdicts against ``server`` (coturn); ``tests`` "-m", "-f"."""
    laptop = lab.status["laptop"]
    res = lab.exec(
        "turnutils_natdiscovery", *tests.split(), "-L", laptop, "-p", str(port), server, timeout=60
    )
    return res.stdout + res.stderr
