"""The ``diag`` command: parses arguments, calls the library, picks the exit code.

Exit codes of ``diag run`` (by the worst device state): 0 every device online, 1 some degraded,
5 some unknown (not measured), 3 some offline; 2 the site file or the arguments are wrong; 4 an
internal error. Subsystems
(``lab``, ``tui``, ``monitor``, ``report``) keep their own argument definitions in their
``command.py`` so this file stays thin; their heavy imports happen only when they run.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from diag import __version__
from diag.config import ConfigError
from diag.i18n import (
    DEFAULT_LANG,
    LANGS,
    N_,
    PARSE_LANG,
    Message,
    gettext,
    msg,
    normalize_lang,
    person_lang,
    render,
)

if TYPE_CHECKING:
    from diag.model import Site

EXIT_OK, EXIT_DEGRADED, EXIT_USAGE, EXIT_OFFLINE, EXIT_INTERNAL = 0, 1, 2, 3, 4
# A device whose state could not be measured: never 0 (absence of evidence is not health), and not
# 1 either (a script must not read "unknown" as "measured, works badly").
EXIT_UNKNOWN = 5
STATE_EXIT = {
    "online": EXIT_OK,
    "degraded": EXIT_DEGRADED,
    "unknown": EXIT_UNKNOWN,
    "offline": EXIT_OFFLINE,
}

# name -> module with add_arguments(parser) and main(args) -> int
SUBSYSTEMS = {
    "tui": "diag.tui.command",
    "monitor": "diag.monitor.command",
    "history": "diag.monitor.history_command",
    "report": "diag.reports.command",
    "lab": "diag.lab.command",
    "demo": "diag.lab.demo_command",
    "phone": "diag.phone.command",
    "profile": "diag.profiles.command",
    "discover": "diag.devices.command",
}
HELP = {
    "checks": N_("list the installed checks (built-in and third-party)"),
    "run": N_("run the checks on a site and print a summary"),
    "tui": N_("the installer's dashboard"),
    "monitor": N_("one monitoring run for cron (Nagios conventions, history, alerts, Prometheus)"),
    "history": N_("show the monitor's history"),
    "report": N_("render a saved run as HTML"),
    "lab": N_("the site lab in network namespaces (root)"),
    "demo": N_("bring the lab up, show the dashboard (or a report), take it down"),
    "profile": N_("platform profiles: list, show, check one (by name or file)"),
    "discover": N_("find the cameras and recorders on the LAN and draft the site file"),
    "phone": N_("a one-time page the customer's phone opens from a QR code; measures its side"),
}


# What diag is, for `diag --help` (the module docstring above is for developers).
ABOUT = N_(
    "diag tells an installer or support why an IP camera or recorder shows grey (no connection) "
    "in the vendor's app: from a laptop on the site it checks the LAN, the router and its NAT, "
    "the internet link, DNS and the P2P platform, then names the likely cause and what to do, "
    "in English or Polish."
)
FIRST_STEPS = N_(
    "first steps:\n"
    "  diag discover --write site.toml   find the cameras and recorders on this LAN, draft the "
    "site file\n"
    "  diag tui --site site.toml         the dashboard: run every check, see why a device is grey\n"
    "  diag demo                         no site at hand: a lab site with a fault, in the "
    "dashboard (root)\n"
    "\n"
    "every command has examples: diag COMMAND --help"
)
# Examples shown under each command's help: (command line, what it does). A subsystem module may
# declare its own ``EXAMPLES`` with the same shape; it wins over this table, so a new command
# (diag profile, diag phone...) brings its examples with it.
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "checks": (("diag checks", N_("list the checks this installation has")),
               ("diag checks --json", N_("the same, for scripts"))),
    "run": (("diag run --site site.toml", N_("run every check, print devices and causes")),
            ("diag run --site site.toml --html report.html --lang pl",
             N_("and write the report in Polish for the customer")),
            ("diag run --site site.toml --grey ipc2 --deep",
             N_("the app shows ipc2 grey: slow measurements too"))),
    "tui": (("diag tui --site site.toml",
             N_("the dashboard; r re-runs, e exports, ? explains keys")),
            ("diag tui --site site.toml --lang pl --deep",
             N_("in Polish, with deep measurements"))),
    "monitor": (("diag monitor --site site.toml --db history.sqlite",
                 N_("one run for cron: one status line, exit 0/1/2/3")),),
    "history": (("diag history --db history.sqlite --days 7",
                 N_("the last week of device states")),),
    "report": (("diag report --from run.json --html report.html --lang pl",
                N_("render a saved run as HTML, in Polish")),),
    "lab": (("diag lab list", N_("the scenarios the lab can inject")),
            ("diag lab up --scenario dns-failure", N_("build a site with a lying resolver (root)")),
            ("diag lab status --json", N_("its namespaces, addresses and site file")),
            ("diag lab exec -- diag run --site /run/diag-lab/NAME/site.toml",
             N_("run diag inside it")),
            ("diag lab down --all", N_("remove every lab"))),
    "demo": (("diag demo", N_("a lab site with a fault, shown in the dashboard (root)")),
             ("diag demo --scenario router-port-blocking --headless --lang pl",
              N_("no terminal UI: write the report, in Polish"))),
    "discover": (("diag discover", N_("list the devices found on this LAN")),
                 ("diag discover --write site.toml", N_("draft the site file from them"))),
    "phone": (("diag phone --site site.toml",
               N_("show a QR code; the customer's phone opens it")),),
    "profile": (("diag profile list", N_("the platform profiles installed")),
                ("diag profile show NAME", N_("what a profile names (servers, ports)")),
                ("diag profile check my-platform.toml", N_("validate a profile file before use"))),
}  # fmt: skip


FIRST_CONTACT = N_(
    "diag finds why a camera or recorder shows grey in the app.\n"
    "\n"
    "Start here:\n"
    "  diag discover --write site.toml   find the devices on this LAN and draft the site file\n"
    "  diag tui --site site.toml         then run every check in the dashboard\n"
    "  diag demo                         or try it on a lab site first (root)\n"
    "\n"
    "All commands: diag --help"
)


def examples_epilog(name: str, module: object = None, lang: str = DEFAULT_LANG) -> str:
    """The "examples:" block under a command's help (the module's own EXAMPLES first), in
    ``lang``: the command lines stay as typed, what they do is translated."""
    own = getattr(module, "EXAMPLES", None) if module is not None else None
    rows = [(cmd, render(what, lang)) for cmd, what in (own or EXAMPLES.get(name, ()))]
    if not rows:
        return ""
    head = render(N_("examples:"), lang)
    width = max(len(cmd) for cmd, _ in rows)
    if width + max(len(what) for _, what in rows) > 74:
        # Too wide for one line each: the command, then what it does under it.
        return head + "\n" + "\n".join(f"  {cmd}\n      {what}" for cmd, what in rows)
    return head + "\n" + "\n".join(f"  {cmd:<{width}}  {what}" for cmd, what in rows)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help in the person's language: every help string, section heading, the usage
    prefix and a description or epilog that is one message go through ``diag.i18n`` when the
    help is shown (argparse's own words, "options", "show this help message and exit", too)."""

    def __init__(self, prog: str, *, lang: str = DEFAULT_LANG, **kw: Any) -> None:
        super().__init__(prog, **kw)
        self._lang = lang

    def _t(self, text: str | None) -> str | None:
        return gettext(text, self._lang) if text else text

    def start_section(self, heading: str | None) -> None:
        super().start_section(self._t(heading))

    def add_usage(
        self,
        usage: str | None,
        actions: Any,
        groups: Any,
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, self._t("usage: ") if prefix is None else prefix)

    def _format_text(self, text: str) -> str:
        return super()._format_text(self._t(text) or "")

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return self._t(super()._get_help_string(action))

    def _metavar_formatter(
        self, action: argparse.Action, default_metavar: str
    ) -> Callable[[int], tuple[str, ...]]:
        # The placeholders (FILE, COMMAND, NAME) too: marked with N_() where they are given.
        inner = super()._metavar_formatter(action, default_metavar)

        def fmt(size: int) -> tuple[str, ...]:
            return tuple(self._t(part) or part for part in inner(size))

        return fmt


class RawHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The same, keeping the description's and epilog's own line breaks (tables, examples)."""


def localise(parser: argparse.ArgumentParser, lang: str) -> None:
    """``parser`` and every subcommand under it show their help in ``lang`` (a raw description
    stays raw)."""
    raw = issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)  # type: ignore[arg-type]
    parser.formatter_class = functools.partial(
        RawHelpFormatter if raw else HelpFormatter, lang=lang
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                localise(child, lang)


def help_lang(argv: Sequence[str]) -> str:
    """The language of ``--help`` and of usage errors: ``--lang`` anywhere on the command line
    (``--help`` is answered before the other arguments are parsed), else ``person_lang()``."""
    for i, a in enumerate(argv):
        value = argv[i + 1] if a == "--lang" and i + 1 < len(argv) else None
        if a.startswith("--lang="):
            value = a.partition("=")[2]
        # Only a language diag has: `--lang de` is the usage error, said in the person's language.
        if value is not None and value in LANGS:
            return value
    return person_lang()


@contextlib.contextmanager
def argparse_words(lang: str) -> Iterator[None]:
    """argparse's own words (a usage error: "the following arguments are required", "invalid
    choice") in ``lang`` while a command line is parsed.

    argparse looks each one up through its module's ``_`` and ``ngettext`` (gettext's, which has
    no catalogue of diag's) at the moment it reports; for the parse they read diag's catalogues
    (``cli.po``), and are put back after. A word without Polish stays English.
    """
    token = PARSE_LANG.set(lang)
    mod: Any = argparse
    saved = mod._, mod.ngettext
    if lang != DEFAULT_LANG:
        mod._ = lambda text: gettext(text, lang)
        mod.ngettext = lambda one, many, n: gettext(one if n == 1 else many, lang)
    try:
        yield
    finally:
        mod._, mod.ngettext = saved
        PARSE_LANG.reset(token)


def _nested_examples(parser: argparse.ArgumentParser, lang: str) -> None:
    """Subcommands of a subcommand (``diag lab up``) get the examples that start with their
    own command line, from their parent's table."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            if not child.epilog:
                words = child.prog.split()
                top = words[1] if len(words) > 1 else ""
                rows = tuple(r for r in EXAMPLES.get(top, ()) if r[0].startswith(child.prog + " ")
                             or r[0] == child.prog)  # fmt: skip
                if rows and len(words) > 2:
                    child.epilog = examples_epilog("", _Rows(rows), lang)
                    child.formatter_class = argparse.RawDescriptionHelpFormatter
            _nested_examples(child, lang)


