"""``diag tui``: its arguments and how it starts the dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path

from diag.i18n import N_


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", required=True, metavar=N_("FILE"), help=N_("site config (TOML)"))
    parser.add_argument("--lang", choices=("en", "pl"), help=N_("language (l switches it live)"))
    parser.add_argument(
        "--deadline", type=float, default=None, metavar=N_("S"), help=N_("whole-run deadline, s")
    )
    parser.add_argument("--only", type=_ids, metavar=N_("ID,.."), help=N_("run only these checks"))
    parser.add_argument("--deep", action="store_true", help=N_("slow measurements too"))
    parser.add_argument(
        "--export-dir",
        type=Path,
        default=None,
        metavar=N_("DIR"),
        help=N_("where e writes reports"),
    )
    parser.add_argument(
        "--grey",
        type=_ids,
        default=[],
        metavar=N_("NAME,.."),
        help=N_("devices the app shows grey (the installer's observation; g toggles it live)"),
    )


def has_terminal() -> bool:
    """Keys come from stdin and the screen goes to stdout: both must be a terminal."""
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


def main(args: argparse.Namespace) -> int:
    import sys

    from diag.cli import load_site_seen_grey
    from diag.i18n import msg, normalize_lang
    from diag.runner import DEFAULT_DEADLINE_S
    from diag.tui.app import DiagApp

    site = load_site_seen_grey(args.site, args.grey)
    if not has_terminal():
        # Without one the dashboard drew into a pipe and waited for keys that never came.
        lang = normalize_lang(args.lang or site.lang)
        text = msg("diag tui needs a terminal; without one use `diag run` (text, --json, --html)")
        print(f"diag tui: {text.render(lang)}", file=sys.stderr)
        return 2
    app = DiagApp(
        site,
        only=args.only,
        lang=args.lang,
        deadline_s=args.deadline or DEFAULT_DEADLINE_S,
        deep=args.deep,
        export_dir=args.export_dir,
    )
    rc = app.run()
    if app.return_code not in (None, 0):
        text = msg("the dashboard stopped with an error")
        print(f"diag tui: {text.render(normalize_lang(app.lang))}", file=sys.stderr)
        return app.return_code or 4
    return rc or 0
