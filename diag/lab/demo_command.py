"""`diag demo`: a lab up, the dashboard (or a headless run and reports) on it, the lab down."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from diag.i18n import N_

# A headless demo run gets this long as the whole-run deadline (s): every check on a lab answers
# within seconds, and a demo must not look hung.
DEMO_DEADLINE_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        default="healthy",
        metavar=N_("NAME[,NAME..]"),
        help="scenario(s) to inject (see `diag lab list`; default: healthy); several: a,b",
    )
    parser.add_argument(
        "--devices", type=int, default=None, metavar="N", help="number of devices in the lab"
    )
    parser.add_argument(
        "--out",
        default="diag-demo",
        metavar=N_("DIR"),
        help="where the headless run writes reports",
    )
    parser.add_argument(
        "--lang", choices=("en", "pl"), default=None, help="language of the dashboard and reports"
    )
    parser.add_argument("--headless", action="store_true", help="no dashboard even on a terminal")


def main(args: argparse.Namespace) -> int:
    from diag.i18n import msg, person_lang
    from diag.lab import runtime

    lang: str = args.lang or person_lang()

    try:
        runtime.require_root()
    except runtime.LabError as exc:
        print(f"diag demo: {exc.message.render(lang)}", file=sys.stderr)
        return exc.exit_code

    def on_term(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    lab: str | None = None
    try:
        try:
            state = runtime.up(args.scenario, args.devices)
        except runtime.LabError as exc:
            print(f"diag demo: {exc.message.render(lang)}", file=sys.stderr)
            return exc.exit_code
        lab = str(state["name"])
        site = str(state["site_config"])
        up_line = msg("lab {lab} up ({scenario}); site config {site}", lab=lab,
                      scenario=args.scenario, site=site)  # fmt: skip
        print(up_line.render(lang), file=sys.stderr, flush=True)
        env = runtime.exec_env()
        lang_args = ["--lang", args.lang] if args.lang else []
        if sys.stdout.isatty() and not args.headless:
            cmd = ["diag", "tui", "--site", site, *lang_args]
        else:
            out = Path(args.out).resolve()
            out.mkdir(parents=True, exist_ok=True)
            cmd = [
                "diag", "run", "--site", site, "--deadline", str(DEMO_DEADLINE_S),
                "--json", str(out / "run.json"), "--html", str(out / "report.html"), *lang_args,
            ]  # fmt: skip
        rc = subprocess.call(runtime.exec_argv(lab, "laptop", cmd), env=env)
        # `diag run` exits 1/3 for degraded/offline devices: a finding, not a demo failure.
        return rc if rc in (2, 4) else 0
    except KeyboardInterrupt:
        return 130
    finally:
        if lab is not None:
            # Always down, also after Ctrl-C: no namespace outlives the demo.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            runtime.down(lab)
            print(msg("lab {lab} down", lab=lab).render(lang), file=sys.stderr)