class _Rows:
    def __init__(self, rows: tuple[tuple[str, str], ...]) -> None:
        self.EXAMPLES = rows


def _ids(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _deadline(text: str) -> float:
    # nan, inf or a negative deadline would give every check 0.05 s or none at all: refuse it.
    from diag.monitor.command import at_least

    return at_least(0.1, float)(text)


def add_site_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, metavar=N_("FILE"), help=N_("site config (TOML)"))
    p.add_argument("--lang", choices=("en", "pl"), help=N_("language of the output"))


def build_parser(lang: str = DEFAULT_LANG) -> argparse.ArgumentParser:
    """The ``diag`` command line, its help in ``lang`` (``main`` passes ``help_lang(argv)``)."""
    lang = normalize_lang(lang)
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="diag",
        description=textwrap.fill(render(ABOUT, lang), 78),
        epilog=render(FIRST_STEPS, lang),
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"diag {__version__}")
    # Not required: `diag` alone says what to do first instead of an argparse error.
    sub = parser.add_subparsers(dest="command", metavar=N_("COMMAND"))

    def add(name: str, module: object = None) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=HELP.get(name, ""),
            description=HELP.get(name, ""),
            epilog=examples_epilog(name, module, lang),
            formatter_class=raw,
        )

    p = add("checks")
    p.add_argument("--json", action="store_true", help=N_("machine-readable list"))

    p = add("run")
    add_site_args(p)
    p.add_argument(
        "--only", type=_ids, metavar=N_("ID,.."), help=N_("run only these checks (and deps)")
    )
    p.add_argument("--json", metavar=N_("FILE"), help=N_("write the run as JSON"))
    p.add_argument("--html", metavar=N_("FILE"), help=N_("write the HTML report"))
    p.add_argument(
        "--deadline", type=_deadline, default=None, metavar=N_("S"), help=N_("whole-run deadline")
    )
    p.add_argument("--deep", action="store_true", help=N_("slow measurements too (NAT lifetime)"))
    p.add_argument(
        "--grey",
        type=_ids,
        default=[],
        metavar=N_("NAME,.."),
        help=N_("devices the app shows grey (the installer's observation)"),
    )

    for name, module in SUBSYSTEMS.items():
        try:
            mod: Any = importlib.import_module(module)
        except ImportError:
            mod = None
        p = add(name, mod)
        p.set_defaults(subsystem=module)
        try:
            if mod is None:
                raise ImportError(module)
            mod.add_arguments(p)
            own = examples_epilog(name, mod, lang)
            if own and own not in (p.epilog or ""):
                # The module set its own epilog (the monitor's exit codes): examples after it,
                # the module's text translated as the one message it is.
                mine = render(p.epilog, lang) if p.epilog else ""
                p.epilog = f"{mine}\n\n{own}" if mine else own
                p.formatter_class = raw
        except ImportError:
            # A subsystem missing from this build must not break the other commands.
            p.set_defaults(subsystem_missing=module)
    _nested_examples(parser, lang)
    localise(parser, lang)
    return parser


