"""Benchmark: a fleet of sites on a real Prometheus (Debian's), scraped on loopback.

Real lab runs (``diag monitor --json`` on the healthy lab and on broken ones) are relabelled as N
sites (``Site 0001``...; by default 90 % healthy, the rest broken) and exported two ways:

- ``targets``: one textfile per site, each served as its own scrape target (what N site boxes'
  node_exporters look like to Prometheus; a small loopback HTTP server stands in for them);
- ``pushgateway``: N pushes (job ``diag``, grouping key instance + site) to one real Pushgateway,
  scraped with ``honor_labels``.

The shipped rules are loaded (default timing). Measured: series per site, head series, Prometheus
resident memory, scrape duration, rule-group evaluation time, the latency of the dashboard's key
queries over the HTTP API (median and max of repeated queries), and the push time.

Run as root (the lab needs it): .venv/bin/python bench/bench_fleet.py [--sites 1000]
[--mode targets|pushgateway|both] [--scrape-s 15] [--scrapes 6]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.server
import json
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "monitor"))
from labkit import start_lab  # noqa: E402
from promkit import Stack, free_port  # noqa: E402

from diag.config import load_site  # noqa: E402
from diag.model import Run, Site  # noqa: E402
from diag.monitor import exporters, rules  # noqa: E402
from diag.reports import json as rjson  # noqa: E402

BROKEN = ("device-no-power", "wan-loss-latency", "link-outage")
# The dashboard's key queries (docs/metrics.md, "questions").
QUERIES = {
    "grey devices per site": "count by (site) (diag_device_up == 0)",
    "grey since (s)": "time() - diag_device_offline_since_timestamp_seconds",
    "top cause per device": "topk by (site, device) (1, diag_device_cause)",
    "links degrading (1h avg > threshold)": (
        "avg_over_time(diag_wan_loss_ratio[1h]) > on (site, job, instance)"
        " diag_threshold_loss_ratio"
    ),
    "NAT types in the fleet": "count by (mapping, filtering) (diag_nat_info)",
    "stale site boxes": "time() - diag_last_run_timestamp_seconds > 900",
    "firing alerts": 'ALERTS{alertstate="firing"}',
}


@dataclasses.dataclass
class Template:
    scenario: str
    run: Run
    site: Site


def lab_templates(scenarios: tuple[str, ...], cache: Path | None) -> list[Template]:
    """One real `diag monitor` run per scenario, in the lab's laptop namespace.

    With ``cache``, each run's JSON and site file are kept there and reused by the next call.
    """
    out = []
    diag = str(Path(sys.executable).with_name("diag"))
    for scenario in scenarios:
        if cache and (cache / f"{scenario}.json").exists():
            run = rjson.run_from_dict(json.loads((cache / f"{scenario}.json").read_text()))
            site = load_site(str(cache / f"{scenario}.toml"))
            out.append(Template(scenario, run, site))
            continue
        lab = start_lab(scenario)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                js = Path(tmp) / "run.json"
                lab.exec(
                    diag,
                    "monitor",
                    "--site",
                    str(lab.site_path),
                    "--db",
                    str(Path(tmp) / "h.sqlite"),
                    "--json",
                    str(js),
                    timeout=180,
                )
                run = rjson.run_from_dict(json.loads(js.read_text()))
                if cache:
                    cache.mkdir(parents=True, exist_ok=True)
                    (cache / f"{scenario}.json").write_text(js.read_text())
                    (cache / f"{scenario}.toml").write_text(lab.site_path.read_text())
            out.append(Template(scenario, run, load_site(str(lab.site_path))))
        finally:
            lab.down()
        states = ", ".join(f"{v.device} {v.state}" for v in run.devices)
        print(f"lab run {scenario}: {states}", flush=True)
    return out


def fleet(templates: list[Template], n: int, broken_share: float) -> list[tuple[Run, Site, dict]]:
    """N sites relabelled from the templates; broken sites' grey devices went grey minutes ago."""
    rng = random.Random(13)
    healthy = [t for t in templates if t.scenario == "healthy"]
    broken = [t for t in templates if t.scenario != "healthy"] or healthy
    now = dt.datetime.now(dt.UTC)
    sites = []
    for i in range(n):
        t = rng.choice(broken) if rng.random() < broken_share else healthy[0]
        name = f"Site {i + 1:04d}"
        run = dataclasses.replace(t.run, site=name, started_at=now)
        site = dataclasses.replace(t.site, name=name)
        since = {
            v.device: now - dt.timedelta(minutes=rng.randint(1, 120))
            for v in run.devices
            if v.state == "offline"
        }
        sites.append((run, site, since))
    return sites


