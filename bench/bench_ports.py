"""Benchmark: diag's ports check vs nmap (-sS/-sU) on the same targets, healthy and blocked labs.

For each scenario (healthy, router-port-blocking, isp-p2p-blocking) a fresh lab is built and, in
the laptop namespace, each tool probes the ports the lab's site config names (as the ports check
plans them): UDP 32100 (hello), TCP 443 (relay), TCP 8443 (status API) on the platform and both
STUN servers.
- diag: ``diag run --only ports`` (whole process, start-up included; in-check time beside it);
- nmap: ``nmap -Pn -n -sS -sU`` on exactly those ports and hosts, default timing and ``-T4``.
A verdict is right when the port is reported open exactly when it is (nmap's ``open|filtered``
is not "open": it could not tell), and, for diag, when a blocked port's hop (``router``/``isp``)
is the one the scenario blocks at; nmap does not locate hops. Medians over the runs.

Run as root (not pytest): ``.venv/bin/python bench/bench_ports.py [--runs 3] [--md FILE]``.
Traffic stays inside the lab's namespaces; every lab is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# The lab's DNS plan (docs/lab.md): the bench runs nmap on addresses, diag on the names.
LAB_NAMES = {
    "p2p.lab-cloud.test": "198.51.100.10",
    "relay.lab-cloud.test": "198.51.100.10",
    "api.lab-cloud.test": "198.51.100.10",
}
# The ports the lab's router / operator drop in the blocking scenarios (diag/lab/plan.py).
BLOCKED = {("198.51.100.10", 32100, "udp"), ("198.51.100.10", 443, "tcp")}
# scenario -> where the blocked ports die (None: nothing blocked)
SCENARIOS: dict[str, str | None] = {
    "healthy": None,
    "router-port-blocking": "router",
    "isp-p2p-blocking": "isp",
}
Target = tuple[str, str, int, str]  # (diag target key, ip, port, proto)
VENV_BIN = Path(sys.executable).parent
# A tool that hangs is cut off here, s (nmap -sU with default retries takes a while).
TOOL_TIMEOUT_S = 120


def lab_targets(site_path: str) -> list[Target]:
    """The ports the lab's site config names, exactly as the ports check plans them."""
    from diag.checks.ports import plan_targets
    from diag.config import load_site

    return [
        (t.key, LAB_NAMES.get(t.host, t.host), t.port, t.transport)
        for t in plan_targets(load_site(site_path))
    ]


def truth(scenario: str, targets: list[Target]) -> dict[str, tuple[bool, str | None]]:
    at = SCENARIOS[scenario]
    return {t[0]: ((False, at) if at and t[1:] in BLOCKED else (True, None)) for t in targets}


def run_diag(
    ns: str, site: str, out: Path, targets: list[Target]
) -> tuple[dict[str, tuple[bool, str | None]], float, float]:
    t0 = time.monotonic()
    subprocess.run(
        ["ip", "netns", "exec", ns, str(VENV_BIN / "diag"), "run", "--site", site, "--only",
         "ports", "--json", str(out)],
        capture_output=True, timeout=TOOL_TIMEOUT_S, check=False,
    )  # fmt: skip
    wall = time.monotonic() - t0
    data = json.loads(out.read_text())
    c = next(c for c in data["checks"] if c["id"] == "ports")
    facts: dict[tuple[str, str], Any] = {(f["key"], f["target"]): f["value"] for f in c["facts"]}
    verdicts = {
        t[0]: (bool(facts.get(("port.open", t[0]))), facts.get(("port.blocked_at", t[0])))
        for t in targets
    }
    return verdicts, wall, float(c["duration_s"])


def run_nmap(ns: str, fast: bool, targets: list[Target]) -> tuple[dict[str, str], float]:
    tcp = sorted({str(t[2]) for t in targets if t[3] == "tcp"})
    udp = sorted({str(t[2]) for t in targets if t[3] == "udp"})
    ports = ",".join(
        [*(["T:" + ",".join(tcp)] if tcp else []), *(["U:" + ",".join(udp)] if udp else [])]
    )
    argv = ["ip", "netns", "exec", ns, "nmap", "-Pn", "-n", "-sS", "-sU", "-p", ports, "-oX", "-"]
    if fast:
        argv.append("-T4")
    argv += sorted({t[1] for t in targets})
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    wall = time.monotonic() - t0
    states: dict[tuple[str, int, str], str] = {}
    root = ET.fromstring(res.stdout)
    for host in root.iter("host"):
        addr = host.find("address")
        ip = addr.get("addr", "") if addr is not None else ""
        for p in host.iter("port"):
            st = p.find("state")
            states[(ip, int(p.get("portid", "0")), p.get("protocol", ""))] = (
                st.get("state", "?") if st is not None else "?"
            )
    return {t[0]: states.get((t[1], t[2], t[3]), "missing") for t in targets}, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--md", help="also write the markdown tables here")
    args = ap.parse_args()
    from diag.lab import runtime

    summary: list[str] = []
    detail: list[str] = []
    for scenario in SCENARIOS:
        state = runtime.up(scenario)
        lab = state["name"]
        ns = runtime.status(lab)["roles"]["laptop"]
        targets = lab_targets(state["site_config"])
        want = truth(scenario, targets)
        try:
            d_ok, d_walls, d_check = [], [], []
            n_ok = {False: [], True: []}  # type: dict[bool, list[int]]
            n_walls: dict[bool, list[float]] = {False: [], True: []}
            last_d: dict[str, tuple[bool, str | None]] = {}
            last_n: dict[str, str] = {}
            for i in range(args.runs):
                verdicts, wall, in_check = run_diag(
                    ns, state["site_config"], Path(state["state_dir"]) / f"bench-{i}.json", targets
                )
                last_d = verdicts
                d_ok.append(sum(1 for k, v in verdicts.items() if v == want[k]))
                d_walls.append(wall)
                d_check.append(in_check)
                for fast in (False, True):
                    states, nwall = run_nmap(ns, fast, targets)
                    last_n = states if not fast else last_n
                    n_ok[fast].append(
                        sum(1 for k, s in states.items() if (s == "open") == want[k][0])
                    )
                    n_walls[fast].append(nwall)
        finally:
            runtime.down(lab)
        n = len(targets)
        summary.append(
            f"| {scenario} | {min(d_ok)}/{n} (hops too) | {statistics.median(d_walls):.2f} "
            f"({statistics.median(d_check):.2f} in check) | {min(n_ok[False])}/{n} | "
            f"{statistics.median(n_walls[False]):.2f} | {min(n_ok[True])}/{n} | "
            f"{statistics.median(n_walls[True]):.2f} |"
        )
        for t in targets:
            o, at = last_d[t[0]]
            exp_o, exp_at = want[t[0]]
            detail.append(
                f"| {scenario} | {t[0]} | {'open' if exp_o else 'blocked at ' + str(exp_at)} | "
                f"{'open' if o else 'blocked at ' + str(at)} | {last_n.get(t[0])} |"
            )
        print(summary[-1], flush=True)
    table = (
        "| scenario | diag right | diag s (wall) | nmap right | nmap s | nmap -T4 right "
        "| nmap -T4 s |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(summary)
        + "\n\n| scenario | port | truth | diag | nmap (default timing) |\n|---|---|---|---|---|\n"
        + "\n".join(detail)
    )
    print(table)
    if args.md:
        Path(args.md).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
