"""``diag monitor`` as a monitoring plugin: every way a run can fail to say something is UNKNOWN.

One test per rule of the Monitoring Plugins guidelines the monitor follows: a usage error, an
unknown check in ``--only``, a run in which no check ran exit 3 with one status line on stdout
naming the problem; ``--help`` and ``--version`` print to stdout and exit 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest_helpers import plugin_env  # type: ignore[import-not-found]

from diag import __version__
from diag.checks.base import load_checks
from diag.i18n import Message
from diag.monitor.command import select_checks
from diag.monitor.store import Store


def monitor(site: Path, *args: str, states: dict[str, object] | None = None) -> tuple[int, str]:
    tmp = site.parent
    (tmp / "states.json").write_text(json.dumps(states or {}))
    r = subprocess.run(
        [sys.executable, "-m", "diag.cli", "monitor", *args],
        capture_output=True,
        text=True,
        env=plugin_env(tmp),
        timeout=60,
        cwd=tmp,
    )
    return r.returncode, r.stdout


def one_unknown_line(code: int, out: str) -> str:
    assert code == 3, out
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("DIAG UNKNOWN - "), out
    return lines[0]


def db_args(site: Path) -> list[str]:
    return ["--site", str(site), "--db", str(site.parent / "h.sqlite")]


def test_missing_required_argument_is_unknown_on_stdout(site: Path) -> None:
    line = one_unknown_line(*monitor(site))
    assert "usage error" in line and "--site" in line


def test_bad_value_is_unknown_naming_the_option(site: Path) -> None:
    line = one_unknown_line(*monitor(site, *db_args(site), "--confirm-after", "zero"))
    assert "--confirm-after" in line and "zero" in line


def test_bad_choice_is_unknown(site: Path) -> None:
    line = one_unknown_line(*monitor(site, *db_args(site), "--webhook-format", "irc"))
    assert "--webhook-format" in line and "irc" in line


def test_unrecognized_argument_is_unknown(site: Path) -> None:
    line = one_unknown_line(*monitor(site, *db_args(site), "--warning", "3"))
    assert "unrecognized arguments: --warning 3" in line


def test_usage_error_line_in_polish(site: Path) -> None:
    line = one_unknown_line(*monitor(site, "--lang", "pl", "--retention-days", "-1"))
    assert "błąd wywołania" in line and "--retention-days" in line


def test_unknown_check_in_only_is_unknown(site: Path) -> None:
    line = one_unknown_line(*monitor(site, *db_args(site), "--only", "fakehb,nosuchcheck"))
    assert "unknown check nosuchcheck" in line
    assert (
        not (site.parent / "h.sqlite").exists() or Store(site.parent / "h.sqlite").run_count() == 0
    )


def test_empty_only_is_unknown(site: Path) -> None:
    line = one_unknown_line(*monitor(site, *db_args(site), "--only", " , "))
    assert "--only names no check" in line


def test_run_in_which_every_check_skipped_is_unknown_and_not_recorded(site: Path) -> None:
    prom = site.parent / "diag.prom"
    line = one_unknown_line(
        *monitor(
            site,
            *db_args(site),
            "--only",
            "fakehb",
            "--prometheus",
            str(prom),
            states={"@skip": True},
        )
    )
    assert "no check ran (fakehb skip)" in line
    # no sample and no fresh metrics: the staleness alert sees the missing run
    assert Store(site.parent / "h.sqlite").run_count() == 0
    assert not prom.exists()


def test_run_in_which_the_only_check_raised_is_unknown(site: Path) -> None:
    line = one_unknown_line(
        *monitor(site, *db_args(site), "--only", "fakehb", states={"@raise": True})
    )
    assert "no check ran (fakehb error)" in line


def test_a_check_that_ran_is_not_unknown(site: Path) -> None:
    code, out = monitor(site, *db_args(site), "--only", "fakehb")
    assert code == 0 and out.startswith("DIAG OK - "), out


def test_help_prints_usage_and_exit_codes_and_exits_ok(site: Path) -> None:
    code, out = monitor(site, "--help")
    assert code == 0
    assert out.startswith("usage: diag monitor")
    assert "3 UNKNOWN" in out and "--timeout" in out and "--version" in out


def test_version_prints_one_line_and_exits_ok(site: Path) -> None:
    code, out = monitor(site, "--version")
    assert (code, out) == (0, f"diag monitor {__version__}\n")
    assert monitor(site, "-V") == (0, out)


def test_timeout_is_the_deadline(site: Path) -> None:
    line = one_unknown_line(*monitor(site, *db_args(site), "-t", "nan"))
    assert "-t/--timeout/--deadline" in line


def test_cron_run_leaves_out_the_interactive_and_the_heavy_checks() -> None:
    # The installed checks as the monitor finds them: the phone check only reads what a phone
    # posted to `diag phone` in the same process, which a cron run never has.
    ids = load_checks().ids
    assert {"phone", "bandwidth", "heartbeat"} <= set(ids)
    picked = select_checks(ids, None, all_checks=False)
    assert isinstance(picked, list)
    assert "phone" not in picked and "bandwidth" not in picked
    assert set(picked) == set(ids) - {"phone", "bandwidth"}
    # Asked for, they run: --all-checks runs everything, --only picks exactly.
    assert select_checks(ids, None, all_checks=True) is None
    assert select_checks(ids, "phone, heartbeat", all_checks=False) == ["phone", "heartbeat"]
    bad = select_checks(ids, "phnoe", all_checks=False)
    assert isinstance(bad, Message) and "phnoe" in bad.render("en")


def test_usage_error_reads_in_polish_whole(site: Path) -> None:
    # argparse's own words and diag's argument types in the line's language, not only the prefix.
    line = one_unknown_line(*monitor(site, "--lang", "pl", "--retention-days", "-1"))
    assert "'-1': musi wynosić co najmniej 1" in line and "must be" not in line
    line = one_unknown_line(*monitor(site, "--lang=pl", "--site", "s.toml", "--wait", "x"))
    assert "'x' nie jest liczbą" in line
    line = one_unknown_line(*monitor(site, "--lang", "pl"))
    assert "wymagane są argumenty: --site" in line and "required" not in line
    # An unknown --lang is the error itself, said in English (no language chosen otherwise).
    line = one_unknown_line(*monitor(site, "--site", "s.toml", "--lang", "de"))
    assert "invalid choice: 'de'" in line
