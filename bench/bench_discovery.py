"""Benchmark: diag's LAN discovery (ARP sweep) vs ``nmap -sn`` on a lab LAN of 50+ devices.

One lab (``healthy`` with ``--devices N``, default 50: an NVR, N-1 cameras, the router and the
laptop on 198.18.0.0/24) is built; in the laptop namespace each tool finds the hosts of the /24,
alternating which goes first, ``--rounds`` times:
- diag: a fresh Python process running the sweep the heartbeat check runs (``ifaces.sweep_targets``
  + ``arp.arp_scan``: 1 ms pacing, two passes, 0.25 s wait); whole-process wall time (interpreter
  start-up included) and the scan's own time;
- nmap: ``nmap -sn -n <subnet>`` (root on a local LAN: ARP ping; ``-n``: no reverse DNS), default
  timing (T3), wall time.
The kernel's neighbour cache is flushed before every run. The laptop's own address is left out of
nmap's list (nmap lists the local host, diag does not ask for itself). Then one full
``diag run --only heartbeat`` on the same lab shows the check's time with the sweep and 50
devices' logins, pings and port probes in it.

Run as root (not pytest): ``.venv/bin/python bench/bench_discovery.py [--devices 50] [--rounds 5]
[--md FILE]``. Traffic stays inside the lab's namespaces; the lab is removed at the end, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SUBNET = "198.18.0.0/24"
DIAG_SWEEP = r"""
import json, time
from diag.net import arp as net_arp
from diag.net import ifaces as net_ifaces
i = next(x for x in net_ifaces.local_interfaces() if x.name == "eth0")
targets, swept, _ = net_ifaces.sweep_targets(i, [])
scan = net_arp.arp_scan(i, targets)
print(json.dumps({"found": sorted(scan.by_ip()), "scan_s": scan.duration_s, "sent": scan.sent,
                  "self": sorted(i.addresses)}))
"""


def sh(ns: str, *cmd: str, timeout: float = 120) -> tuple[str, float]:
    t0 = time.monotonic()
    res = subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout
    )
    wall = time.monotonic() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}): {res.stderr[-2000:]}")
    return res.stdout, wall


def flush_neigh(ns: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "ip", "neigh", "flush", "all"], check=False)


def run_nmap(ns: str) -> dict[str, Any]:
    out, wall = sh(ns, "nmap", "-sn", "-n", "-oG", "-", SUBNET)
    hosts = sorted(
        line.split()[1]
        for line in out.splitlines()
        if line.startswith("Host:") and "Status: Up" in line
    )
    return {"found": hosts, "wall_s": wall}


def run_diag(ns: str) -> dict[str, Any]:
    out, wall = sh(ns, sys.executable, "-c", DIAG_SWEEP)
    data: dict[str, Any] = json.loads(out)
    data["wall_s"] = wall
    return data


def ipkey(ip: str) -> tuple[int, ...]:
    return tuple(int(p) for p in ip.split("."))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=50, help="devices in the lab (default 50)")
    ap.add_argument("--rounds", type=int, default=5, help="runs per tool (default 5)")
    ap.add_argument("--md", type=Path, help="also write the markdown table to this file")
    args = ap.parse_args(argv)

    from diag.lab import runtime

    # SIGTERM as Ctrl-C: the finally below takes the lab down either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    t0 = time.monotonic()
    state = runtime.up("healthy", args.devices)
    lab = str(state["name"])
    up_s = time.monotonic() - t0
    try:
        status = runtime.status(lab)
        ns = str(status["roles"]["laptop"])
        laptop_ip = str(status["laptop"])
        expected = sorted(
            {d["address"] for d in status["devices"]} | {str(status["gateway"])}, key=ipkey
        )
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            order = ("nmap", "diag") if r % 2 == 0 else ("diag", "nmap")
            row: dict[str, Any] = {}
            for tool in order:
                flush_neigh(ns)
                time.sleep(0.2)
                row[tool] = run_nmap(ns) if tool == "nmap" else run_diag(ns)
            rounds.append(row)
            print(
                f"round {r + 1}: nmap {len(row['nmap']['found'])} hosts "
                f"{row['nmap']['wall_s']:.2f} s, diag {len(row['diag']['found'])} hosts "
                f"{row['diag']['wall_s']:.2f} s (scan {row['diag']['scan_s']:.2f} s)",
                file=sys.stderr,
            )
        run_json = Path(state["state_dir"]) / "bench-heartbeat.json"
        flush_neigh(ns)
        diag = str(Path(sys.executable).parent / "diag")
        site = str(state["site_config"])
        sh(ns, diag, "run", "--site", site, "--only", "heartbeat", "--json", str(run_json),
           timeout=300)  # fmt: skip
        hb = next(
            c for c in json.loads(run_json.read_text("utf-8"))["checks"] if c["id"] == "heartbeat"
        )
    finally:
        runtime.down(lab)

    def med(tool: str, key: str) -> float:
        return statistics.median(r[tool][key] for r in rounds)

    nmap_sets = [set(r["nmap"]["found"]) - {laptop_ip} for r in rounds]
    diag_sets = [set(r["diag"]["found"]) for r in rounds]
    missed = sorted(set().union(*(n - d for n, d in zip(nmap_sets, diag_sets, strict=True))))
    extra = sorted(set().union(*(d - n for n, d in zip(nmap_sets, diag_sets, strict=True))))
    exp = set(expected)
    hb_facts = {(f["key"], f["target"]): f["value"] for f in hb["facts"]}
    lines = [
        f"Lab: `healthy`, {args.devices} devices + router on {SUBNET} (laptop {laptop_ip}); "
        f"{len(exp)} hosts to find; lab up in {up_s:.1f} s; {args.rounds} rounds, medians.",
        "",
        "| tool | hosts found (min–max) | all expected found | wall time, s (min–max) "
        "| scan time, s |",
        "|---|---|---|---|---|",
    ]
    for tool, sets in (("nmap -sn -n", nmap_sets), ("diag ARP sweep", diag_sets)):
        key = "nmap" if tool.startswith("nmap") else "diag"
        walls = [r[key]["wall_s"] for r in rounds]
        counts = [len(s) for s in sets]
        scan = f"{med('diag', 'scan_s'):.2f}" if key == "diag" else "–"
        lines.append(
            f"| {tool} | {statistics.median(counts):.0f} ({min(counts)}–{max(counts)}) | "
            f"{sum(1 for s in sets if exp <= s)}/{len(sets)} rounds | "
            f"{med(key, 'wall_s'):.2f} ({min(walls):.2f}–{max(walls):.2f}) | {scan} |"
        )
    ratio = med("diag", "wall_s") / med("nmap", "wall_s")
    lines += [
        "",
        f"- diag / nmap wall time: **{ratio:.2f}** (diag's in-process scan alone: "
        f"{med('diag', 'scan_s') / med('nmap', 'wall_s'):.2f}).",
        f"- Hosts nmap found that diag missed (any round): {missed or 'none'}; "
        f"found by diag only: {extra or 'none'}. nmap also lists the laptop itself "
        "(left out above).",
        f"- diag ARP frames sent per sweep: {rounds[-1]['diag']['sent']} "
        "(253 asked, the silent ones asked once more).",
        f"- Full `diag run --only heartbeat` on this lab: {hb['duration_s']:.2f} s "
        f"(status {hb['status']}; sweep found {hb_facts.get(('lan.hosts_found', ''))} hosts, "
        f"unknown hosts {hb_facts.get(('lan.unknown_hosts', ''))}).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        args.md.write_text(text, encoding="utf-8")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
