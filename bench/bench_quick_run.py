"""Benchmark: a quick run of every check on the healthy lab with 8 devices (target: under 3 s).

Reports the run's own duration (plan to verdicts) and the wall time of the whole `diag run`
process (Python start-up included), with each check's time, over several runs in one lab.
Run as root: .venv/bin/python bench/bench_quick_run.py [--runs 5] [--devices 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from labkit import start_lab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--devices", type=int, default=8)
    a = ap.parse_args()
    lab = start_lab("healthy", a.devices)
    try:
        lab.diag_run()  # warm-up: ARP caches, page cache
        durations, walls = [], []
        per_check: dict[str, list[float]] = {}
        for _ in range(a.runs):
            t = time.perf_counter()
            run = lab.diag_run()
            walls.append(time.perf_counter() - t)
            durations.append(run["duration_s"])
            for c in run["checks"]:
                per_check.setdefault(c["id"], []).append(c["duration_s"])
        print(f"lab {lab.name}: healthy, {a.devices} devices, {a.runs} runs")
        print(f"run duration   median {statistics.median(durations):.2f} s (target < 3)")
        print(f"process wall   median {statistics.median(walls):.2f} s")
        for cid, ts in sorted(per_check.items(), key=lambda kv: -statistics.median(kv[1])):
            print(f"  {cid:<10} median {statistics.median(ts):.2f} s")
    finally:
        lab.down()


if __name__ == "__main__":
    main()
