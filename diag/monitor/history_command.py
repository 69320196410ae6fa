"""``diag history``: the monitor's history as a table (or JSON): uptime, outages per device."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from diag.i18n import N_


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Either or both, as `diag monitor` takes them: --db names the database, --site alone means
    # the site's default one (a cron line's arguments can be reused as they are).
    p.add_argument(
        "--site", metavar=N_("FILE"), help=N_("site config (its default history database)")
    )
    p.add_argument(
        "--db", metavar=N_("FILE"), help=N_("history database (wins over --site's default)")
    )
    p.add_argument(
        "--days", type=_days, default=30, metavar="N", help=N_("how far back (default 30)")
    )
    p.add_argument("--device", metavar=N_("NAME"), help=N_("only this device"))
    p.add_argument("--json", action="store_true", help=N_("machine-readable output"))
    p.add_argument("--lang", choices=("en", "pl"), default="en")


def _days(text: str) -> int:
    """1..36500: beyond a century timedelta overflows (that was an internal error)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= 36500:
        raise argparse.ArgumentTypeError(f"{n}: must be 1 to 36500")
    return n


def _fmt_dur(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def main(args: argparse.Namespace) -> int:
    from diag.config import load_site
    from diag.i18n import N_, render
    from diag.monitor.command import default_db
    from diag.monitor.store import Store, StoreError
    from diag.reports.terminal import printable

    if not args.site and not args.db:
        print("diag history: give --site FILE, --db FILE or both", file=sys.stderr)
        return 2
    # The site file is read (and must be valid) whenever given, also next to --db.
    site = load_site(args.site) if args.site else None
    path = Path(args.db) if args.db else default_db(site.name if site else "")
    if not path.exists():
        print(f"diag: no history at {path} (run `diag monitor` first)")
        return 3
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.days)
    try:
        with Store(path) as store:
            hist = [
                h for h in store.device_history(since) if not args.device or h.device == args.device
            ]
    except StoreError as exc:
        print(f"diag: {exc}")
        return 3
    if args.json:
        out = [
            {
                "device": h.device,
                "samples": h.samples,
                "uptime_pct": h.uptime_pct,
                "outages": [
                    {
                        "start": o.start.isoformat(),
                        "end": o.end.isoformat() if o.end else None,
                        "duration_s": o.duration_s,
                        "cause": o.cause,
                    }
                    for o in h.outages
                ],
            }
            for h in hist
        ]
        print(json.dumps(out, indent=2))
        return 0
    head = [render(x, args.lang) for x in (N_("Device"), N_("Uptime"), N_("Outages"))]
    last_head = render(N_("Last outage"), args.lang)
    w = max([len(head[0])] + [len(h.device) for h in hist])
    print(f"{head[0]:<{w}}  {head[1]:>8}  {head[2]:>7}  {last_head}")
    for h in hist:
        up = f"{h.uptime_pct:.2f}%" if h.uptime_pct is not None else "-"
        last = h.outages[0] if h.outages else None
        last_s = (
            f"{last.start:%Y-%m-%d %H:%M} ({_fmt_dur(last.duration_s)}"
            + (f", {last.cause})" if last.cause else ")")
            if last
            else "-"
        )
        print(printable(f"{h.device:<{w}}  {up:>8}  {len(h.outages):>7}  {last_s}"))
    return 0
