"""``diag monitor``: one monitoring run for cron, by the monitoring-plugin conventions.

Prints one status line with perfdata and exits 0 OK (all online), 1 WARNING (some degraded, or
some unknown while the rest of the site was measured), 2 CRITICAL (some offline), 3 UNKNOWN (no
device's state could be measured, or the run itself could not be done: bad site file, another
run holds the lock, the history cannot be written). Never OK while a device is unknown; the line
names the device and the check that failed. Records the run in the history, alerts on
confirmed state changes, writes/pushes Prometheus metrics.

The cron path imports neither Textual nor matplotlib: nothing here pulls in the dashboard or the
HTML report (a test keeps it that way).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from diag.i18n import N_

if TYPE_CHECKING:
    from diag.i18n import Message
    from diag.model import Run, Site
    from diag.monitor.store import Store

T = TypeVar("T", int, float)
# What a run needs at least one of to say anything about the site: a check that was skipped
# (not root, nothing to test) or ended in an error measured nothing.
RAN = ("ok", "warn", "fail")
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_EXIT = {"online": OK, "degraded": WARNING, "unknown": WARNING, "offline": CRITICAL}
LABEL = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
# Keep one year of 5-minute samples by default: the report's availability timeline covers a year.
DEFAULT_RETENTION_DAYS = 400
# Checks a cron run leaves out unless asked (--only or --all-checks). bandwidth: a speed test
# every 5 minutes would move gigabytes a day over the site's (often metered LTE) link and disturb
# the cameras' own uploads; the dashboard and `diag run` measure it when an installer is there.
# phone: it reads what a phone's page posted to `diag phone` in the same process, which a cron run
# never has, so it would be listed as skipped on every run.
CRON_EXCLUDED = ("bandwidth", "phone")
# With --wait and no value, wait this long for an earlier run to finish, s: longer than any run's
# deadline, shorter than the usual 5-minute cron period.
DEFAULT_WAIT_S = 120.0


EPILOG = N_("""exit codes (monitoring-plugin conventions):
  0 OK        every device online
  1 WARNING   some device degraded
  2 CRITICAL  some device offline (grey in the app)
  3 UNKNOWN   the run itself failed: a usage error, an unknown check in --only, no check ran,
              a bad site file, another run holds the lock, the history cannot be written
""")


class PluginParser(argparse.ArgumentParser):
    """argparse for a monitoring plugin: a usage error is UNKNOWN (3) with one status line.

    argparse's own way (the message on stderr, exit 2) reads as CRITICAL "(No output)" in
    Nagios and Icinga; the guidelines ask for UNKNOWN and a line on stdout.
    """

    _lang = "en"

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        from diag.cli import help_lang

        argv = list(sys.argv[1:] if args is None else args)
        # The language of the error line, before the arguments are known to be valid.
        self._lang = help_lang(argv)
        ns, extras = super().parse_known_args(argv, namespace)
        if extras:
            # Left over here, they would reach the top-level parser and its exit 2.
            from diag.i18n import gettext

            # argparse's own words for it (diag/locale/pl/LC_MESSAGES/cli.po).
            self.error(gettext("unrecognized arguments: %s", self._lang) % " ".join(extras))
        return ns, extras

    def error(self, message: str) -> NoReturn:
        from diag.i18n import msg

        self.print_usage(sys.stderr)
        print(_line(UNKNOWN, msg("usage error: {error}", error=message).render(self._lang)))
        sys.exit(UNKNOWN)


class PrintRules(argparse.Action):
    """``--print-rules``: like ``--version``, answered before the other arguments are needed."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        help_text = kwargs.get("help")
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=str(help_text)
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from diag.monitor.rules import shipped_rules

        try:
            sys.stdout.write(shipped_rules())
            sys.stdout.flush()
        except BrokenPipeError:
            # `diag monitor --print-rules | head`: the reader left; not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        parser.exit(OK)


