"""Benchmark: how long the customer waits, and how often the phone's facts come out right.

For each phone scenario a lab is built once; then ``--runs`` sessions each run ``diag phone`` in
the laptop namespace and headless Chromium in the phone namespace (exactly as
tests/phone/test_phone_lab.py does) and record: seconds from the QR code to the result (includes
Chromium's cold start), seconds from the page opening to the result (what diag and its page
take), and whether the facts match what the lab was built with. No peer tool measures a phone
from a QR code, so there is no side-by-side column.

Run as root (not part of pytest): ``.venv/bin/python bench/bench_phone.py [--runs 5] [--md FILE]``.
Traffic stays inside the lab's namespaces; Chromium's own service calls reach only a refusing
loopback proxy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "reports")]

from labkit import start_lab  # noqa: E402
from phone.test_phone_lab import facts, phone_session  # noqa: E402

# What each scenario's facts must say (None: the key is not checked).
EXPECT: dict[str, dict[str, Any]] = {
    "phone-healthy": {"phone.udp_blocked": False, "phone.nat_mapping": "independent",
                      "phone.platform_reachable": True, "phone.on_site_lan": True},
    "phone-mobile-symmetric": {"phone.udp_blocked": False, "phone.nat_mapping": "dependent",
                               "phone.on_site_lan": False},
    "phone-udp-blocked": {"phone.udp_blocked": True, "phone.platform_reachable": True},
    "phone-no-platform": {"phone.udp_blocked": False, "phone.platform_reachable": False},
}  # fmt: skip


def spread(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{min(xs):.1f} / {statistics.median(xs):.1f} / {max(xs):.1f}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--md", help="write the table as Markdown")
    ap.add_argument("--scenarios", default=",".join(EXPECT))
    args = ap.parse_args()
    rows = []
    for name in args.scenarios.split(","):
        lab = start_lab(name)
        qr_s: list[float] = []
        page_s: list[float] = []
        right = 0
        try:
            for _ in range(args.runs):
                s = phone_session(lab)
                f = facts(s["run"])
                if s["received_s"] is not None:
                    qr_s.append(s["received_s"])
                    page_s.append(s["page_s"])
                right += all(f.get(k) == v for k, v in EXPECT[name].items())
        finally:
            lab.down()
        rows.append((name, spread(qr_s), spread(page_s), f"{right}/{args.runs}"))
        print(rows[-1], flush=True)
    head = (
        "| scenario | QR code → result, s (min / median / max) | page opened → result, s "
        "| facts right |"
    )
    lines = [head, "|---|---|---|---|", *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)]
    print("\n".join(lines))
    if args.md:
        Path(args.md).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
