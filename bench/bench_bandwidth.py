"""Benchmark: diag's bandwidth check vs iperf3 on lab links tbf-shaped from 64 kbit/s to 200 Mbit/s.

One healthy lab is built; for each rate the router's WAN egress (upload) and the operator's
downlink egress (download) are re-shaped with the lab's own tbf recipe (``plan.tbf_args``: 10 ms
burst, 50 ms queue but at least 32 frames), then in the laptop namespace:
- diag's ``bandwidth`` check runs against the lab's ndt7 server, found through the lab's Locate
  stand-in as a user's run finds M-Lab's (quick mode and ``--deep``), called directly so
  ``wan``/``ports`` add no traffic;
- iperf3 (server started here in the speed-test namespace) runs 5 s per direction after 1 s
  omitted (``-O 1``: slow start is not the link's rate; ``-R`` for download), its receiver-side
  rate taken; at 256 kbit/s and below 10 s after 2 s, with a window of 1 s of the rate.
Goodput of a tbf-shaped TCP flow is ~95.6% of the rate (1448 payload bytes per 1514-byte frame),
so "±10% of the shaped rate" leaves room for that overhead. Every run is repeated; medians shown,
with the wall time per direction and the data one check run moved (both directions, warm-up
included).

The laptop namespace sends with CUBIC (``--laptop-cc``), the default of the installers' laptops;
a namespace may only pick an algorithm the host allows, so the bench adds it to the host's
``net.ipv4.tcp_allowed_congestion_control`` for the run and puts the list back at the end (the
host's own default is not changed).

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

RATES_KBIT = (64, 256, 1_000, 8_000, 50_000, 200_000)
SPEEDTEST_IP = "198.51.100.80"
IPERF_PORT = 5201
# iperf3 runs this long per direction, s (its default is 10; 5 is the budget we hold diag to).
IPERF_SECONDS = 5
# iperf3 omits this first second (-O): its slow start through a 64 kbit/s queue loses segments and
# would make the reference, not diag, the figure off by 20 %.
IPERF_OMIT_S = 1
# At 256 kbit/s and below iperf3 runs longer: its 5 s at 64 kbit/s carry 27 segments, read in
# batches and cut when its end-of-test message, queued behind seconds of data, reaches the server;
# five runs of 5 s read 0.050-0.060 Mbit/s. 10 s after 2 s omitted steady that reference.
SLOW_KBIT = 256
SLOW_IPERF_SECONDS = 10
SLOW_IPERF_OMIT_S = 2
# ... and with a window (-w) of 1 s of the shaped rate, at least 4 frames, as one sizes iperf3 for
# a link with a deep modem queue: unbounded, a 10 s CUBIC run filled the 32-frame queue, and its
# tail drops and time-outs read -41 % at 64 kbit/s (-w 8K and 12K: -6 %; at 256 kbit/s 48K, as
# the kernel doubles it, still overran the queue: 25 retransmits; 32K none).
SLOW_IPERF_WINDOW_S = 1.0
# A tool that hangs is cut off here, s.
TOOL_TIMEOUT_S = 60
# The laptop sends with this congestion control (the bench's default, --laptop-cc): CUBIC is
# the default of Windows 10/11, macOS and Debian, the installers' laptops. The lab host's own
# default here is BBR, whose start-up overruns a 32-frame queue at 256 kbit/s (iperf3: -28 %).
LAPTOP_CC = "cubic"
ALLOWED_CC = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")

# Runs inside the laptop namespace: diag's check alone, printing its facts as JSON.
CHECK_SNIPPET = """
import asyncio, json, sys, time
from diag.checks.bandwidth import BandwidthCheck
from diag.checks.base import Context
from diag.config import load_site
site = load_site(sys.argv[1])
deep = sys.argv[2] == "deep"
chk = BandwidthCheck()
ctx = Context(site=site, check_id="bandwidth", targets=(),
              deadline=time.monotonic() + chk.timeout_s, deep=deep)
t0 = time.monotonic()
out = asyncio.run(chk.run(ctx))
facts = {f.key: f.value for f in out.facts}
facts["wall_s"] = round(time.monotonic() - t0, 3)
print(json.dumps(facts))
"""


def sh(*argv: str, timeout: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def shape(ns: dict[str, str], kbit: int) -> None:
    """The lab's tbf recipe (diag/lab/plan.py ``tbf_args``) at ``kbit`` on both directions."""
    from diag.lab.plan import tbf_args

    for role, dev in (("router", "wan0"), ("isp", "down0")):
        res = sh(
            "ip", "netns", "exec", ns[role], "tc", "qdisc", "replace", "dev", dev, "root",
            "handle", "10:", *tbf_args(kbit).split(),
        )  # fmt: skip
        if res.returncode != 0:
            raise SystemExit(f"tc in {role}: {res.stderr}")


def drain(kbit: int) -> None:
    """Waits for the lab's queue at ``kbit`` to empty: what one tool left queued (a download at
    64 kbit/s leaves up to 6 s of it) would otherwise delay the next tool's handshake."""
    from diag.lab.plan import MODEM_QUEUE_FRAMES

    queue_s = MODEM_QUEUE_FRAMES * 1514 * 8 / (kbit * 1000)
    if queue_s > 0.2:
        time.sleep(queue_s + 0.5)


def set_laptop_cc(ns: dict[str, str], cc: str) -> str | None:
    """Makes the laptop namespace send with ``cc``; returns the host's allowed list to restore
    when ``cc`` had to be added to it (a namespace may only pick an allowed algorithm)."""
    before = ALLOWED_CC.read_text().split()
    restore = None
    if cc not in before:
        ALLOWED_CC.write_text(" ".join([*before, cc]) + "\n")
        restore = " ".join(before)
    res = sh(
        "ip", "netns", "exec", ns["laptop"], "sysctl", "-qw",
        f"net.ipv4.tcp_congestion_control={cc}",
    )  # fmt: skip
    if res.returncode != 0:
        if restore is not None:
            ALLOWED_CC.write_text(restore + "\n")
        raise SystemExit(f"congestion control {cc} in the laptop: {res.stderr.strip()}")
    return restore


