"""First contact: `diag --help` says what diag is, every command's help has an example, and
`diag` alone says what to do first (in the user's language)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from diag import cli


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out.append(child)
                out.extend(all_parsers(child))
    return out


def test_top_help_says_what_diag_is() -> None:
    text = cli.build_parser().format_help()
    assert "shows grey" in text and "P2P platform" in text
    assert "parses arguments" not in text  # not the developers' module docstring
    assert "diag discover" in text and "diag demo" in text


def test_every_command_and_subcommand_has_an_example() -> None:
    parsers = all_parsers(cli.build_parser())
    names = {p.prog for p in parsers}
    assert {"diag run", "diag tui", "diag lab", "diag lab up", "diag demo"} <= names
    missing = [
        p.prog
        for p in parsers
        if "examples:" not in p.format_help() or f"\n  {p.prog}" not in p.format_help()
    ]
    assert not missing, f"no example in the help of: {missing}"


def test_a_commands_own_examples_win() -> None:
    class Module:
        EXAMPLES = (("diag newthing --fast", "do the new thing quickly"),)

    text = cli.examples_epilog("newthing", Module())
    assert text == "examples:\n  diag newthing --fast  do the new thing quickly"
    assert cli.examples_epilog("no-such-command") == ""


@pytest.mark.parametrize(("lang", "word"), [("C.UTF-8", "Start here"), ("pl_PL.UTF-8", "Od czego")])
def test_diag_alone_says_what_to_do_first(lang: str, word: str) -> None:
    env = {"LANG": lang, "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli"], capture_output=True, text=True, env=env, check=False
    )
    assert res.returncode == cli.EXIT_USAGE
    assert word in res.stdout and "diag discover" in res.stdout and "diag demo" in res.stdout
    assert "error" not in res.stderr


def _norm(text: str) -> str:
    # argparse wraps help at spaces: compare with the line breaks folded.
    return " ".join(text.split())


def _pairs() -> list[tuple[argparse.ArgumentParser, argparse.ArgumentParser]]:
    en, pl = all_parsers(cli.build_parser("en")), all_parsers(cli.build_parser("pl"))
    assert [p.prog for p in en] == [p.prog for p in pl]
    return [(cli.build_parser("en"), cli.build_parser("pl")), *zip(en, pl, strict=True)]


def test_every_help_string_of_every_command_reads_in_polish() -> None:
    from diag.i18n import gettext

    untranslated = []
    for en, pl in _pairs():
        text_en, text_pl = _norm(en.format_help()), _norm(pl.format_help())
        for action in en._actions:
            help_en = action.help
            if not help_en or help_en == argparse.SUPPRESS:
                continue
            help_pl = gettext(help_en, "pl")
            if help_pl == help_en:
                untranslated.append(f"{en.prog}: {help_en!r}")
                continue
            assert _norm(help_en) in text_en, (en.prog, help_en)
            assert _norm(help_pl) in text_pl and _norm(help_en) not in text_pl, (pl.prog, help_en)
            # The placeholders (FILE, NAME, COMMAND) as well, where they are not the same word.
            metavar = action.metavar if isinstance(action.metavar, str) else None
            if metavar and gettext(metavar, "pl") != metavar:
                assert f" {gettext(metavar, 'pl')}" in text_pl, (pl.prog, metavar)
                assert f" {metavar}" not in text_pl, (pl.prog, metavar)
                assert f" {metavar}" in text_en, (en.prog, metavar)
        # argparse's own words and the examples' heading, too.
        assert text_pl.startswith("użycie: ") and "opcje:" in text_pl, pl.prog
        assert "options:" not in text_pl and "show this help" not in text_pl, pl.prog
        if "przykłady:" not in text_pl:
            assert "examples:" not in text_en, pl.prog
    assert not untranslated, "help without Polish (diag/locale/pl/LC_MESSAGES/cli.po):\n" + (
        "\n".join(untranslated)
    )


def test_descriptions_and_examples_read_in_polish() -> None:
    top = cli.build_parser("pl").format_help()
    assert "dlaczego kamera IP" in top and "pierwsze kroki:" in top
    run = next(p for p in all_parsers(cli.build_parser("pl")) if p.prog == "diag run")
    text = run.format_help()
    assert "uruchom testy w obiekcie" in text  # the description
    assert "i zapisz raport po polsku dla klienta" in text  # an example's words
    assert "diag run --site site.toml --html report.html --lang pl" in text  # typed as is
    monitor = next(p for p in all_parsers(cli.build_parser("pl")) if p.prog == "diag monitor")
    assert "kody wyjścia" in monitor.format_help()  # the monitor's own epilog


def test_monitor_help_names_the_checks_cron_leaves_out() -> None:
    from diag.monitor.command import CRON_EXCLUDED

    monitor = next(p for p in all_parsers(cli.build_parser()) if p.prog == "diag monitor")
    (all_checks,) = (a for a in monitor._actions if "--all-checks" in a.option_strings)
    assert all_checks.help is not None
    assert all(c in all_checks.help for c in CRON_EXCLUDED)


def _diag(args: list[str], code: int, **env: str) -> subprocess.CompletedProcess[str]:
    """``diag ARGS`` in a clean environment (only ``env``'s language variables), exit ``code``."""
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
        timeout=60,
    )
    assert res.returncode == code, res.stderr
    return res


