"""``diag tui``: arguments reach the dashboard; a bad site file is exit 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tui_fakes import SITE_FILE

from diag import cli
from diag.tui.app import DiagApp


def test_arguments_reach_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_run(self: DiagApp, *a: object, **k: object) -> int:
        seen["config"], seen["lang"] = self.config, self.lang
        return 0

    monkeypatch.setattr(DiagApp, "run", fake_run)
    monkeypatch.setattr("diag.tui.command.has_terminal", lambda: True)
    rc = cli.main(
        [
            "tui",
            "--site",
            str(SITE_FILE),
            "--lang",
            "pl",
            "--only",
            "dns,p2p",
            "--deadline",
            "7.5",
            "--export-dir",
            str(tmp_path),
            "--grey",
            "Yard camera",
        ]
    )
    assert rc == 0
    cfg = seen["config"]
    assert seen["lang"] == "pl"
    assert list(cfg.only) == ["dns", "p2p"]
    assert cfg.deadline_s == 7.5 and cfg.export_dir == tmp_path
    assert cfg.site.name == "Loopback test site" and cfg.registry is None
    assert cfg.site.device("Yard camera").app_shows_grey is True
    assert cfg.site.device("Gate camera").app_shows_grey is None


def test_without_a_terminal_it_says_so_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_run(self: DiagApp, *a: object, **k: object) -> int:
        raise AssertionError("the dashboard must not start without a terminal")

    monkeypatch.setattr(DiagApp, "run", no_run)
    # Under pytest stdout is captured: no terminal, as under cron or in a pipe.
    assert cli.main(["tui", "--site", str(SITE_FILE), "--lang", "pl"]) == 2
    err = capsys.readouterr().err
    assert "diag tui" in err and "diag run" in err and "terminala" in err


def test_grey_names_a_device_or_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tui", "--site", str(SITE_FILE), "--grey", "Nope"]) == 2
    assert "--grey" in capsys.readouterr().err


def test_bad_site_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text('[site]\nname = "x"\n[[devices]]\nname = "a"\nkind = "dvr"\nadded_via = "ip"\n')
    assert cli.main(["tui", "--site", str(bad)]) == 2
    assert "devices[0].kind" in capsys.readouterr().err


def test_help_lists_the_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "diag.cli", "tui", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for opt in ("--site", "--lang", "--deadline", "--only", "--export-dir", "--grey"):
        assert opt in out