def add_arguments(p: argparse.ArgumentParser) -> None:
    # The parser `diag` made for this subcommand becomes a plugin parser: its usage errors are
    # UNKNOWN with a status line (only the class changes; it adds no state of its own).
    p.__class__ = PluginParser
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("-V", "--version", action="version", version=f"diag monitor {_version()}")
    p.add_argument(
        "--print-rules",
        action=PrintRules,
        help=N_("print the Prometheus alert and recording rules (docs/metrics.md) and exit"),
    )
    p.add_argument("--site", required=True, metavar=N_("FILE"), help=N_("site config (TOML)"))
    p.add_argument(
        "--db", metavar=N_("FILE"), help=N_("history database (default: the user data dir)")
    )
    p.add_argument(
        "--prometheus", metavar=N_("FILE"), help=N_("write a textfile-collector .prom file")
    )
    p.add_argument(
        "--pushgateway", metavar=N_("URL"), help=N_("push the metrics to this Pushgateway")
    )
    p.add_argument(
        "--webhook",
        metavar=N_("URL"),
        action="append",
        default=[],
        help=N_("POST state changes here (repeatable)"),
    )
    p.add_argument(
        "--webhook-format",
        choices=("auto", "generic", "ntfy", "slack"),
        default="auto",
        help=N_("payload format (auto: by the URL)"),
    )
    p.add_argument(
        "--confirm-after",
        type=at_least(1, int),
        default=2,
        metavar="N",
        help=N_("runs that must agree before a state change is alerted"),
    )
    # At least 1: a retention of 0 or less would delete the whole history, this run included.
    p.add_argument(
        "--retention-days", type=at_least(1, int), default=DEFAULT_RETENTION_DAYS, metavar=N_("D")
    )
    p.add_argument(
        "--wait",
        nargs="?",
        type=at_least(0.0, float),
        const=DEFAULT_WAIT_S,
        default=None,
        metavar=N_("S"),
        help=N_("wait for a running monitor instead of exiting UNKNOWN"),
    )
    p.add_argument("--only", metavar=N_("ID,.."), help=N_("run only these checks"))
    p.add_argument(
        "--all-checks",
        action="store_true",
        # The CRON_EXCLUDED checks by name (a test keeps the two alike).
        help=N_("also run bandwidth and phone (the speed test moves data over the link)"),
    )
    p.add_argument(
        "-t",
        "--timeout",
        "--deadline",
        dest="deadline",
        type=at_least(0.1, float),
        default=None,
        metavar=N_("S"),
        help=N_("whole-run deadline, s (-t as the plugin guidelines name it)"),
    )
    p.add_argument("--json", metavar=N_("FILE"), help=N_("also write the run as JSON"))
    p.add_argument(
        "--html", metavar=N_("FILE"), help=N_("also write the HTML report with the history section")
    )
    p.add_argument("--lang", choices=("en", "pl"), help=N_("language of the status line"))


def at_least(low: float, kind: type[T]) -> Callable[[str], T]:
    """An argparse type: a finite ``kind`` number no smaller than ``low`` (else a usage error)."""

    def parse(text: str) -> T:
        from diag.i18n import PARSE_LANG, msg

        try:
            value = kind(text)
        except ValueError:
            why = msg("{value} is not a number", value=repr(text))
            raise argparse.ArgumentTypeError(why.render(PARSE_LANG.get())) from None
        if not math.isfinite(float(value)) or float(value) < low:
            why = msg("{value}: must be at least {low}", value=repr(text), low=low)
            raise argparse.ArgumentTypeError(why.render(PARSE_LANG.get()))
        return value

    return parse


def _version() -> str:
    from diag import __version__

    return __version__


def default_db(site_name: str) -> Path:
    from platformdirs import user_data_dir

    slug = re.sub(r"[^a-z0-9]+", "-", site_name.lower()).strip("-") or "site"
    return Path(user_data_dir("diag")) / f"history-{slug}.sqlite"


def _line(code: int, text: str, perf: str = "") -> str:
    from diag.reports.terminal import printable

    # One line, whatever the text carries (an exception text, a device name): a newline would
    # end the plugin output early and an escape sequence would act on the terminal.
    return f"DIAG {LABEL[code]} - {printable(text)}" + (f" | {perf}" if perf else "")


