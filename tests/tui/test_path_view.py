"""The dashboard's path pane: the same model as the report's SVG, as text, in both languages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
from saved_runs import load

from diag.reports.path import path_model
from diag.tui.widgets.path_view import path_text


def line_of(text: str, word: str) -> str:
    return next(line for line in text.splitlines() if word in line)


@pytest.mark.parametrize(
    ("scenario", "lang", "where", "what"),
    [
        ("router-port-blocking", "en", "router", "blocks ports 32100/udp"),
        ("dns-failure", "pl", "DNS", "podaje fałszywe adresy"),
        ("device-no-power", "en", "ipc2", "silent: no answer on the LAN"),
        ("data-plan-exhausted", "pl", "operator", "portal operatora"),
        ("low-bandwidth", "en", "loss", "upload"),
    ],
)
def test_the_culprit_is_flagged_with_its_mark(
    scenario: str, lang: str, where: str, what: str
) -> None:
    text = path_text(path_model(load(scenario)), lang).plain
    assert what in text
    if scenario != "low-bandwidth":
        assert line_of(text, where).lstrip(" ├└─").startswith("⚠"), text
    else:
        # The uplink is the culprit: its link line carries the mark.
        assert "⚠" in line_of(text, "Mbit/s")


def test_healthy_path_flags_nothing() -> None:
    text = path_text(path_model(load("healthy")), "pl").plain
    body = text.rsplit("\n\n", 1)[0]  # without the legend line
    assert "⚠" not in body and "✗" not in body
    assert "0,1 ms" in text or "ms" in text


def test_every_device_has_a_branch() -> None:
    run = load("radio-link-interference")
    text = path_text(path_model(run), "en").plain
    for v in run.devices:
        assert "─  " in line_of(text, f" {v.device}")
