"""The fleet benchmark's machinery on a small fleet (CI subset of bench/bench_fleet.py).

20 sites relabelled from two runs, scraped by a real Prometheus as 20 targets and through a
real Pushgateway: every site arrives whole, under its own instance, and the dashboard's queries
answer. The full benchmark (1,000 sites from real lab runs) runs from bench/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest_helpers import make_run  # type: ignore[import-not-found]

from diag.config import load_site

BENCH = Path(__file__).parents[2] / "bench" / "bench_fleet.py"
SITE = """
[site]
name = "Template"
[profile]
p2p_servers = []
stun_servers = []
dns_names = []
[[devices]]
name = "cam1"
kind = "ipc"
added_via = "p2p"
address = "127.0.0.5"
[[devices]]
name = "cam2"
kind = "ipc"
added_via = "p2p-account"
address = "127.0.0.6"
"""


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fleet", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_fleet"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("mode", ["targets", "pushgateway"])
def test_small_fleet_is_scraped_whole(bench: ModuleType, mode: str, tmp_path: Path) -> None:
    p = tmp_path / "site.toml"
    p.write_text(SITE)
    site = load_site(str(p))
    now = dt.datetime.now(dt.UTC)
    templates = [
        bench.Template("healthy", make_run({"cam1": "online", "cam2": "online"}, now), site),
        bench.Template(
            "device-no-power", make_run({"cam1": "offline", "cam2": "online"}, now), site
        ),
    ]
    sites = bench.fleet(templates, 20, 0.5)
    args = argparse.Namespace(scrape_s=1.0, scrapes=1)
    work = tmp_path / mode
    work.mkdir()
    fn = bench.run_targets if mode == "targets" else bench.run_pushgateway
    res = fn(work, sites, args)
    assert res["sites"] == 20
    assert res["series_per_site_median"] > 20
    assert res["head_series"] >= 20 * res["series_per_site_median"]
    assert res["prometheus_rss_mib"] > 0 and res["scrape_duration_max_s"] > 0
    grey = sum(1 for run, _, _ in sites if run.worst_state == "offline")
    assert grey and res["queries"]["grey devices per site"]["results"] == grey
    assert res["queries"]["NAT types in the fleet"]["results"] == 1