def _help(args: list[str], **env: str) -> str:
    return _diag(args, 0, **env).stdout


@pytest.mark.parametrize(
    ("args", "env", "polish"),
    [
        (["run", "--help"], {}, False),
        (["run", "--help"], {"DIAG_LANG": "pl"}, True),
        (["run", "--help"], {"LANG": "pl_PL.UTF-8"}, True),
        (["run", "--help"], {"LC_ALL": "pl_PL.UTF-8", "LANG": "en_US.UTF-8"}, True),
        # --lang wins, even after --help (answered before the rest is parsed).
        (["run", "--help", "--lang", "en"], {"DIAG_LANG": "pl"}, False),
        (["run", "--lang=pl", "--help"], {}, True),
        (["monitor", "--help"], {"DIAG_LANG": "pl"}, True),
        (["--help"], {"LANG": "pl_PL.UTF-8"}, True),
    ],
)
def test_help_follows_the_language_choice(
    args: list[str], env: dict[str, str], polish: bool
) -> None:
    text = _help(args, **env)
    assert text.startswith("użycie: " if polish else "usage: "), text[:80]
    assert ("opcje:" in text) is polish and ("options:" in text) is not polish


def test_person_lang_order() -> None:
    from diag.i18n import person_lang

    assert person_lang({}) == "en"
    assert person_lang({"LANG": "pl_PL.UTF-8"}) == "pl"
    assert person_lang({"LANG": "pl_PL.UTF-8", "LC_ALL": "C"}) == "en"
    assert person_lang({"DIAG_LANG": "pl", "LC_ALL": "en_GB.UTF-8"}) == "pl"
    assert person_lang({"DIAG_LANG": "xx"}) == "en"


def test_usage_errors_follow_the_language_choice() -> None:
    def err(*args: str, **env: str) -> str:
        return _diag(list(args), cli.EXIT_USAGE, **env).stderr

    text = err("run", DIAG_LANG="pl")
    assert "użycie: diag run" in text and "błąd: wymagane są argumenty: --site" in text
    text = err("run", "--site", "s.toml", "--deadline", "nan", LANG="pl_PL.UTF-8")
    assert "musi wynosić co najmniej 0,1" in text
    assert "the following arguments are required" in err("run")
    # The parse put argparse's words back: a parser built after speaks English again.
    with cli.argparse_words("pl"):
        pass
    parser = argparse.ArgumentParser(prog="x", exit_on_error=False)
    parser.add_argument("--n", type=int)
    with pytest.raises(argparse.ArgumentError, match="invalid int value"):
        parser.parse_args(["--n", "z"])
