"""Benchmark: a year of 5-minute samples for 64 devices (~6.7 million rows) in the history.

Measures the database size and the time to render the report's history section from it
(targets: under 1 GB, under 2 s). Run: .venv/bin/python bench/bench_history.py [--devices 64]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from pathlib import Path

from diag.monitor.store import Store
from diag.monitor.timeline import history_section

STEP = dt.timedelta(minutes=5)


def synth(devices: int, days: int, seed: int = 1) -> list[tuple[str, dt.datetime, str, str | None]]:
    """Mostly online; each device has outages of 5 min to 6 h at random, a few per month."""
    rng = random.Random(seed)
    t0 = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    n = days * 24 * 12
    out: list[tuple[str, dt.datetime, str, str | None]] = []
    for d in range(devices):
        name = f"Camera {d:02d}"
        down_until = -1
        for i in range(n):
            if i > down_until and rng.random() < 1 / (10 * 24 * 12):  # ~one outage per 10 days
                down_until = i + rng.randint(1, 72)
            state = (
                "offline" if i <= down_until else ("degraded" if rng.random() < 0.001 else "online")
            )
            cause = "link-outage" if state == "offline" else None
            out.append((name, t0 + i * STEP, state, cause))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=64)
    ap.add_argument("--days", type=int, default=365)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "history.sqlite"
        t = time.perf_counter()
        rows = synth(a.devices, a.days)
        t_gen = time.perf_counter() - t
        t = time.perf_counter()
        with Store(db) as s:
            s.import_samples(rows)  # type: ignore[arg-type]
            s.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        t_import = time.perf_counter() - t
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        timings = []
        for _ in range(5):
            t = time.perf_counter()
            with Store(db) as s:
                hist = s.device_history()
                html = history_section(
                    hist, dt.date(2025, 11, 1), dt.date(2025, 11, 1) + dt.timedelta(days=a.days - 1)
                )
            timings.append(time.perf_counter() - t)
        timings.sort()
        print(f"rows                      {len(rows):,}")
        print(f"generate                  {t_gen:.1f} s")
        print(f"bulk import               {t_import:.1f} s")
        print(f"database size             {size / 2**20:.0f} MiB (target < 1024)")
        print(
            f"history section render    median {timings[2]:.3f} s, "
            f"max {timings[-1]:.3f} s (target < 2)"
        )
        print(f"section size              {len(html) / 1024:.0f} KiB")
        print(f"outages                   {sum(len(h.outages) for h in hist):,}")


if __name__ == "__main__":
    main()
