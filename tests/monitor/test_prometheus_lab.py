"""The monitor on a real Prometheus: lab run -> textfile / Pushgateway -> scrape -> alert.

`diag monitor` runs on the lab as the cron job on a site box does, writing its textfile into the
directory of a real node_exporter (textfile collector); a real Prometheus on loopback scrapes it and
evaluates the shipped rules (with short durations). The Pushgateway path pushes the same lab run
(read back from the run's JSON) and Prometheus scrapes the Pushgateway with ``honor_labels``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from labkit import Lab  # type: ignore[import-not-found]
from promkit import Stack  # type: ignore[import-not-found]

from diag.config import load_site
from diag.model import Run, Verdict
from diag.monitor import exporters, rules
from diag.monitor.store import Store
from diag.reports import json as rjson

pytestmark = pytest.mark.lab
DIAG = str(Path(sys.executable).with_name("diag"))
# Short for the test: the site-down rule needs no 10 minutes to fire here.
TIMING = rules.Timing(site_down_for="0s", degrading_for="0s")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("prom"), rules=rules.render_rules(TIMING)) as s:
        yield s


def monitor(lab: Lab, db: Path, *args: str) -> tuple[int, str]:
    res = lab.exec(
        DIAG, "monitor", "--site", str(lab.site_path), "--db", str(db), *args, timeout=120
    )
    return res.returncode, res.stdout.strip()


def promtool_lint(path: Path) -> str:
    r = subprocess.run(
        ["promtool", "check", "metrics"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return "" if r.returncode == 0 else r.stdout + r.stderr


def site_name(lab: Lab) -> str:
    return load_site(str(lab.site_path)).name


def by(result: list[dict[str, object]], label: str) -> dict[str, float]:
    return {r["metric"][label]: float(r["value"][1]) for r in result}  # type: ignore[index]


def test_healthy_lab_is_clean_scraped_and_quiet(
    lab_factory: Callable[..., Lab], stack: Stack, tmp_path: Path
) -> None:
    lab = lab_factory("healthy")
    prom = stack.textfile_dir / "healthy.prom"
    code, line = monitor(lab, tmp_path / "h.sqlite", "--prometheus", str(prom))
    assert code == 0, line
    assert promtool_lint(prom) == ""
    site = site_name(lab)
    up = stack.wait_for(f'diag_device_up{{site="{site}"}}', lambda r: len(r) == 4)
    assert set(by(up, "device").values()) == {1.0}
    assert {r["metric"]["job"] for r in up} == {"node"}
    nat = stack.query(f'diag_nat_info{{site="{site}"}}')
    assert [(r["metric"]["mapping"], r["metric"]["filtering"]) for r in nat] == [("EIM", "APDF")]
    loss = stack.query(f'diag_wan_loss_ratio{{site="{site}"}}')
    assert len(loss) == 1 and 0 <= float(loss[0]["value"][1]) < 0.02
    # the support team's question: no grey device at this site, no alert for it
    stack.wait_for(f'site:diag_devices_offline:sum{{site="{site}"}}', lambda r: len(r) == 1)
    assert stack.query(f'ALERTS{{site="{site}", alertname=~"DiagDeviceGrey|DiagSiteDown"}}') == []


def test_powered_off_camera_fires_the_grey_alert_with_its_cause(
    lab_factory: Callable[..., Lab], stack: Stack, tmp_path: Path
) -> None:
    lab = lab_factory("device-no-power")
    site = load_site(str(lab.site_path))
    db = tmp_path / "h.sqlite"
    # The history of a site box: ipc2 went grey 10 minutes ago (longer than the relogin window).
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    verdicts = tuple(
        Verdict(d.name, d.kind, d.added_via, "offline" if d.name == "ipc2" else "online", "grey")
        for d in site.devices
    )
    with Store(db) as store:
        store.record(Run(site.name, before, 1.0, (), verdicts))
    prom = stack.textfile_dir / "broken.prom"
    run_json = tmp_path / "run.json"
    code, line = monitor(lab, db, "--prometheus", str(prom), "--json", str(run_json))
    assert code == 2, line
    assert promtool_lint(prom) == ""
    up = stack.wait_for(
        f'diag_device_up{{site="{site.name}", device="ipc2"}}',
        lambda r: len(r) == 1 and r[0]["value"][1] == "0",
    )
    assert up
    since = stack.query(f'diag_device_offline_since_timestamp_seconds{{site="{site.name}"}}')
    assert by(since, "device") == {"ipc2": pytest.approx(before.timestamp(), abs=1)}
    firing = stack.wait_for(
        f'ALERTS{{alertname="DiagDeviceGrey", alertstate="firing", site="{site.name}"}}',
        timeout_s=30,
    )
    assert [(a["metric"]["device"], a["metric"]["cause"]) for a in firing] == [
        ("ipc2", "device-no-power")
    ]
    alert = next(
        a
        for a in stack.alerts()
        if a["labels"]["alertname"] == "DiagDeviceGrey" and a["labels"]["site"] == site.name
    )
    ann = alert["annotations"]
    assert ann["cause"] == "device-no-power"
    assert ann["summary"].startswith(f"ipc2 at {site.name} has been grey for 10m")
    assert "PoE" in ann["fix"] and "Sprawdź" in ann["fix_pl"]
    # a new cause at this site: the notification alert fires too
    stack.wait_for(
        f'ALERTS{{alertname="DiagNewCause", alertstate="firing", site="{site.name}",'
        ' cause="device-no-power"}',
        timeout_s=30,
    )
    # The Pushgateway path, with the same lab run: one group per site (job + instance), scraped
    # by Prometheus with honor_labels, so the series keep the site's instance.
    run = rjson.run_from_dict(json.loads(run_json.read_text()))
    exporters.push(run, stack.urls["pushgateway"], 2, site=site)
    instance = exporters.instance_of(site.name)
    pushed = stack.wait_for(
        f'diag_device_up{{job="diag", instance="{instance}", site="{site.name}"}}',
        lambda r: len(r) == len(site.devices),
    )
    assert by(pushed, "device")["ipc2"] == 0.0
    assert sum(by(pushed, "device").values()) == len(site.devices) - 1
    runs = stack.query(f'diag_runs_total{{job="diag", instance="{instance}"}}')
    assert [float(r["value"][1]) for r in runs] == [2.0]