def run_diag(ns: dict[str, str], site: str, deep: bool) -> dict[str, Any]:
    res = sh(
        "ip", "netns", "exec", ns["laptop"], sys.executable, "-c", CHECK_SNIPPET, site,
        "deep" if deep else "quick",
    )  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"diag bandwidth failed: {res.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return data


def iperf_times(kbit: int) -> tuple[int, int]:
    """(seconds, omitted seconds) of iperf3's run at ``kbit``."""
    if kbit <= SLOW_KBIT:
        return SLOW_IPERF_SECONDS, SLOW_IPERF_OMIT_S
    return IPERF_SECONDS, IPERF_OMIT_S


def iperf_window(kbit: int) -> int | None:
    """iperf3's ``-w`` at ``kbit``, bytes (None: the kernel's autotuning)."""
    if kbit > SLOW_KBIT:
        return None
    return max(int(kbit * 1000 / 8 * SLOW_IPERF_WINDOW_S), 4 * 1514)


def run_iperf(ns: dict[str, str], reverse: bool, kbit: int) -> tuple[float | None, float]:
    """(Mbit/s at the receiver, wall time s) of one iperf3 run."""
    secs, omit = iperf_times(kbit)
    argv = ["ip", "netns", "exec", ns["laptop"], "iperf3", "-c", SPEEDTEST_IP, "-p"]
    argv += [str(IPERF_PORT), "-t", str(secs), "-O", str(omit), "-J"]
    window = iperf_window(kbit)
    if window is not None:
        argv += ["-w", str(window)]
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
    return round(statistics.median(vals), 4) if vals else None


def err(x: float | None, ref: float | None) -> str:
    if x is None or ref is None or ref == 0:
        return "-"
    return f"{(x - ref) / ref * 100:+.1f}%"


def fmt_rate(kbit: int) -> str:
    return f"{kbit} k" if kbit < 1000 else f"{kbit // 1000} M"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rates", help="comma-separated kbit/s (default: all six)")
    ap.add_argument("--md", help="also write the markdown table here")
    ap.add_argument(
        "--laptop-cc", default=LAPTOP_CC,
        help=f"congestion control the laptop sends with (default {LAPTOP_CC}; '' = the host's)",
    )  # fmt: skip
    args = ap.parse_args()
    from diag.lab import runtime

    rates = [int(r) for r in args.rates.split(",")] if args.rates else list(RATES_KBIT)
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
    restore_cc: str | None = None
    try:
        if args.laptop_cc:
            restore_cc = set_laptop_cc(ns, args.laptop_cc)
        time.sleep(0.5)  # iperf3 binds its port
        for kbit in rates:
            shape(ns, kbit)
            mbit = kbit / 1000
            r: dict[str, list[Any]] = {}
            for _ in range(args.runs):
                drain(kbit)
                q = run_diag(ns, site, deep=False)
                drain(kbit)
                d = run_diag(ns, site, deep=True)
                drain(kbit)
                i_up, _t = run_iperf(ns, reverse=False, kbit=kbit)
                drain(kbit)
                i_dn, _t = run_iperf(ns, reverse=True, kbit=kbit)
                for mode, facts in (("q", q), ("d", d)):
                    for dk, name in (("down", "download"), ("up", "upload")):
                        r.setdefault(f"{mode}{dk}", []).append(facts.get(f"bw.{name}_mbps"))
                        r.setdefault(f"{mode}{dk}_s", []).append(facts.get(f"bw.{name}_s"))
                        r.setdefault(f"{mode}{dk}_pct", []).append(
                            facts.get(f"bw.{name}_precision_pct")
                        )
                    r.setdefault(f"{mode}bytes", []).append(facts.get("bw.bytes_used"))
                r.setdefault("idown", []).append(i_dn)
                r.setdefault("iup", []).append(i_up)
            raw[str(kbit)] = r
            for dk in ("down", "up"):
                qm, dm, im = med(r[f"q{dk}"]), med(r[f"d{dk}"]), med(r[f"i{dk}"])
                rows.append(
                    f"| {fmt_rate(kbit)} | {dk} "
                    f"| {qm} ({err(qm, mbit)}, {err(qm, im)}) ±{med(r[f'q{dk}_pct'])}% "
                    f"| {med(r[f'q{dk}_s'])} "
                    f"| {dm} ({err(dm, mbit)}, {err(dm, im)}) ±{med(r[f'd{dk}_pct'])}% "
                    f"| {med(r[f'd{dk}_s'])} "
                    f"| {im} ({err(im, mbit)}) | {iperf_times(kbit)[0]} "
                    f"| {fmt_bytes(med(r['qbytes']))} / {fmt_bytes(med(r['dbytes']))} |"
                )
            print(rows[-2], rows[-1], sep="\n", flush=True)
    finally:
        if restore_cc is not None:
            ALLOWED_CC.write_text(restore_cc + "\n")
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
        runtime.down(lab)
    head = (
        "| shaped | dir | diag quick Mbit/s (vs shaped, vs iperf3) ±bound | s "
        "| diag --deep Mbit/s (vs shaped, vs iperf3) ±bound | s | iperf3 Mbit/s (vs shaped) | s "
        "| data per run quick / deep |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    table = head + "\n" + "\n".join(rows)
    print(table)
    if args.md:
        Path(args.md).write_text(table + "\n\n```json\n" + json.dumps(raw) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
