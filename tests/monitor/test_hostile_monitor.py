"""Hostile names and values in the monitor's outputs: the status line stays one plugin line, the
Prometheus exposition parses back to the same label values, ``diag history`` prints escapes."""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from diag.i18n import msg
from diag.model import Cause, CheckResult, Fact, Metric, Run, Verdict
from diag.monitor import exporters
from diag.monitor import history_command as hc
from diag.monitor.command import _status
from diag.monitor.store import Store

NASTY = 'cam "1"\\ \nDIAG OK - all fine | x=1\r\x1b[2J\x07\u202e'


def hostile_run() -> Run:
    return Run(
        site=NASTY,
        started_at=dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
        duration_s=1.0,
        checks=(
            CheckResult(
                "wan",
                "error",
                msg("{e}", e=NASTY),
                {"rtt": Metric(math.inf, "ms")},
                (
                    Fact("wan.rtt_ms", math.inf, "ms"),
                    Fact("wan.loss_pct", math.nan, "%"),
                    Fact("wan.jitter_ms", 10**400, "ms"),
                    Fact("wan.gateway_rtt_ms", NASTY, "ms"),
                    Fact("nat.mapping", NASTY),
                    Fact("wan.internet_reachable", "yes"),
                ),
            ),
            CheckResult(
                "plugin",
                "ok",
                msg("ok"),
                {
                    "rtt": Metric(math.inf, "ms"),
                    "loss": Metric(math.nan, "%"),
                    "big": Metric(10**400),
                    "text": Metric(NASTY),
                    "ok": Metric(12.5, "ms"),
                },
            ),
        ),
        devices=(
            Verdict(NASTY, "ipc", "p2p", "offline", "grey", (Cause("device-offline", 0.9),)),
            Verdict("NVR", "nvr", "ip", "degraded", "colour"),
        ),
    )


def test_status_line_is_one_line_without_escapes() -> None:
    line, code = _status(hostile_run(), "en", [f"alert not delivered: {NASTY}"])
    assert code == 2
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x07" not in line
    assert "\u202e" not in line
    # Exactly one perfdata separator: the text's own "|" cannot start a second one.
    assert line.count(" | ") == 1
    assert line.startswith("DIAG CRITICAL - ")
    assert "\\x1b[2J" in line


def test_prometheus_label_values_round_trip() -> None:
    text = generate_latest(exporters.registry_for(hostile_run(), runs_total=2)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    devices = {s.labels["device"] for s in families["diag_device_up"].samples}
    assert devices == {NASTY, "NVR"}
    assert {s.labels["site"] for s in families["diag_info"].samples} == {NASTY}
    measured = {
        name: [s.value for s in f.samples]
        for name, f in families.items()
        if name.startswith(("diag_check_plugin_", "diag_wan_"))
    }
    # Only the finite number is exported; NaN, inf, a huge int and a string are "not measured".
    assert measured == {"diag_check_plugin_ok_seconds": [pytest.approx(0.0125)]}
    # a hostile NAT type is no label value: the label set stays bounded
    assert [s.labels for s in families["diag_nat_info"].samples] == [
        {"site": NASTY, "mapping": "unknown", "filtering": "unknown"}
    ]


def test_history_prints_hostile_device_names_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.sqlite"
    with Store(db) as store:
        store.record(hostile_run())
    args = argparse.Namespace(
        db=str(db), site=None, days=100000, device=None, json=False, lang="en"
    )
    assert hc.main(args) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out


SITE = """
[site]
name = "M"
profile = "loopback"
[profile]
p2p_servers = []
stun_servers = []
dns_names = []
[[devices]]
name = "NVR"
kind = "nvr"
added_via = "ip"
address = "127.0.0.10"
"""


def _args(tmp_path: Path, **over: object) -> argparse.Namespace:
    from diag.monitor.command import add_arguments

    site = tmp_path / "site.toml"
    site.write_text(SITE)
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--site", str(site), "--db", str(tmp_path / "h.sqlite"), "--only", "host"])
    for k, v in over.items():
        setattr(args, k, v)
    return args


def test_unwritable_json_is_a_note_not_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from diag.monitor.command import main

    # Was: FileNotFoundError left the monitor; cli said "internal error", exit 4, no status line.
    code = main(_args(tmp_path, json=str(tmp_path / "missing" / "run.json")))
    out = capsys.readouterr().out
    # --only host measures no device: UNKNOWN by the state (not by a crash: the line says so).
    assert code in (0, 1, 2, 3) and out.startswith("DIAG ")
    assert "internal error" not in out
    assert "run JSON not written" in out


def test_any_internal_error_is_unknown_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from diag.monitor import command

    def boom(args: argparse.Namespace) -> tuple[str, int]:
        raise RuntimeError("disk on fire\nsecond line \x1b[2J")

    monkeypatch.setattr(command, "_monitor", boom)
    assert command.main(_args(tmp_path)) == command.UNKNOWN
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\x1b" not in out
    assert out.startswith("DIAG UNKNOWN - internal error: RuntimeError: disk on fire")


@pytest.mark.parametrize(
    "argv",
    [
        ["--retention-days", "-1"],
        ["--retention-days", "0"],
        ["--confirm-after", "0"],
        ["--deadline", "nan"],
        ["--deadline", "-3"],
        ["--wait", "-1"],
        ["--retention-days", "ten"],
    ],
)
def test_bad_numbers_are_usage_errors_before_anything_is_touched(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: --retention-days -1 pruned the whole history, the run just recorded included.
    from diag import cli

    db = tmp_path / "h.sqlite"
    with Store(db) as store:
        store.record(hostile_run())
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    with pytest.raises(SystemExit) as exc:
        cli.main(["monitor", "--site", str(site), "--db", str(db), "--only", "host", *argv])
    # UNKNOWN (3) with the status line on stdout, as a monitoring plugin's usage error
    assert exc.value.code == 3
    out = capsys.readouterr().out
    assert out.startswith("DIAG UNKNOWN - usage error") and out.count("\n") == 1
    assert argv[0].lstrip("-") in out
    with Store(db) as store:
        assert store.run_count() == 1


@pytest.mark.parametrize("days", ["10000000000", "0", "-5", "x"])
def test_history_days_out_of_range_is_a_usage_error(
    tmp_path: Path, days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Was: --days 10000000000 overflowed timedelta: "internal error", exit 4.
    from diag import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["history", "--db", str(tmp_path / "h.sqlite"), "--days", days])
    assert exc.value.code == 2
    assert "--days" in capsys.readouterr().err


def test_history_section_escapes_hostile_device_names(tmp_path: Path) -> None:
    from diag.monitor.timeline import section_from_db
    from diag.reports import html

    bad = "<img src=x onerror=alert(1)>"
    run = hostile_run()
    run = Run(
        run.site,
        run.started_at,
        run.duration_s,
        run.checks,
        (Verdict(bad, "ipc", "p2p", "offline", "grey", (Cause("device-offline", 0.9),)),),
    )
    db = tmp_path / "h.sqlite"
    with Store(db) as store:
        store.record(run)
    section = section_from_db(str(db), "pl", now=run.started_at)
    page = html.render(run, "pl", sections=[section])
    assert bad not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in str(section)