class Files(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(directory: Path) -> tuple[Files, int]:
    """A static server for the sites' textfiles (stands in for N node_exporters)."""
    port = free_port()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, directory=str(directory), **k)

        def log_message(self, *_: Any) -> None:
            pass

    srv = Files(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, port


def timed_queries(stack: Stack, repeats: int = 10) -> dict[str, dict[str, float]]:
    out = {}
    for label, expr in QUERIES.items():
        times, n = [], 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = len(stack.query(expr))
            times.append(time.perf_counter() - t0)
        out[label] = {"median_s": statistics.median(times), "max_s": max(times), "results": n}
    return out


def scalar(stack: Stack, expr: str) -> float:
    r = stack.query(expr)
    return float(r[0]["value"][1]) if r else float("nan")


def measure(stack: Stack, job: str, n_sites: int, settle_s: float) -> dict[str, Any]:
    stack.wait_for(
        'count(count by (site) ({__name__="diag_info"}))',
        lambda r: bool(r) and int(float(r[0]["value"][1])) >= n_sites,
        timeout_s=300,
    )
    cpu0, t0 = stack.own_metric("process_cpu_seconds_total"), time.monotonic()
    time.sleep(settle_s)
    cpu_cores = (stack.own_metric("process_cpu_seconds_total") - cpu0) / (time.monotonic() - t0)
    per_site = [
        float(r["value"][1]) for r in stack.query('count by (site) ({__name__=~"diag_.+"})')
    ]
    sd = f'scrape_duration_seconds{{job="{job}"}}'
    res: dict[str, Any] = {
        "sites": len(per_site),
        "series_per_site_median": statistics.median(per_site),
        "series_per_site_max": max(per_site),
        "head_series": stack.own_metric("prometheus_tsdb_head_series"),
        "prometheus_rss_mib": stack.memory_bytes() / 2**20,
        "prometheus_heap_inuse_mib": stack.own_metric("go_memstats_heap_inuse_bytes") / 2**20,
        # CPU Prometheus used while it scraped and evaluated, in cores (1.0 = one core busy).
        "prometheus_cpu_cores": cpu_cores,
        "scrape_duration_median_s": scalar(stack, f"quantile(0.5, {sd})"),
        "scrape_duration_p99_s": scalar(stack, f"quantile(0.99, {sd})"),
        "scrape_duration_max_s": scalar(stack, f"max({sd})"),
        "rule_eval_s": max(stack.own_metrics("prometheus_rule_group_last_duration_seconds")),
        "firing_alerts": scalar(stack, 'count(ALERTS{alertstate="firing"})'),
        "queries": timed_queries(stack),
    }
    return res


def run_targets(work: Path, sites: list[tuple[Run, Site, dict]], a: argparse.Namespace) -> dict:
    files = work / "sites"
    files.mkdir()
    t0 = time.perf_counter()
    for i, (run, site, since) in enumerate(sites):
        exporters.write_textfile(
            run, str(files / f"{i:04d}.prom"), 100, site=site, offline_since=since
        )
    write_s = time.perf_counter() - t0
    srv, port = serve(files)
    try:
        jobs = [
            {
                "job_name": "sites",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{port}"],
                        "labels": {
                            "__metrics_path__": f"/{i:04d}.prom",
                            "instance": exporters.instance_of(run.site),
                        },
                    }
                    for i, (run, _, _) in enumerate(sites)
                ],
            }
        ]
        stack = Stack(
            work / "prom",
            rules=rules.render_rules(),
            interval_s=a.scrape_s,
            pushgateway=False,
            extra_jobs=jobs,
        )
        with stack:
            res = measure(stack, "sites", len(sites), a.scrape_s * a.scrapes)
    finally:
        srv.shutdown()
    res["textfiles_write_s"] = write_s
    return res


def run_pushgateway(work: Path, sites: list[tuple[Run, Site, dict]], a: argparse.Namespace) -> dict:
    stack = Stack(work / "prom", rules=rules.render_rules(), interval_s=a.scrape_s)
    with stack:
        t0 = time.perf_counter()
        failed, slowest = 0, 0.0
        for run, site, since in sites:
            t1 = time.perf_counter()
            try:
                # The Pushgateway checks each push against every group it holds: pushes get
                # slower as the fleet grows, so the timeout is generous and failures are counted.
                exporters.push(
                    run, stack.urls["pushgateway"], 100, 60.0, site=site, offline_since=since
                )
            except OSError:
                failed += 1
            slowest = max(slowest, time.perf_counter() - t1)
        push_s = time.perf_counter() - t0
        res = measure(stack, "pushgateway", len(sites) - failed, a.scrape_s * a.scrapes)
    res["push_all_s"] = push_s
    res["push_failed"] = failed
    res["push_slowest_s"] = slowest
    res["push_per_site_ms"] = push_s / len(sites) * 1000
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--mode", choices=("targets", "pushgateway", "both"), default="both")
    ap.add_argument("--scrape-s", type=float, default=15.0, help="scrape/evaluation interval")
    ap.add_argument("--scrapes", type=int, default=4, help="scrapes to wait before measuring")
    ap.add_argument("--broken-share", type=float, default=0.1)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    ap.add_argument("--cache", metavar="DIR", type=Path, help="keep/reuse the lab runs here")
    a = ap.parse_args()
    # A SIGTERM (timeout, Ctrl-C from a supervisor) unwinds the `with` blocks: no daemon is left.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    templates = lab_templates(("healthy", *BROKEN), a.cache)
    sites = fleet(templates, a.sites, a.broken_share)
    results: dict[str, Any] = {"sites": a.sites, "scrape_s": a.scrape_s}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("targets", "pushgateway") if a.mode == "both" else (a.mode,):
            work = Path(tmp) / mode
            work.mkdir()
            fn = run_targets if mode == "targets" else run_pushgateway
            results[mode] = fn(work, sites, a)
            print(mode, json.dumps(results[mode], indent=1), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
