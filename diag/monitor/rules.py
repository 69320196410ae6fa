"""Prometheus recording and alert rules for the series of ``exporters``, from the cause catalogue.

The shipped file ``diag/monitor/prometheus/diag.rules.yml`` is ``render()`` with the default
timing (a test keeps it current; regenerate with ``python -m diag.monitor.rules --write``).
``diag monitor --print-rules`` prints it. Alerts carry the cause id as a label and, as
annotations, a summary and the catalogue's first fix step in English and Polish: one rule per
cause, so each alert's text is fixed YAML a support team can read, route and translate.

Alerts:
- ``DiagDeviceGrey``: a device offline longer than the site's relogin window (a device still grey
  right after an outage is only logging in again), per top cause of the device.
- ``DiagSiteDown``: the internet is unreachable from the site, or every device is offline.
- ``DiagLinkDegrading``: loss or round-trip time averaged over an hour above the site's threshold.
- ``DiagNewCause``: a cause diagnosed with confidence that was not there an hour before.
- ``DiagDeviceUnknown``: a device's state could not be measured for half an hour (missing
  evidence is neither up nor down, so neither alert above fires on it).
- ``DiagMonitorRunsMissing``: no run for three 5-minute periods (the textfile or push is stale).

The output is YAML written by hand (a fixed shape; strings as JSON, which YAML reads): no YAML
library is needed at run time. ``promtool check rules`` and ``promtool test rules`` check it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from diag.i18n import N_, msg, render

RULES_FILE = "diag.rules.yml"


@dataclass(frozen=True)
class Timing:
    """Durations of the rules (Prometheus duration strings); tests shorten them."""

    # How long the site must look down before paging (a flapping link pages nobody).
    site_down_for: str = "10m"
    # How long the hour's average must stay above the threshold.
    degrading_for: str = "15m"
    # A cause is new when it was absent this long before (the lookback of DiagNewCause).
    new_cause_lookback: str = "1h"
    # Three missed 5-minute runs, s.
    stale_after_s: int = 900
    # How long a device may stay unmeasured ("unknown") before it is worth a look.
    unknown_for: str = "30m"
    # Causes below this confidence are possibilities, not findings (the dashboard's cut-off).
    min_confidence: float = 0.5


GREY = N_("{device} at {site} has been grey for {duration}: {title}")
GREY_NONE = N_("{device} at {site} has been grey for {duration}; no cause found from afar")
FIX_NONE = N_("Run diag at the site: the monitor found no cause for this.")
SITE_DOWN = N_("{site} is down: {title}")
SITE_DOWN_NONE = N_("{site} is down: the internet or every device is unreachable")
DEGRADING = N_("The link of {site} is degrading: {what} averaged {value} over an hour")
LOSS = N_("loss")
RTT = N_("round-trip time")
NEW_CAUSE = N_("New at {site}: {title}")
UNKNOWN = N_("The monitor cannot tell whether {device} at {site} is up")
FIX_UNKNOWN = N_(
    "Run diag at the site and check what could not be measured: the device's credentials, "
    "its web port, the platform's status API."
)
MISSING = N_("No monitor run from {site} for {duration}")
FIX_MISSING = N_("Check the site box: power, network, and the cron job or timer of diag monitor.")

# Go template pieces of Prometheus's alert templating.
T_SITE, T_DEVICE = "{{ $labels.site }}", "{{ $labels.device }}"
T_DURATION = "{{ $value | humanizeDuration }}"


def _q(text: str) -> str:
    # A JSON string is a YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def _both(template: str, **args: object) -> dict[str, str]:
    """English and Polish; a Message argument (a cause's title) renders in each language."""
    return {lang: render(msg(template, **args), lang) for lang in ("en", "pl")}


def _alert(
    name: str,
    expr: str,
    labels: dict[str, str],
    summary: dict[str, str],
    fix: dict[str, str],
    cause: str,
    for_: str = "",
) -> list[str]:
    out = [f"      - alert: {name}", f"        expr: {_q(' '.join(expr.split()))}"]
    if for_ and for_ not in ("0", "0s", "0m"):
        out.append(f"        for: {for_}")
    out.append("        labels:")
    out += [f"          {k}: {_q(v)}" for k, v in labels.items()]
    out.append("        annotations:")
    ann = {
        "cause": cause,
        "summary": summary["en"],
        "summary_pl": summary["pl"],
        "fix": fix["en"],
        "fix_pl": fix["pl"],
    }
    out += [f"          {k}: {_q(v)}" for k, v in ann.items()]
    return out


def _record(name: str, expr: str) -> list[str]:
    return [f"      - record: {name}", f"        expr: {_q(' '.join(expr.split()))}"]


def _fix(cause: str) -> dict[str, str]:
    from diag.diagnosis.catalog import info

    found = info(cause)
    if found is None or not found.fix:
        return _both(FIX_NONE)
    return {lang: render(msg(found.fix[0]), lang) for lang in ("en", "pl")}


def render_rules(t: Timing = Timing()) -> str:
    """The whole rules file: one group, the recording rules first, then the alerts."""
    from diag.diagnosis.catalog import CATALOG, title_of

    conf = f"{t.min_confidence:g}"
    lines = [
        "# Generated by diag.monitor.rules from the cause catalogue: do not edit by hand;",
        "# regenerate with `python -m diag.monitor.rules --write`. See docs/metrics.md.",
        "groups:",
        "  - name: diag",
        "    rules:",
    ]
    # Everything that joins or compares is recorded once per evaluation; the per-cause alerts
    # below only select from it by `cause` (a fleet of 1,000 sites evaluates 140 selectors, not
    # 140 joins).
    lines += _record(
        "site_device_cause:diag_device_cause:max",
        "max by (site, device, cause) (diag_device_cause)",
    )
    lines += _record(
        "site_device:diag_device_cause:top",
        "topk by (site, device) (1, site_device_cause:diag_device_cause:max)",
    )
    lines += _record("site_cause:diag_site_cause:max", "max by (site, cause) (diag_site_cause)")
    lines += _record(
        "site:diag_site_cause:top", "topk by (site) (1, site_cause:diag_site_cause:max)"
    )
    lines += _record(
        "site_device:diag_device_offline:seconds",
        "time() - max by (site, device) (diag_device_offline_since_timestamp_seconds)",
    )
    # Grey for longer than the relogin window, s (a device grey right after an outage is only
    # logging in again); then the same with the device's top cause as a label.
    lines += _record(
        "site_device:diag_device_grey:seconds",
        "site_device:diag_device_offline:seconds"
        " > on (site) group_left () max by (site) (diag_relogin_window_seconds)",
    )
    lines += _record(
        "site_device_cause:diag_device_grey:seconds",
        "site_device:diag_device_grey:seconds * on (site, device) group_left (cause)"
        " (site_device:diag_device_cause:top > bool 0)",
    )
    lines += _record("site:diag_devices:count", "count by (site) (diag_device_info)")
    lines += _record(
        "site:diag_devices_offline:sum", 'sum by (site) (diag_device_state{state="offline"})'
    )
    # 1 while the site is down: no internet from the site, or every device offline.
    lines += _record(
        "site:diag_site_down:bool",
        "((max by (site) (diag_wan_internet_up) == 0)"
        " or (site:diag_devices_offline:sum >= site:diag_devices:count > 0)) * 0 + 1",
    )
    lines += _record(
        "site_cause:diag_site_down:bool",
        "site:diag_site_down:bool * on (site) group_left (cause)"
        " (site:diag_site_cause:top > bool 0)",
    )
    # Causes found now (confidence >= the cut-off) that were not found the lookback before.
    lines += _record(
        "site_device_cause:diag_cause_new:max",
        f"site_device_cause:diag_device_cause:max >= {conf} unless on (site, device, cause)"
        f" max by (site, device, cause) (diag_device_cause offset {t.new_cause_lookback})"
        f" >= {conf}",
    )
    lines += _record(
        "site_cause:diag_cause_new:max",
        f"site_cause:diag_site_cause:max >= {conf} unless on (site, cause)"
        f" max by (site, cause) (diag_site_cause offset {t.new_cause_lookback}) >= {conf}",
    )
    lines += _record(
        "site:diag_wan_loss_ratio:avg1h", "avg by (site) (avg_over_time(diag_wan_loss_ratio[1h]))"
    )
    lines += _record(
        "site:diag_wan_rtt_seconds:avg1h",
        "avg by (site) (avg_over_time(diag_wan_rtt_seconds[1h]))",
    )
    lines += _record(
        "site:diag_last_run:age_seconds", "time() - max by (site) (diag_last_run_timestamp_seconds)"
    )
    # The alerts follow in the same group: a group's rules are evaluated in order, so each alert
    # reads the recording rules of this very evaluation (two groups would race, one step apart).
    for cause in CATALOG:
        summary = _both(
            GREY, device=T_DEVICE, site=T_SITE, duration=T_DURATION, title=title_of(cause)
        )
        lines += _alert(
            "DiagDeviceGrey",
            f'site_device_cause:diag_device_grey:seconds{{cause="{cause}"}}',
            {"severity": "critical", "cause": cause},
            summary,
            _fix(cause),
            cause,
        )
    lines += _alert(
        "DiagDeviceGrey",
        "site_device:diag_device_grey:seconds"
        " unless on (site, device) site_device:diag_device_cause:top",
        {"severity": "critical", "cause": "none"},
        _both(GREY_NONE, device=T_DEVICE, site=T_SITE, duration=T_DURATION),
        _both(FIX_NONE),
        "none",
    )
    for cause, entry in CATALOG.items():
        if entry.scope != "site":
            continue
        summary = _both(SITE_DOWN, site=T_SITE, title=title_of(cause))
        lines += _alert(
            "DiagSiteDown",
            f'site_cause:diag_site_down:bool{{cause="{cause}"}}',
            {"severity": "critical", "cause": cause},
            summary,
            _fix(cause),
            cause,
            t.site_down_for,
        )
    lines += _alert(
        "DiagSiteDown",
        "site:diag_site_down:bool unless on (site) site:diag_site_cause:top",
        {"severity": "critical", "cause": "none"},
        _both(SITE_DOWN_NONE, site=T_SITE),
        _both(FIX_NONE),
        "none",
        t.site_down_for,
    )
    for what, series, threshold, word, value in (
        (
            "loss",
            "site:diag_wan_loss_ratio:avg1h",
            "diag_threshold_loss_ratio",
            LOSS,
            "{{ $value | humanizePercentage }}",
        ),
        (
            "rtt",
            "site:diag_wan_rtt_seconds:avg1h",
            "diag_threshold_rtt_seconds",
            RTT,
            "{{ $value | humanizeDuration }}",
        ),
    ):
        summary = _both(DEGRADING, site=T_SITE, what=msg(word), value=value)
        lines += _alert(
            "DiagLinkDegrading",
            f"{series} > on (site) max by (site) ({threshold})",
            {"severity": "warning", "cause": "wan-loss-latency", "quantity": what},
            summary,
            _fix("wan-loss-latency"),
            "wan-loss-latency",
            t.degrading_for,
        )
    for cause in CATALOG:
        summary = _both(NEW_CAUSE, site=T_SITE, title=title_of(cause))
        lines += _alert(
            "DiagNewCause",
            f'site_device_cause:diag_cause_new:max{{cause="{cause}"}}'
            f' or site_cause:diag_cause_new:max{{cause="{cause}"}}',
            {"severity": "warning", "cause": cause},
            summary,
            _fix(cause),
            cause,
        )
    lines += _alert(
        "DiagDeviceUnknown",
        'max by (site, device) (diag_device_state{state="unknown"}) == 1',
        {"severity": "warning", "cause": "none"},
        _both(UNKNOWN, device=T_DEVICE, site=T_SITE),
        _both(FIX_UNKNOWN),
        "none",
        t.unknown_for,
    )
    lines += _alert(
        "DiagMonitorRunsMissing",
        f"site:diag_last_run:age_seconds > {t.stale_after_s}",
        {"severity": "warning", "cause": "none"},
        _both(MISSING, site=T_SITE, duration=T_DURATION),
        _both(FIX_MISSING),
        "none",
    )
    return "\n".join(lines) + "\n"


def shipped_rules() -> str:
    """The rules file installed with the package."""
    return (resources.files("diag.monitor") / "prometheus" / RULES_FILE).read_text("utf-8")


def main() -> None:  # pragma: no cover - a developer's tool
    p = argparse.ArgumentParser(description="regenerate the shipped Prometheus rules")
    p.add_argument("--write", action="store_true", help="write the packaged rules file")
    args = p.parse_args()
    text = render_rules()
    if args.write:
        (Path(__file__).parent / "prometheus" / RULES_FILE).write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":  # pragma: no cover
    main()
