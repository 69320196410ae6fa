"""``diag report --from RUN.json --html FILE [--lang pl]``: render a saved run as the HTML report.

The JSON is validated against the run schema first (``diag.reports.json.load``), so a truncated or
foreign file gets a clear message and exit code 2 instead of a traceback. Causes, fixes and
summaries are stored as messages, so a run saved in English renders in Polish and vice versa.
"""

from __future__ import annotations

import argparse
import sys

from diag.i18n import N_

EXIT_OK, EXIT_USAGE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar=N_("RUN.json"),
        help=N_("a run saved by --json"),
    )
    parser.add_argument(
        "--html", required=True, metavar=N_("FILE"), help=N_("where to write the report")
    )
    parser.add_argument(
        "--lang", choices=("en", "pl"), default=None, help=N_("language (default: the run's)")
    )
    parser.add_argument(
        "--history",
        metavar=N_("DB"),
        help=N_("add the history section from a `diag monitor` database"),
    )


def main(args: argparse.Namespace) -> int:
    from diag.reports import html
    from diag.reports import json as rjson

    try:
        run = rjson.load(args.from_)
    except ValueError as exc:
        print(f"diag report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    lang = args.lang or run.lang
    sections = []
    if args.history:
        from pathlib import Path

        from diag.monitor.store import StoreError
        from diag.monitor.timeline import section_from_db

        if not Path(args.history).is_file():
            print(f"diag report: no history database at {args.history}", file=sys.stderr)
            return EXIT_USAGE
        try:
            sections.append(section_from_db(args.history, lang, now=run.started_at))
        except StoreError as exc:
            print(f"diag report: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        html.write(run, args.html, lang, sections=sections)
    except OSError as exc:
        print(f"diag report: cannot write {args.html}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"HTML: {args.html}")
    return EXIT_OK
