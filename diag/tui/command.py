"""``diag tui``: its arguments and how it starts the dashboard."""

from __future__ import annotations

import argparse
from pathlib import Path


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", required=True, metavar="FILE", help="site config (TOML)")
    parser.add_argument("--lang", choices=("en", "pl"), help="language (l switches it live)")
    parser.add_argument(
        "--deadline", type=float, default=None, metavar="S", help="whole-run deadline, s"
    )
    parser.add_argument("--only", type=_ids, metavar="ID,..", help="run only these checks")
    parser.add_argument("--deep", action="store_true", help="slow measurements too")
    parser.add_argument(
        "--export-dir", type=Path, default=None, metavar="DIR", help="where e writes reports"
    )
    parser.add_argument(
        "--grey",
        type=_ids,
        default=[],
        metavar="NAME,..",
        help="devices the app shows grey (the installer's observation; g toggles it live)",
    )


def main(args: argparse.Namespace) -> int:
    import sys

    from diag.config import ConfigError, load_site, with_observations
    from diag.runner import DEFAULT_DEADLINE_S
    from diag.tui.app import DiagApp

    site = load_site(args.site)
    if args.grey:
        unknown = [g for g in args.grey if site.device(g) is None]
        if unknown:
            raise ConfigError(site.path, "--grey", f"no device named {unknown[0]!r} in the site")
        site = with_observations(site, {g: True for g in args.grey})
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
        print("diag tui: the dashboard stopped with an error", file=sys.stderr)
        return app.return_code or 4
    return rc or 0
