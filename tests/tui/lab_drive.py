"""Drives the real dashboard headless on a site, with the installed checks, and prints the screen.

Run inside a lab's laptop namespace (``diag lab exec -- python tests/tui/lab_drive.py --site
FILE --select ipc2``): it starts ``DiagApp`` exactly as ``diag tui`` does, waits for the run to
finish, selects a device with the arrow keys like a person would, and prints one JSON object:
the whole screen as text, the detail pane's text, and the verdicts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tui_screen import region_text, screen_text

from diag.config import load_site
from diag.tui.app import DiagApp


async def drive(args: argparse.Namespace) -> dict[str, object]:
    site = load_site(args.site)
    app = DiagApp(site, deadline_s=args.deadline, lang=args.lang)
    async with app.run_test(size=(args.width, args.height)) as pilot:
        dash = app.dashboard
        end = time.monotonic() + args.deadline + 15
        await pilot.pause(0.5)
        while dash.running and time.monotonic() < end:
            await asyncio.sleep(0.2)
        finished = not dash.running
        names = [d.name for d in site.devices]
        if args.select in names:
            await pilot.pause()  # the finished run may have moved the cursor to a grey device
            steps = names.index(args.select) - dash.devices.cursor_row
            await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps))
        await pilot.pause()
        out = {
            "finished": finished,
            "screen": screen_text(app),
            "detail": region_text(app, dash.detail),
            "verdicts": {
                v.device: [v.state, v.icon, [c.id for c in v.causes]]
                for v in dash.verdicts.values()
            },
            "checks": {c: r.result.status for c, r in dash.checks.rows_by_id.items() if r.result},
        }
        await pilot.press("q")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--site", required=True)
    p.add_argument("--select", default="")
    p.add_argument("--deadline", type=float, default=30.0)
    p.add_argument("--lang", default="en")
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=48)
    args = p.parse_args()
    print(json.dumps(asyncio.run(drive(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
