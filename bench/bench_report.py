"""Benchmark: the HTML report for a 64-device site renders in under 1 s and weighs under 1 MB.

Measures, for 8, 64 and 256 devices: the cold render (median of 3 fresh interpreters: imports of
Jinja2 and matplotlib, template compile, three charts) and the warm render (median of repeats in one
process), the page size, and the diagnosis time of the same run. Prints a Markdown table (the one in
docs/diagnosis.md) and exits non-zero when the 64-device targets are missed.

    .venv/bin/python bench/bench_report.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

TARGET_S = 1.0
TARGET_BYTES = 1_000_000

COLD = """
import json, sys, time
from diag.reports.sample import sample_run
run = sample_run({n}, hostile_name="<script>alert(1)</script>")
t0 = time.perf_counter()
from diag.reports import html
page = html.render(run, "{lang}")
print(json.dumps({{"s": time.perf_counter() - t0, "bytes": len(page.encode())}}))
"""


def cold(n: int, lang: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", COLD.format(n=n, lang=lang)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def warm(n: int, lang: str, repeat: int) -> tuple[float, float]:
    from diag.diagnosis import diagnose
    from diag.reports import html
    from diag.reports.sample import NOW, sample_results, sample_run, sample_site

    run = sample_run(n)
    html.render(run, lang)  # imports, template compile
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        html.render(run, lang)
        times.append(time.perf_counter() - t0)
    site = sample_site(n)
    results = sample_results(site)
    diag_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        diagnose(site, results, now=NOW)
        diag_times.append(time.perf_counter() - t0)
    return statistics.median(times), statistics.median(diag_times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = []
    ok = True
    print("| devices | lang | cold render (s) | warm render (s) | size (kB) | diagnosis (ms) |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in (8, 64, 256):
        for lang in ("en", "pl") if n == 64 else ("en",):
            # Median of three fresh interpreters: one cold start is at the mercy of the disk
            # cache and of whatever else the machine runs.
            colds = [cold(n, lang) for _ in range(3)]
            c = {
                "s": statistics.median(x["s"] for x in colds),
                "bytes": colds[0]["bytes"],
            }
            w, d = warm(n, lang, args.repeat)
            rows.append((n, lang, c["s"], w, c["bytes"], d))
            print(
                f"| {n} | {lang} | {c['s']:.3f} | {w:.3f} | {c['bytes'] / 1000:.0f} | "
                f"{d * 1000:.1f} |"
            )
            if n == 64 and (c["s"] >= TARGET_S or c["bytes"] >= TARGET_BYTES):
                ok = False
    print(
        f"\n64 devices: target render < {TARGET_S} s and size < {TARGET_BYTES / 1e6:.0f} MB: "
        + ("met" if ok else "MISSED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
