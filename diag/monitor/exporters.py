"""Prometheus export of a run: textfile-collector output (atomic) and Pushgateway push.

Names follow Prometheus conventions: a ``diag_`` prefix, base units (seconds, bits per second,
ratios), ``_total`` for counters, ``_info`` for the constant-1 metadata series. Labels are bounded:
site, device (from the site file), check id, cause id (the fixed catalogue), state/status (enums).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from diag import __version__
from diag.diagnosis.facts import as_num
from diag.model import DEVICE_STATES, STATUSES, Run

# Check metric units -> (base unit suffix, factor to the base unit).
UNIT_BASE: Mapping[str, tuple[str, float]] = {
    "ms": ("seconds", 1e-3),
    "s": ("seconds", 1.0),
    "Mbit/s": ("bits_per_second", 1e6),
    "kbit/s": ("bits_per_second", 1e3),
    "bit/s": ("bits_per_second", 1.0),
    "%": ("ratio", 1e-2),
    "B": ("bytes", 1.0),
    "bytes": ("bytes", 1.0),
    "": ("value", 1.0),
    "count": ("value", 1.0),
}


def registry_for(run: Run, runs_total: int | None = None) -> CollectorRegistry:
    reg = CollectorRegistry()
    site = run.site
    Gauge("diag_info", "diag version and site", ["site", "version"], registry=reg).labels(
        site, __version__
    ).set(1)
    Gauge(
        "diag_last_run_timestamp_seconds", "Start of the last run", ["site"], registry=reg
    ).labels(site).set(run.started_at.timestamp())
    Gauge("diag_run_duration_seconds", "Duration of the last run", ["site"], registry=reg).labels(
        site
    ).set(run.duration_s)
    up = Gauge(
        "diag_device_up",
        "1 when the app can reach the device (online or degraded)",
        ["site", "device", "kind", "added_via"],
        registry=reg,
    )
    state = Gauge(
        "diag_device_state",
        "1 for the device's current state",
        ["site", "device", "state"],
        registry=reg,
    )
    cause = Gauge(
        "diag_cause_confidence",
        'Confidence (0..1) of each cause found; device="" for site-wide causes',
        ["site", "device", "cause"],
        registry=reg,
    )
    for v in run.devices:
        if v.state != "unknown":
            # Not measured: no up/down sample rather than a guess (diag_device_state says unknown).
            up.labels(site, v.device, v.kind, v.added_via).set(0 if v.state == "offline" else 1)
        for s in DEVICE_STATES:
            state.labels(site, v.device, s).set(1 if v.state == s else 0)
        for c in v.causes:
            cause.labels(site, v.device, c.id).set(c.confidence)
    for c in run.site_causes:
        cause.labels(site, "", c.id).set(c.confidence)
    status = Gauge(
        "diag_check_status",
        "1 for the check's current status",
        ["site", "check", "status"],
        registry=reg,
    )
    duration = Gauge(
        "diag_check_duration_seconds", "How long the check took", ["site", "check"], registry=reg
    )
    per_unit: dict[str, Gauge] = {}
    for r in run.checks:
        for st in STATUSES:
            status.labels(site, r.check_id, st).set(1 if r.status == st else 0)
        duration.labels(site, r.check_id).set(r.duration_s)
        for name, m in r.metrics.items():
            value = as_num(m.value)
            if value is None:
                # Not a number, NaN/inf or an int beyond a float: not measured, as in the JSON
                # (float() of a huge int would raise and lose the whole export).
                continue
            base, factor = UNIT_BASE.get(m.unit, ("value", 1.0))
            if base not in per_unit:
                per_unit[base] = Gauge(
                    f"diag_check_metric_{base}",
                    f"Check measurements in {base.replace('_', ' ')}",
                    ["site", "check", "metric"],
                    registry=reg,
                )
            per_unit[base].labels(site, r.check_id, name).set(value * factor)
    if runs_total is not None:
        runs = Counter("diag_runs", "Monitor runs recorded in the history", ["site"], registry=reg)
        runs.labels(site).inc(runs_total)
    return reg


def write_textfile(run: Run, path: str, runs_total: int | None = None) -> None:
    """For node_exporter's textfile collector; written to a temp file and renamed (atomic)."""
    from prometheus_client import write_to_textfile

    write_to_textfile(path, registry_for(run, runs_total))


def push(run: Run, gateway: str, runs_total: int | None = None, timeout_s: float = 10.0) -> None:
    """Replaces this site's group on the Pushgateway (job ``diag``, grouping key ``site``)."""
    from prometheus_client import push_to_gateway

    push_to_gateway(
        gateway,
        job="diag",
        registry=registry_for(run, runs_total),
        grouping_key={"site": run.site},
        timeout=timeout_s,
    )
