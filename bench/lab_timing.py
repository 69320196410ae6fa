"""How long `diag lab up` and `diag lab down` take (budget: up < 5 s, down < 2 s), as root.

Usage: ``.venv/bin/python bench/lab_timing.py [--runs N] [--devices N ...] [--scenario NAME ...]``

Each measurement runs the CLI (``python -m diag.cli lab up`` / ``down``) as a person would, so the
interpreter start is included; the in-process phases (files, links, scripts, daemons ready) come
from ``runtime.up(timings=...)``. Prints a Markdown table (docs/lab.md keeps the latest numbers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

UP_BUDGET_S, DOWN_BUDGET_S = 5.0, 2.0


def _cli(*args: str) -> tuple[float, str]:
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli", "lab", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if res.returncode != 0:
        raise SystemExit(f"diag lab {' '.join(args)} failed: {res.stderr}")
    return time.monotonic() - t0, res.stdout.strip()


def measure(scenario: str, devices: int | None, runs: int) -> dict[str, float]:
    from diag.lab import runtime

    ups, downs, phases = [], [], []
    for _ in range(runs):
        extra = ["--devices", str(devices)] if devices else []
        up_s, name = _cli("up", "--scenario", scenario, *extra)
        down_s, _ = _cli("down", "--lab", name)
        ups.append(up_s)
        downs.append(down_s)
        timings: dict[str, float] = {}
        state = runtime.up(scenario, devices, timings=timings)
        runtime.down(state["name"])
        phases.append(timings["ready"])
    return {
        "up_median_s": statistics.median(ups),
        "up_max_s": max(ups),
        "ready_median_s": statistics.median(phases),
        "down_median_s": statistics.median(downs),
        "down_max_s": max(downs),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scenario", nargs="*", default=["healthy", "wan-loss-latency", "cgnat"])
    ap.add_argument("--devices", nargs="*", type=int, default=[50])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/lab_timing.py needs root (it builds labs)", file=sys.stderr)
        return 2
    cases = [(s, None) for s in args.scenario] + [("healthy", n) for n in args.devices]
    print("| scenario | devices | up median (s) | up max (s) | daemons ready (s) | down median (s) "
          "| down max (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    worst = 0
    for scenario, devices in cases:
        r = measure(scenario, devices, args.runs)
        print(
            f"| {scenario} | {devices or 4} | {r['up_median_s']:.2f} | {r['up_max_s']:.2f} | "
            f"{r['ready_median_s']:.2f} | {r['down_median_s']:.2f} | {r['down_max_s']:.2f} |",
            flush=True,
        )
        if devices is None and (r["up_max_s"] > UP_BUDGET_S or r["down_max_s"] > DOWN_BUDGET_S):
            worst = 1
    return worst


if __name__ == "__main__":
    sys.exit(main())
