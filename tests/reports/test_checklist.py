"""The grey devices' fix steps as a printable checklist, in both languages."""

from __future__ import annotations

from saved_runs import load

from diag.i18n import render
from diag.reports.checklist import NONE, checklist_text
from diag.reports.sample import sample_run


def test_each_grey_device_with_its_steps_and_site_steps_once() -> None:
    run = load("device-no-power+dns-failure")
    text = checklist_text(run, "pl")
    assert text.startswith("Lista kontrolna: ")
    assert "ipc2 — kamera" in text and "[ ] Sprawdź zasilacz" in text
    # The site-wide cause's steps are listed once, not under every device it explains.
    assert text.count("[ ] Ustaw w routerze (lub w urządzeniach) niezawodny serwer DNS.") == 1
    assert "Dla całego obiektu" in text


def test_a_healthy_site_has_nothing_to_fix() -> None:
    assert render(NONE, "en") in checklist_text(load("healthy"), "en")


def test_hostile_names_are_printable() -> None:
    text = checklist_text(sample_run(4, hostile_name="cam\x1b[2J\u202e"), "en")
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b" in text  # the name is there, its escape shown
