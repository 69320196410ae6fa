"""Prometheus export: the series of docs/metrics.md, in base units, linted by promtool."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from conftest_helpers import make_run  # type: ignore[import-not-found]
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from diag.config import load_site
from diag.i18n import msg
from diag.model import CheckResult, Fact, Metric, Run
from diag.monitor import exporters

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
DOC = Path(__file__).parents[2] / "docs" / "metrics.md"
SITE = ("site", "Test site")
Key = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: str) -> dict[Key, float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def key(name: str, **labels: str) -> Key:
    return (name, tuple(sorted({"site": "Test site", **labels}.items())))


def promtool_lint(text: str) -> str:
    r = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    return (r.stdout + r.stderr).strip() if r.returncode else ""


def test_textfile_answers_the_support_questions_in_base_units(tmp_path: Path) -> None:
    run = make_run({"cam1": "offline", "cam2": "online"}, T0)
    path = tmp_path / "diag.prom"
    since = {"cam1": T0 - dt.timedelta(minutes=20)}
    exporters.write_textfile(run, str(path), runs_total=7, offline_since=since)
    got = samples(path.read_text())
    # which devices are grey, since when, why
    assert got[key("diag_device_up", device="cam1")] == 0
    assert got[key("diag_device_up", device="cam2")] == 1
    assert got[key("diag_device_state", device="cam1", state="offline")] == 1
    assert got[key("diag_device_state", device="cam1", state="online")] == 0
    since_key = key("diag_device_offline_since_timestamp_seconds", device="cam1")
    assert got[since_key] == since["cam1"].timestamp()
    assert key("diag_device_offline_since_timestamp_seconds", device="cam2") not in got
    assert got[key("diag_device_cause", device="cam1", cause="device-no-power")] == 0.9
    info = key("diag_device_info", device="cam1", kind="ipc", added_via="p2p-account")
    assert got[info] == 1
    # the link, in base units
    assert got[key("diag_wan_loss_ratio")] == pytest.approx(0.015)
    assert got[key("diag_wan_rtt_seconds")] == pytest.approx(0.040)
    assert got[key("diag_wan_internet_up")] == 1
    assert got[key("diag_upload_bytes_per_second")] == pytest.approx(1.5e6 / 8)
    assert got[key("diag_upload_needed_bytes_per_second")] == pytest.approx(4e6 / 8)
    assert got[key("diag_dns_lookup_max_seconds", resolver="site")] == pytest.approx(0.030)
    assert got[key("diag_nat_info", mapping="EIM", filtering="APDF")] == 1
    assert got[key("diag_nat_cgnat")] == 0
    assert got[key("diag_stun_rtt_seconds")] == pytest.approx(0.020)
    # kernel counters are counters
    assert got[key("diag_host_interface_errors_total", direction="in")] == 3
    assert got[key("diag_host_interface_drops_total", direction="out")] == 1
    assert got[key("diag_host_interface_speed_bytes_per_second")] == pytest.approx(100e6 / 8)
    assert got[key("diag_check_status", check="bandwidth", status="warn")] == 1
    assert got[key("diag_check_status", check="bandwidth", status="ok")] == 0
    assert got[key("diag_runs_total")] == 7
    assert got[key("diag_run_duration_seconds")] == 1.25
    assert got[key("diag_last_run_timestamp_seconds")] == T0.timestamp()
    # not measured in this run: absent, never a made-up zero
    assert key("diag_wan_jitter_seconds") not in got
    assert key("diag_download_bytes_per_second") not in got
    assert not list(tmp_path.glob("*.tmp*")), "atomic write leaves no temp file"


def test_no_created_series_no_catch_alls_and_bounded_labels() -> None:
    text = generate_latest(exporters.registry_for(make_run({"cam1": "offline"}, T0), 3)).decode()
    names = {s[0] for s in samples(text)}
    assert not [n for n in names if n.endswith("_created")]
    assert not [n for n in names if n.startswith("diag_check_metric")]
    allowed = {"site", "device", "cause", "check", "state", "status", "kind", "added_via",
               "mapping", "filtering", "direction", "resolver", "version"}  # fmt: skip
    labels = {k for _, ls in samples(text) for k, _ in ls}
    assert labels <= allowed
    # every family exported is documented in the table (or is a plugin's own)
    assert names <= set(exporters.SERIES) | {n for n in names if n.startswith("diag_check_")}


def test_site_thresholds_and_relogin_window(tmp_path: Path) -> None:
    p = tmp_path / "site.toml"
    p.write_text(
        '[site]\nname = "Test site"\n[profile]\nheartbeat_interval_s = 30\np2p_servers = []\n'
        "stun_servers = []\ndns_names = []\n[thresholds]\nloss_pct = 3\nrtt_ms = 200\n"
        '[[devices]]\nname = "cam1"\nkind = "ipc"\nadded_via = "p2p"\naddress = "127.0.0.5"\n'
    )
    site = load_site(str(p))
    text = generate_latest(exporters.registry_for(make_run({"cam1": "online"}, T0), site=site))
    got = samples(text.decode())
    assert got[key("diag_threshold_loss_ratio")] == pytest.approx(0.03)
    assert got[key("diag_threshold_rtt_seconds")] == pytest.approx(0.2)
    # 3 heartbeats of 30 s + one 2 s login slot for the one P2P device
    assert got[key("diag_relogin_window_seconds")] == pytest.approx(92.0)


def test_unknown_nat_behaviour_is_a_bounded_label() -> None:
    run = make_run({"cam1": "online"}, T0)
    odd = CheckResult("stun", "ok", msg("x"), {}, (Fact("nat.mapping", "weird stuff"),))
    run = Run(run.site, T0, 1.0, (odd,), run.devices)
    got = samples(generate_latest(exporters.registry_for(run)).decode())
    assert got[key("diag_nat_info", mapping="unknown", filtering="unknown")] == 1


def test_third_party_metrics_get_their_own_series() -> None:
    plugin = CheckResult(
        "solar-battery",
        "ok",
        msg("ok"),
        {
            "charge": Metric(87, "%"),
            "link_rtt": Metric(35, "ms"),
            "has spaces": Metric(1, ""),
            "cycles": Metric(12, ""),
            "odd_unit": Metric(3, "furlongs"),
        },
    )
    run = Run("Test site", T0, 1.0, (plugin,))
    text = generate_latest(exporters.registry_for(run)).decode()
    got = samples(text)
    assert got[key("diag_check_solar_battery_charge_ratio")] == pytest.approx(0.87)
    assert got[key("diag_check_solar_battery_link_rtt_seconds")] == pytest.approx(0.035)
    assert got[key("diag_check_solar_battery_cycles")] == 12
    assert not [n for n, _ in got if "spaces" in n or "odd_unit" in n]
    assert promtool_lint(text) == ""


def test_unknown_device_state_has_no_up_series() -> None:
    # The "unknown" state (not measured): neither up nor down; diag_device_state says which.
    run = make_run({"cam1": "online"}, T0)
    v = run.devices[0]
    odd = type(v)(v.device, v.kind, v.added_via, "unknown", "grey")
    run = Run(run.site, T0, 1.0, run.checks, (odd,))
    got = samples(generate_latest(exporters.registry_for(run)).decode())
    assert key("diag_device_up", device="cam1") not in got
    assert got[key("diag_device_state", device="cam1", state="unknown")] == 1
    assert got[key("diag_device_state", device="cam1", state="offline")] == 0
    assert got[key("diag_device_info", device="cam1", kind="ipc", added_via="p2p-account")] == 1


def test_promtool_lints_the_textfile_clean() -> None:
    run = make_run({"cam1": "offline", "cam2": "degraded"}, T0)
    text = generate_latest(exporters.registry_for(run, 5)).decode()
    assert promtool_lint(text) == ""


def test_every_series_is_documented_with_type_and_labels() -> None:
    doc = DOC.read_text()
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"^\| `(diag_[a-z0-9_]+)` \| (gauge|counter) \| ([^|]*) \|", doc, re.M)
    }
    for name, s in exporters.SERIES.items():
        assert name in rows, f"{name} missing from docs/metrics.md"
        kind, labels = rows[name]
        assert kind == s.kind, name
        assert [x.strip(" `") for x in labels.split(",")] == list(s.labels), name
    assert set(rows) == set(exporters.SERIES), "docs/metrics.md lists a series no longer exported"
