"""Benchmark: one `diag monitor` run on the healthy lab, start to exit, and its peak memory.

Targets (issue 7): under 2 s wall time, peak RSS under 80 MB. Runs inside the lab's laptop
namespace like a cron job on the site box would; measured with GNU time (%e wall s, %M max RSS KiB).
Run as root: .venv/bin/python bench/bench_monitor.py [--runs 5] [--devices 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from labkit import start_lab


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--devices", type=int, default=None)
    a = ap.parse_args()
    lab = start_lab("healthy", a.devices)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "history.sqlite"
            diag = str(Path(sys.executable).with_name("diag"))
            walls, rss, lines = [], [], []
            for _ in range(a.runs):
                res = lab.exec(
                    "/usr/bin/time",
                    "-f",
                    "TIME %e %M",
                    diag,
                    "monitor",
                    "--site",
                    str(lab.site_path),
                    "--db",
                    str(db),
                    timeout=120,
                )
                t = next(x for x in res.stderr.splitlines() if x.startswith("TIME "))
                _, wall, maxkb = t.split()
                walls.append(float(wall))
                rss.append(int(maxkb) / 1024)
                lines.append(res.stdout.strip().split(" | ")[0])
            print(f"lab {lab.name}, devices: {a.devices or 'default'}, runs: {a.runs}")
            print(f"status line        {lines[-1]}")
            print(
                f"wall time          median {statistics.median(walls):.2f} s, "
                f"max {max(walls):.2f} s (target < 2)"
            )
            print(
                f"peak RSS           median {statistics.median(rss):.0f} MiB, "
                f"max {max(rss):.0f} MiB (target < 80)"
            )
    finally:
        lab.down()


if __name__ == "__main__":
    main()
