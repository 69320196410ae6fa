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
