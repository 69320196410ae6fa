"""Benchmark: diag's bandwidth check vs iperf3 on lab links shaped by tc to 2, 20 and 100 Mbit/s.

One healthy lab is built; for each rate the router's WAN egress (upload) and the operator's
downlink egress (download) are re-shaped with the lab's own tbf recipe (10 ms burst, 50 ms queue),
then in the laptop namespace:
- diag's ``bandwidth`` check runs against the lab's speed-test endpoint (default mode: 1 s
  measured per direction; ``--deep``: 3 s), called directly so ``wan``/``ports`` add no traffic;
- iperf3 (server started here in the speed-test namespace) runs 5 s per direction (``-R`` for
  download), its receiver-side rate taken.
Goodput of a tbf-shaped TCP flow is ~95.6% of the rate (1448 payload bytes per 1514-byte frame),
so "±10% of the shaped rate" leaves room for that overhead. Every run is repeated; medians shown.

Run as root (not pytest): ``.venv/bin/python bench/bench_bandwidth.py [--runs 3] [--md FILE]``.
Traffic stays inside the lab's namespaces; the lab and the iperf3 server are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RATES_MBIT = (2, 20, 100)
SPEEDTEST_IP = "198.51.100.80"
IPERF_PORT = 5201
# iperf3 runs this long per direction, s (its default is 10; 5 is the budget we hold diag to).
IPERF_SECONDS = 5
# A tool that hangs is cut off here, s.
TOOL_TIMEOUT_S = 60

# Runs inside the laptop namespace: diag's check alone, printing its facts as JSON.
CHECK_SNIPPET = """
import asyncio, json, sys, time
from diag.checks.bandwidth import BandwidthCheck
from diag.checks.base import Context
from diag.config import load_site
site = load_site(sys.argv[1])
deep = sys.argv[2] == "deep"
chk = BandwidthCheck()
ctx = Context(site=site, check_id="bandwidth", targets=(), deadline=time.monotonic() + 15,
              deep=deep)
t0 = time.monotonic()
out = asyncio.run(chk.run(ctx))
facts = {f.key: f.value for f in out.facts}
facts["wall_s"] = round(time.monotonic() - t0, 3)
print(json.dumps(facts))
"""


def sh(*argv: str, timeout: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def shape(ns: dict[str, str], rate_mbit: int) -> None:
    """The lab's tbf recipe (diag/lab/plan.py ``_tbf``) at ``rate_mbit`` on both directions."""
    kbit = rate_mbit * 1000
    burst = max(kbit * 1000 // 8 // 100, 3200)
    for role, dev in (("router", "wan0"), ("isp", "down0")):
        res = sh(
            "ip", "netns", "exec", ns[role], "tc", "qdisc", "replace", "dev", dev, "root",
            "handle", "10:", "tbf", "rate", f"{kbit}kbit", "burst", str(burst), "latency", "50ms",
        )  # fmt: skip
        if res.returncode != 0:
            raise SystemExit(f"tc in {role}: {res.stderr}")


def run_diag(ns: dict[str, str], site: str, deep: bool) -> dict[str, Any]:
    res = sh(
        "ip", "netns", "exec", ns["laptop"], sys.executable, "-c", CHECK_SNIPPET, site,
        "deep" if deep else "quick",
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"diag bandwidth failed: {res.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return data


def run_iperf(ns: dict[str, str], reverse: bool) -> tuple[float | None, float]:
    """(Mbit/s at the receiver, wall time s) of one iperf3 run."""
    argv = ["ip", "netns", "exec", ns["laptop"], "iperf3", "-c", SPEEDTEST_IP, "-p"]
    argv += [str(IPERF_PORT), "-t", str(IPERF_SECONDS), "-J"]
    if reverse:
        argv.append("-R")
    t0 = time.monotonic()
    res = sh(*argv)
    wall = time.monotonic() - t0
    try:
        data = json.loads(res.stdout)
        return data["end"]["sum_received"]["bits_per_second"] / 1e6, wall
    except (ValueError, KeyError):
        return None, wall


def med(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return round(statistics.median(vals), 2) if vals else None


def err(x: float | None, ref: float | None) -> str:
    if x is None or ref is None or ref == 0:
        return "-"
    return f"{(x - ref) / ref * 100:+.1f}%"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--md", help="also write the markdown table here")
    args = ap.parse_args()
    from diag.lab import runtime

    state = runtime.up("healthy")
    lab = state["name"]
    ns: dict[str, str] = runtime.status(lab)["roles"]
    site = state["site_config"]
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns["speedtest"], "iperf3", "-s", "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows: list[str] = []
    raw: dict[str, Any] = {}
    try:
        time.sleep(0.5)  # iperf3 binds its port
        for rate in RATES_MBIT:
            shape(ns, rate)
            r: dict[str, list[Any]] = {k: [] for k in ("qd", "qu", "dd", "du")}
            r |= {k: [] for k in ("id", "iu", "it", "qdd", "qud", "ddd", "dud")}
            for _ in range(args.runs):
                q = run_diag(ns, site, deep=False)
                d = run_diag(ns, site, deep=True)
                i_up, t_up = run_iperf(ns, reverse=False)
                i_dn, t_dn = run_iperf(ns, reverse=True)
                r["qd"].append(q.get("bw.download_mbps"))
                r["qu"].append(q.get("bw.upload_mbps"))
                r["qdd"].append(q.get("bw.download_s"))
                r["qud"].append(q.get("bw.upload_s"))
                r["dd"].append(d.get("bw.download_mbps"))
                r["du"].append(d.get("bw.upload_mbps"))
                r["ddd"].append(d.get("bw.download_s"))
                r["dud"].append(d.get("bw.upload_s"))
                r["id"].append(i_dn)
                r["iu"].append(i_up)
                r["it"].append(t_up + t_dn)
            raw[str(rate)] = r
            for direction, q_key, d_key, i_key, qt, dt in (
                ("down", "qd", "dd", "id", "qdd", "ddd"),
                ("up", "qu", "du", "iu", "qud", "dud"),
            ):
                qm, dm, im = med(r[q_key]), med(r[d_key]), med(r[i_key])
                rows.append(
                    f"| {rate} | {direction} | {qm} ({err(qm, rate)}, {err(qm, im)}) "
                    f"| {med(r[qt])} | {dm} ({err(dm, rate)}, {err(dm, im)}) | {med(r[dt])} "
                    f"| {im} ({err(im, rate)}) | {IPERF_SECONDS} |"
                )
            print(rows[-2], rows[-1], sep="\n", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        runtime.down(lab)
    head = (
        "| shaped Mbit/s | dir | diag quick Mbit/s (vs shaped, vs iperf3) | s | "
        "diag --deep Mbit/s (vs shaped, vs iperf3) | s | iperf3 Mbit/s (vs shaped) | s |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    table = head + "\n" + "\n".join(rows)
    print(table)
    if args.md:
        Path(args.md).write_text(table + "\n\n```json\n" + json.dumps(raw) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