def main(args: argparse.Namespace) -> int:
    try:
        line, code = _monitor(args)
    except KeyboardInterrupt:
        line, code = _line(UNKNOWN, "interrupted"), UNKNOWN
    except Exception as exc:
        # Whatever went wrong, the scheduler gets one status line and a code it knows (0-3);
        # diag's own "internal error" exit 4 means nothing to Nagios or Icinga.
        line, code = _line(UNKNOWN, f"internal error: {type(exc).__name__}: {exc}"[:300]), UNKNOWN
    print(line)
    return code


def _monitor(args: argparse.Namespace) -> tuple[str, int]:
    from diag.config import ConfigError, load_site
    from diag.i18n import msg
    from diag.monitor.lock import LockBusy, run_lock
    from diag.monitor.store import Store, StoreError

    try:
        site = load_site(args.site)
    except ConfigError as exc:
        return _line(UNKNOWN, f"bad site config: {exc}"), UNKNOWN
    lang = args.lang or site.lang
    db_path = Path(args.db) if args.db else default_db(site.name)
    try:
        with run_lock(db_path, wait_s=args.wait), Store(db_path) as store:
            return _locked(args, site, store, lang)
    except LockBusy as exc:
        text = msg("another monitor run is in progress ({path})", path=str(exc)).render(lang)
        return _line(UNKNOWN, text), UNKNOWN
    except StoreError as exc:
        text = msg("cannot write the history: {error}", error=str(exc)).render(lang)
        return _line(UNKNOWN, text), UNKNOWN


def _locked(args: argparse.Namespace, site: Site, store: Store, lang: str) -> tuple[str, int]:
    from diag.checks.base import load_checks
    from diag.i18n import Message, msg
    from diag.monitor import alerts, exporters
    from diag.monitor.history import StoreHistory
    from diag.runner import DEFAULT_DEADLINE_S, execute

    registry = load_checks()
    only = select_checks(registry.ids, args.only, args.all_checks)
    if isinstance(only, Message):
        return _line(UNKNOWN, only.render(lang)), UNKNOWN
    run = asyncio.run(
        execute(
            site,
            registry,
            only,
            deadline_s=args.deadline or DEFAULT_DEADLINE_S,
            lang=lang,
            history=StoreHistory(store),
        )
    )
    if not any(c.status in RAN for c in run.checks):
        # Nothing was measured: neither OK nor the devices' last state may be claimed, and an
        # empty run must not enter the history as a sample.
        return _line(UNKNOWN, _no_check_ran(run).render(lang)), UNKNOWN
    store.record(run)
    notes: list[str] = []
    changes = alerts.update(store, alerts.observed(run), run.started_at, args.confirm_after)
    if changes and args.webhook:
        failed = []
        for url in args.webhook:
            fmt = alerts.guess_format(url) if args.webhook_format == "auto" else args.webhook_format
            err = alerts.deliver(url, fmt, site.name, changes, lang)
            if err:
                failed.append(err)
        if failed:
            alerts.revert(store, changes)
            notes.append(msg("alert not delivered: {error}", error=failed[0]).render(lang))
    runs_total = store.runs_recorded()
    # When each grey device's outage began: "since when" for the support team and the alert rule
    # that pages for a device grey longer than the relogin window.
    open_now = store.outages(since=run.started_at)
    grey_since = {o.device: o.start for o in open_now if o.end is None}
    if args.prometheus:
        try:
            exporters.write_textfile(
                run, args.prometheus, runs_total, site=site, offline_since=grey_since
            )
        except OSError as exc:
            notes.append(msg("metrics file not written: {error}", error=str(exc)).render(lang))
    if args.pushgateway:
        try:
            exporters.push(run, args.pushgateway, runs_total, site=site, offline_since=grey_since)
        except OSError as exc:
            notes.append(
                msg("push to the Pushgateway failed: {error}", error=str(exc)).render(lang)
            )
    if args.json:
        from diag.reports import json as rjson

        try:
            rjson.write(run, args.json, lang)
        except OSError as exc:
            notes.append(msg("run JSON not written: {error}", error=str(exc)).render(lang))
    if args.html:
        # Only on request: the report draws charts with matplotlib, which cron runs never load.
        from diag.monitor.timeline import history_section
        from diag.reports.html import write as write_html

        end = run.started_at.date()
        start = end - dt.timedelta(days=364)
        since = dt.datetime.combine(start, dt.time(), dt.UTC)
        section = history_section(store.device_history(since), start, end, lang)
        try:
            write_html(run, args.html, lang, sections=[section])
        except OSError as exc:
            notes.append(msg("report not written: {error}", error=str(exc)).render(lang))
    cutoff = run.started_at - dt.timedelta(days=args.retention_days)
    oldest = store.oldest_run()
    if oldest is not None and oldest < cutoff:
        store.prune(cutoff)
    return _status(run, lang, notes)


