"""The shipped Prometheus rules: valid, current with the catalogue, unit-tested by promtool."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from diag.diagnosis.catalog import CATALOG
from diag.monitor import rules

HERE = Path(__file__).parent
SHIPPED = Path(rules.__file__).parent / "prometheus" / rules.RULES_FILE


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_shipped_rules_are_valid() -> None:
    r = promtool("check", "rules", str(SHIPPED))
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    r = promtool("test", "rules", "diag_rules_test.yml", cwd=HERE / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_shipped_rules_are_current_with_the_catalogue() -> None:
    assert SHIPPED.read_text(encoding="utf-8") == rules.render_rules(), (
        "the catalogue or its Polish changed: run `python -m diag.monitor.rules --write`"
    )


def test_every_cause_has_its_alerts_with_a_fix_in_english_and_polish() -> None:
    text = rules.render_rules()
    blocks = text.split("      - alert: ")[1:]
    per: dict[tuple[str, str], str] = {}
    for b in blocks:
        name = b.split("\n", 1)[0]
        cause = re.search(r'^ {10}cause: "([^"]+)"', b, re.M)
        assert cause, b
        per[(name, cause.group(1))] = b
    for cid, entry in CATALOG.items():
        for alert in ("DiagDeviceGrey", "DiagNewCause") + (
            ("DiagSiteDown",) if entry.scope == "site" else ()
        ):
            b = per[(alert, cid)]
            fix = re.search(r'^ {10}fix: "(.*)"$', b, re.M)
            fix_pl = re.search(r'^ {10}fix_pl: "(.*)"$', b, re.M)
            assert fix and fix_pl and fix.group(1) and fix.group(1) != fix_pl.group(1), b
    for alert in ("DiagDeviceGrey", "DiagSiteDown", "DiagDeviceUnknown", "DiagMonitorRunsMissing"):
        assert (alert, "none") in per


def test_print_rules_prints_the_shipped_file_without_a_site() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "diag.cli", "monitor", "--print-rules"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == SHIPPED.read_text(encoding="utf-8")


def test_timing_can_be_shortened_for_a_test_prometheus() -> None:
    short = rules.render_rules(rules.Timing(site_down_for="0s", stale_after_s=5))
    assert "for: 10m" not in short and "site:diag_last_run:age_seconds > 5" in short
