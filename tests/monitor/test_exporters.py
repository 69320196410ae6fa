"""Prometheus export: textfile format and a real Pushgateway read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from conftest_helpers import make_run  # type: ignore[import-not-found]
from prometheus_client.parser import text_string_to_metric_families

from diag.monitor import exporters

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_textfile_is_complete_and_in_base_units(tmp_path: Path) -> None:
    run = make_run({"cam1": "offline", "cam2": "online"}, T0)
    path = tmp_path / "diag.prom"
    exporters.write_textfile(run, str(path), runs_total=7)
    got = samples(path.read_text())
    site = ("site", "Test site")
    assert (
        got[
            (
                "diag_device_up",
                (("added_via", "p2p-account"), ("device", "cam1"), ("kind", "ipc"), site),
            )
        ]
        == 0
    )
    assert (
        got[
            (
                "diag_device_up",
                (("added_via", "p2p-account"), ("device", "cam2"), ("kind", "ipc"), site),
            )
        ]
        == 1
    )
    assert got[("diag_device_state", (("device", "cam1"), site, ("state", "offline")))] == 1
    assert (
        got[("diag_cause_confidence", (("cause", "device-no-power"), ("device", "cam1"), site))]
        == 0.9
    )
    assert (
        got[("diag_check_metric_seconds", (("check", "dns"), ("metric", "site_time_ms"), site))]
        == 0.0125
    )
    assert (
        got[
            (
                "diag_check_metric_bits_per_second",
                (("check", "bandwidth"), ("metric", "upload_mbps"), site),
            )
        ]
        == 1.5e6
    )
    assert got[("diag_check_status", (("check", "bandwidth"), site, ("status", "warn")))] == 1
    assert got[("diag_runs_total", (site,))] == 7
    assert got[("diag_run_duration_seconds", (site,))] == 1.25
    assert not list(tmp_path.glob("*.tmp*")), "atomic write leaves no temp file"


def test_push_and_read_back(pushgateway: str) -> None:
    run = make_run({"cam1": "offline"}, T0, site="Push site")
    exporters.push(run, pushgateway, runs_total=3)
    text = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    got = samples(text)
    key = (
        "diag_device_up",
        (
            ("added_via", "p2p-account"),
            ("device", "cam1"),
            ("instance", ""),
            ("job", "diag"),
            ("kind", "ipc"),
            ("site", "Push site"),
        ),
    )
    assert got[key] == 0
    # pushing again replaces the group: the device is up now
    exporters.push(make_run({"cam1": "online"}, T0, site="Push site"), pushgateway)
    got = samples(httpx.get(f"{pushgateway}/metrics", timeout=5).text)
    assert got[key] == 1