def select_checks(
    ids: Sequence[str], only: str | None, all_checks: bool
) -> list[str] | Message | None:
    """The checks a monitor run runs (None: all), or why it cannot run (a usage problem).

    ``--only`` picks exactly (an excluded check too); ``--all-checks`` runs every one; otherwise
    every installed check but ``CRON_EXCLUDED``.
    """
    from diag.i18n import msg

    if only is not None:
        picked = [c.strip() for c in only.split(",") if c.strip()]
        if not picked:
            return msg("--only names no check")
        unknown = [c for c in picked if c not in ids]
        if unknown:
            # A typo in a service definition must not stay green forever.
            return msg("unknown check {id} in --only; see `diag checks`", id=unknown[0])
        return picked
    if all_checks:
        return None
    return [c for c in ids if c not in CRON_EXCLUDED]


def _no_check_ran(run: Run) -> Message:
    from diag.i18n import msg

    if not run.checks:
        return msg("no check ran")
    how = ", ".join(f"{c.check_id} {c.status}" for c in run.checks)
    return msg("no check ran ({checks})", checks=how)


def _status(run: Run, lang: str, notes: list[str]) -> tuple[str, int]:
    from diag.diagnosis.catalog import title_of
    from diag.i18n import msg, render
    from diag.monitor.alerts import STATE_WORD

    n = len(run.devices)
    counts = {
        s: sum(1 for v in run.devices if v.state == s)
        for s in ("online", "degraded", "unknown", "offline")
    }
    code = STATE_EXIT[run.worst_state]
    if n and counts["unknown"] == n:
        # Nothing measured at all: the monitoring-plugin answer is UNKNOWN, not a guess.
        code = UNKNOWN
    text = msg(
        "{site}: {online}/{n} devices online", site=run.site, online=counts["online"], n=n
    ).render(lang)
    bad = [v for v in run.devices if v.state != "online"]
    if bad:
        rank = {"offline": 0, "unknown": 1, "degraded": 2}
        worst = sorted(bad, key=lambda v: rank.get(v.state, 3))
        parts = []
        for v in worst[:3]:
            why = f": {title_of(v.causes[0].id).render(lang)}" if v.causes else ""
            if v.state == "unknown" and v.unmeasured:
                # What could not be measured, naming the check that failed.
                why = f": {v.unmeasured[0].render(lang)}"
            parts.append(f"{v.device} {render(STATE_WORD[v.state], lang)}{why}")
        text += "; " + "; ".join(parts) + ("; …" if len(worst) > 3 else "")
    elif run.site_causes:
        text += "; " + title_of(run.site_causes[0].id).render(lang)
    errors = [c.check_id for c in run.checks if c.status == "error"]
    if errors:
        text += "; " + msg("checks in error: {ids}", ids=", ".join(errors)).render(lang)
    if notes:
        text += "; " + "; ".join(notes)
    # Perfdata: 'label'=value[UOM];warn;crit;min;max (monitoring-plugins guidelines).
    perf = " ".join(
        [
            f"online={counts['online']};;;0;{n}",
            f"degraded={counts['degraded']};0;;0;{n}",
            f"offline={counts['offline']};;0;0;{n}",
            f"unknown={counts['unknown']};0;;0;{n}",
            f"duration={run.duration_s:.3f}s;;;0",
        ]
        + [f"check_{c.check_id}={c.duration_s:.3f}s;;;0" for c in run.checks]
    )
    return _line(code, text.replace("|", "/"), perf), code


if __name__ == "__main__":  # pragma: no cover - for `python -m diag.monitor.command`
    parser = PluginParser(prog="diag monitor")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
