"""`diag lab` and `diag demo` explain every option in --help (no bare `--devices N`)."""

from __future__ import annotations

import argparse

import pytest

from diag.lab import command, demo_command


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    out: list[argparse.Action] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _actions(sub)
        elif not isinstance(action, argparse._HelpAction) and action.option_strings:
            out.append(action)
    return out


@pytest.mark.parametrize("module", [command, demo_command], ids=["lab", "demo"])
def test_every_option_has_help(module: object) -> None:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    bare = [a.option_strings[0] for a in _actions(parser) if not a.help]
    assert bare == []