def cmd_checks(args: argparse.Namespace) -> int:
    from diag.checks.base import load_checks

    reg = load_checks()
    if args.json:
        out: dict[str, Any] = {
            "checks": [reg[c].describe() for c in reg.ids],
            "errors": [e.__dict__ for e in reg.errors],
        }
        print(json.dumps(out, indent=2))
        return EXIT_OK
    width = max((len(c) for c in reg.ids), default=4)
    for cid in reg.ids:
        chk = reg[cid]
        needs = ", ".join(chk.needs) or "-"
        label = render(msg("needs: {n}", n=needs))
        print(f"{cid:<{width}}  {render(chk.title)}  [{label}]")
    for e in reg.errors:
        text = msg("failed to load ({value}): {error}", value=e.value, error=e.error)
        print(f"{e.name:<{width}}  {render(text)}", file=sys.stderr)
    return EXIT_OK


def load_site_seen_grey(path: str, grey: Sequence[str]) -> Site:
    """The site file with the installer's ``--grey`` observation (the app shows these grey); a
    name that is no device of the site is a config error naming ``--grey``."""
    from diag.config import load_site, with_observations

    site = load_site(path)
    if grey:
        unknown = [g for g in grey if site.device(g) is None]
        if unknown:
            raise ConfigError(site.path, "--grey", f"no device named {unknown[0]!r} in the site")
        site = with_observations(site, {g: True for g in grey})
    return site


def cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from diag.checks.base import load_checks
    from diag.reports import save
    from diag.reports.terminal import summary_table
    from diag.runner import DEFAULT_DEADLINE_S, execute

    site = load_site_seen_grey(args.site, args.grey)
    reg = load_checks()
    lang = args.lang or site.lang
    for e in reg.errors:
        # A broken plugin must not stop the run; say so, the other checks go on.
        _err(msg("check {name} failed to load: {error}", name=e.name, error=e.error), lang)
    if args.only:
        unknown = [c for c in args.only if c not in reg]
        if unknown:
            _err(msg("unknown check {id}; see `diag checks`", id=unknown[0]), lang)
            return EXIT_USAGE
    run = asyncio.run(
        execute(
            site,
            reg,
            args.only,
            deadline_s=args.deadline or DEFAULT_DEADLINE_S,
            deep=args.deep,
            lang=lang,
        )
    )
    print(summary_table(run, lang))
    try:
        save(run, lang, args.json, args.html, print)
    except OSError as exc:
        _err(msg("cannot write {path}: {error}", path=exc.filename, error=exc.strerror), lang)
        return EXIT_USAGE
    return STATE_EXIT[run.worst_state]


def _err(message: Message, lang: str | None = None) -> None:
    from diag.reports.terminal import printable

    # Errors quote what they got (a site file's key, an exception's text): shown, never acted on.
    print(f"diag: {printable(render(message, lang or DEFAULT_LANG))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    words = help_lang(argv)
    parser = build_parser(words)
    with argparse_words(words):
        args = parser.parse_args(argv)
    lang = getattr(args, "lang", None)
    if args.command is None:
        # `diag` alone: a newcomer's first contact. Say what diag is and what to type first.
        print(render(msg(FIRST_CONTACT), person_lang()))
        return EXIT_USAGE
    try:
        if args.command == "checks":
            return cmd_checks(args)
        if args.command == "run":
            return cmd_run(args)
        if getattr(args, "subsystem_missing", None):
            _err(msg("{command} is not available in this build", command=args.command), lang)
            return EXIT_INTERNAL
        module = importlib.import_module(args.subsystem)
        rc: int = module.main(args)
        return rc
    except ConfigError as exc:
        _err(msg("bad site config: {error}", error=str(exc)), lang)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `diag history --json | head`: the reader left; not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        # Exit 1 means "degraded" to cron and scripts: an internal error must not look like it.
        _err(msg("internal error: {error}", error=f"{type(exc).__name__}: {exc}"), lang)
        if os.environ.get("DIAG_DEBUG"):
            raise
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
