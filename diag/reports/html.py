"""The self-contained HTML report: grey devices first, then device cards, the network, all checks.

One file with inline CSS and charts as SVG data URIs, no external request of any kind (a
Content-Security-Policy meta tag forbids them too), readable by support in a minute and printable.
Every string from outside (device names, banners, DNS answers, server labels) reaches the page
through Jinja2 with autoescaping on; nothing here marks data as safe. The words come in English or
Polish: the template calls ``t("English text")`` and the strings live in ``reports.po``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from diag import vocab
from diag.diagnosis.catalog import CATALOG, description_of, title_of
from diag.diagnosis.facts import Facts, as_num
from diag.fileio import write_atomic
from diag.i18n import (
    N_,
    Message,
    format_datetime,
    format_duration,
    format_number,
    msg,
    normalize_lang,
)
from diag.i18n import render as render_msg
from diag.model import Cause, CheckResult, Fact, Run, Thresholds, Verdict
from diag.reports.phone import phone_view
from diag.text import printable

TEMPLATES = Path(__file__).parent / "templates"
# Causes below this confidence are notes: shown small, after the real causes.
STRONG = 0.5
# The per-device loss chart shows at most this many devices (the worst ones).
MAX_CHART_DEVICES = 16
# A fact value longer than this is cut in the evidence tables (a hostile banner can be megabytes).
MAX_VALUE_CHARS = 300
_MAX_INT = 10**MAX_VALUE_CHARS

# The report's sections in order, one template each in templates/sections/ (they read the context
# that ``context()`` builds). A part of diag that adds a section adds its name here and its file
# there; ``render(sections=...)`` adds ready-made ones (the monitor's history) before the appendix.
SECTIONS: tuple[str, ...] = (
    "summary", "path", "devices", "site", "network", "phone", "extra", "checks",
)  # fmt: skip


@functools.cache
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Every {{ value }} passes the one sanitizer before autoescaping: C0/C1 controls, bidi
        # overrides and separators from outside show as escapes (\x9b, \u202e), not raw.
        finalize=_sanitized,
    )
    env.filters["printable"] = _sanitized
    return env


def _sanitized(value: Any) -> Any:
    """A template value through ``diag.text.printable`` (markup made by a template: as is)."""
    import markupsafe

    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return printable(value)
    return value


def fmt_value(value: Any, unit: str = "", lang: str = "en") -> str:
    """A fact or metric value as short text with its unit, numbers in ``lang``'s format."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif value is None:
        text = "–"
    elif isinstance(value, float) and not math.isfinite(value):
        # int(nan) raises: a broken measurement shows as "nan"/"inf", it must not stop the report.
        text = str(value)
    elif isinstance(value, float):
        text = format_number(value, lang)
    elif isinstance(value, int) and abs(value) >= _MAX_INT:
        # str() of an int beyond Python's digit limit raises ValueError; nobody reads it anyway.
        text = "…"
    elif isinstance(value, list):
        text = ", ".join(fmt_value(v, lang=lang) for v in value) or "–"
    elif isinstance(value, dict):
        text = "; ".join(f"{k}: {fmt_value(v, lang=lang)}" for k, v in value.items()) or "–"
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return f"{text} {unit}".rstrip() if unit and value is not None else text


def _fact_view(f: Fact, t: Callable[..., str], lang: str = "en") -> dict[str, str]:
    value = fmt_value(f.value, f.unit, lang)
    if isinstance(f.value, bool):
        value = t(N_("yes")) if f.value else t(N_("no"))
    return {"key": f.key, "target": f.target, "value": value}


def _cause_view(c: Cause, lang: str, t: Callable[..., str]) -> dict[str, Any]:
    info = CATALOG.get(c.id)
    desc = description_of(c.id)
    return {
        "id": c.id,
        "title": title_of(c.id).render(lang),
        "detail": c.detail.render(lang) if c.detail else "",
        "description": desc.render(lang) if desc else "",
        "confidence": c.confidence,
        "pct": f"{c.confidence:.0%}",
        "strong": c.confidence >= STRONG,
        "checklist": bool(info and info.checklist),
        "scope": info.scope if info else "device",
        "evidence": [_fact_view(f, t, lang) for f in c.evidence],
        "fix": [m.render(lang) for m in c.fix],
    }


def _device_view(v: Verdict, lang: str, t: Callable[..., str]) -> dict[str, Any]:
    causes = [_cause_view(c, lang, t) for c in v.causes]
    strong = [c for c in causes if c["strong"]]
    return {
        "name": v.device,
        "kind": v.kind,
        "kind_label": t(vocab.KIND_WORD.get(v.kind, v.kind)),
        "added_via": v.added_via,
        "via_label": t(vocab.via_label(v.added_via)),
        "state": v.state,
        "state_label": t(vocab.state_word(v.state)),
        "state_glyph": vocab.state_glyph(v.state),
        "icon": v.icon,
        "colour": vocab.icon_colour(v.added_via, v.icon == "grey"),
        "causes": strong,
        "notes": [c for c in causes if not c["strong"]],
        "top": strong[0] if strong else None,
        # Why the state is unknown ("?"): what could not be measured, naming the check.
        "unmeasured": [m.render(lang) for m in v.unmeasured],
    }


def _first(facts: Facts, key: str, target: str = "") -> Any:
    return facts.value(key, target)


def _network_view(run: Run, facts: Facts, lang: str, t: Callable[..., str]) -> dict[str, Any]:
    def fv(value: Any, unit: str = "") -> str:
        return fmt_value(value, unit, lang)

    def row(label: str, key: str, unit: str = "") -> dict[str, str] | None:
        f = facts.get(key)
        if f is None:
            return None
        return {
            "label": t(label),
            "value": _fact_view(Fact(f.key, f.value, unit or f.unit), t, lang)["value"],
        }

    nat_rows = [
        row(N_("NAT present"), "nat.present"),
        row(N_("Mapping (RFC 4787)"), "nat.mapping"),
        row(N_("Filtering (RFC 4787)"), "nat.filtering"),
        row(N_("Classic type (RFC 3489)"), "nat.rfc3489"),
        row(N_("UDP blocked"), "nat.udp_blocked"),
        row(N_("Public address (STUN)"), "nat.mapped_address"),
        row(N_("Local address"), "nat.local_address"),
        row(N_("Hairpinning"), "nat.hairpinning"),
        row(N_("NAT ALG rewrites addresses"), "nat.alg"),
        row(N_("UDP mapping lifetime"), "nat.mapping_lifetime_s"),
        row(N_("Heartbeat interval"), "nat.heartbeat_interval_s"),
        row(N_("Carrier-grade NAT"), "nat.cgnat"),
        row(N_("Double NAT"), "nat.double_nat"),
        row(N_("UPnP IGD"), "upnp.present"),
        row(N_("NAT-PMP"), "natpmp.present"),
        row(N_("PCP"), "pcp.present"),
        row(N_("Router's external address (UPnP)"), "upnp.external_ip"),
    ]
    wan_rows = [
        row(N_("Gateway answers"), "wan.gateway_reachable"),
        row(N_("Gateway round trip"), "wan.gateway_rtt_ms"),
        row(N_("Internet reachable"), "wan.internet_reachable"),
        row(N_("Packet loss"), "wan.loss_pct"),
        row(N_("Round trip"), "wan.rtt_ms"),
        row(N_("Jitter"), "wan.jitter_ms"),
        row(N_("Captive portal"), "wan.captive_portal"),
        row(N_("Redirected to"), "wan.http_redirect"),
        row(N_("Only DNS passes"), "wan.only_dns_passes"),
        row(N_("Public address"), "wan.public_ip"),
        row(N_("Download"), "bw.download_mbps"),
        row(N_("Upload"), "bw.upload_mbps"),
        row(N_("Upload the streams need"), "bw.needed_upload_mbps"),
        row(N_("Latency added under load"), "bw.bufferbloat_ms"),
    ]
    dns_rows = []
    for f in facts.all("dns.site.rcode"):
        name = f.target
        dns_rows.append(
            {
                "name": name,
                "site": fv(f.value),
                "site_answer": fv(_first(facts, "dns.site.answer", name)),
                "site_ms": fv(_first(facts, "dns.site.time_ms", name), "ms"),
                "independent": fv(_first(facts, "dns.independent.rcode", name)),
                "independent_answer": fv(_first(facts, "dns.independent.answer", name)),
                "bad": _first(facts, "dns.mismatch", name) is True
                or (
                    f.value != "NOERROR"
                    and _first(facts, "dns.independent.rcode", name) == "NOERROR"
                ),
            }
        )
    port_rows = []
    for f in facts.all("port.open"):
        at = _first(facts, "port.blocked_at", f.target)
        port_rows.append(
            {
                "target": f.target,
                "open": f.value is True,
                "state": t(vocab.port_word(f.value)),
                "rtt": fv(_first(facts, "port.rtt_ms", f.target), "ms"),
                "where": t(vocab.where_blocked(at)) if f.value is not True else "",
                "hop": fv(_first(facts, "port.blocked_hop", f.target))
                if f.value is not True
                else "",
            }
        )
    p2p_rows = []
    for f in facts.all("p2p.reachable"):
        p2p_rows.append(
            {
                "label": f.target,
                "ok": f.value is True,
                "state": t(N_("answers")) if f.value is True else t(N_("no answer")),
                "rtt": fv(_first(facts, "p2p.rtt_ms", f.target), "ms"),
                "error": fv(_first(facts, "p2p.error", f.target)) if f.value is not True else "",
                "public": fv(_first(facts, "p2p.public_address", f.target)),
            }
        )
    resolvers = {
        "site": fv(_first(facts, "dns.resolver.site")),
        "independent": fv(_first(facts, "dns.resolver.independent")),
    }
    lldp = _first(facts, "lldp.neighbor")
    vlan_rows = []
    tags = _first(facts, "vlan.tags_seen")
    if isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict):
                vlan_rows.append({"vid": fv(tag.get("vid")), "macs": fv(tag.get("macs"))})
    return {
        "nat": [r for r in nat_rows if r],
        "wan": [r for r in wan_rows if r],
        "dns": dns_rows,
        "resolvers": resolvers,
        "ports": port_rows,
        "p2p": p2p_rows,
        "lldp": fv(lldp) if lldp is not None else "",
        "vlans": vlan_rows,
        "charts": _charts(run, facts, lang, t),
    }


def _num(v: Any) -> float | None:
    """A finite number for a chart, or None (not a number, NaN, inf, an int beyond a float)."""
    return as_num(v)


def _charts(run: Run, facts: Facts, lang: str, t: Callable[..., str]) -> list[dict[str, str]]:
    from diag.reports import charts

    out: list[dict[str, str]] = []
    # Latency: gateway, internet, each platform server, and the link under load.
    bars: list[charts.Bar] = []

    def add(label: str, value: Any, limit: float | None = None) -> None:
        n = _num(value)
        if n is not None:
            colour = charts.BAD if limit is not None and n > limit else charts.OK
            bars.append(charts.Bar(label, n, colour))

    add(t(N_("Gateway")), _first(facts, "wan.gateway_rtt_ms"))
    limits = Thresholds()
    add(t(N_("Internet")), _first(facts, "wan.rtt_ms"), limits.rtt_ms)
    for f in facts.all("p2p.rtt_ms"):
        add(f.target, f.value, limits.rtt_ms)
    idle = _num(_first(facts, "bw.idle_rtt_ms"))
    add(t(N_("Idle (speed test)")), idle)
    # Under load is bad when it adds more than the bufferbloat threshold to the idle latency.
    add(
        t(N_("Under load")),
        _first(facts, "bw.loaded_rtt_ms"),
        (idle or 0.0) + limits.bufferbloat_ms,
    )
    if bars:
        title = t(N_("Round-trip time"))
        out.append({"title": title, "src": charts.bar_chart(bars, "ms", title)})
    # Bandwidth: measured against what the streams need.
    need = _num(_first(facts, "bw.needed_upload_mbps"))
    up = _num(_first(facts, "bw.upload_mbps"))
    down = _num(_first(facts, "bw.download_mbps"))
    bw: list[charts.Bar] = []
    if down is not None:
        bw.append(charts.Bar(t(N_("Download")), down, charts.OK))
    if up is not None:
        bad = need is not None and up < need
        bw.append(charts.Bar(t(N_("Upload")), up, charts.BAD if bad else charts.OK))
    if need is not None:
        bw.append(charts.Bar(t(N_("Streams need")), need, charts.MUTED))
    if bw:
        title = t(N_("Bandwidth"))
        out.append(
            {
                "title": title,
                "src": charts.bar_chart(bw, "Mbit/s", title, need, t(N_("needed"))),
            }
        )
    # The LAN: loss to each device (radio links and bad cables show here).
    loss = [
        (f.target, n) for f in facts.all("device.icmp_loss_pct") if (n := _num(f.value)) is not None
    ]
    if loss:
        title = t(N_("Packet loss to each device on the LAN"))
        if len(loss) > MAX_CHART_DEVICES:
            # A big site: the worst devices only, so the chart stays readable (and quick).
            loss = sorted(loss, key=lambda x: -x[1])[:MAX_CHART_DEVICES]
            title = t(
                N_("Packet loss on the LAN: the {n} devices losing most"), n=MAX_CHART_DEVICES
            )
        dev_bars = [
            charts.Bar(
                name, n, charts.BAD if n > 2 else charts.OK, f"{format_number(n, lang, 0)} %"
            )
            for name, n in loss
        ]
        out.append({"title": title, "src": charts.bar_chart(dev_bars, "%", title)})
    return out


def _check_view(r: CheckResult, lang: str, t: Callable[..., str]) -> dict[str, Any]:
    return {
        "id": r.check_id,
        "status": r.status,
        "status_label": t(vocab.STATUS_WORD.get(r.status, r.status)),
        "summary": r.summary.render(lang),
        "metrics": [
            {"name": k, "value": fmt_value(m.value, m.unit, lang)}
            for k, m in sorted(r.metrics.items())
        ],
        "duration": f"{format_number(r.duration_s, lang, 2, fixed=True)} s",
    }


def _quiet(d: Mapping[str, Any]) -> bool:
    """Online, in colour, nothing to say but notes: a small tile instead of a full card."""
    return bool(d["state"] == "online" and d["icon"] == "colour" and not d["causes"])


def context(run: Run, lang: str) -> dict[str, Any]:
    """Everything the template shows, as plain strings and lists (rendered in ``lang``)."""
    lang = normalize_lang(lang)

    def t(text: str, **args: Any) -> str:
        return render_msg(msg(text, **args), lang)

    devices = [_device_view(v, lang, t) for v in run.devices]
    for i, d in enumerate(devices, 1):
        d["anchor"] = f"device-{i}"
    attention = sorted(
        (d for d in devices if d["icon"] == "grey" or d["state"] != "online"),
        key=lambda d: (vocab.state_rank(d["state"]), d["name"]),
    )
    sorted_devices = sorted(devices, key=lambda d: (vocab.state_rank(d["state"]), d["name"]))
    site_causes = [_cause_view(c, lang, t) for c in run.site_causes]
    counts = {s: sum(1 for d in devices if d["state"] == s) for s in vocab.STATES}
    facts = Facts(run.checks)
    return {
        "lang": lang,
        "t": t,
        "site": run.site,
        "started": format_datetime(run.started_at, lang),
        "duration": format_duration(run.duration_s, lang),
        "version": run.tool_version,
        "worst": run.worst_state,
        "worst_label": t(vocab.state_word(run.worst_state)),
        "counts": counts,
        "grey_count": sum(1 for d in devices if d["icon"] == "grey"),
        "attention": attention,
        "devices": [d for d in sorted_devices if not _quiet(d)],
        "quiet_devices": [d for d in sorted_devices if _quiet(d)],
        "site_causes": [c for c in site_causes if c["strong"]],
        "site_notes": [c for c in site_causes if not c["strong"]],
        "network": _network_view(run, facts, lang, t),
        "phone": phone_view(run, facts, lambda c: _cause_view(c, lang, t), t),
        "checks": [_check_view(r, lang, t) for r in run.checks],
        "state_labels": {k: t(v) for k, v in vocab.STATE_WORD.items()},
        "legend": _legend(t),
        "path": _path_view(run, lang),
        "section_names": SECTIONS,
    }


def _path_view(run: Run, lang: str) -> dict[str, Any]:
    """The path picture: inline SVG (built and escaped by ``path.svg``) and its marks as text."""
    from markupsafe import Markup

    from diag.reports import path

    def t(m: str | Message) -> str:
        return render_msg(m, lang)

    model = path.path_model(run)
    culprits = set(model.culprits())
    rows = path.findings(model, t)
    for r in rows:
        r["culprit"] = "1" if r["id"] in culprits and r["level"] == "bad" else ""
    # Markup: every string in the drawing went through path._esc (device names, answers).
    return {"svg": Markup(path.svg(model, t, culprits)), "findings": rows}


def _legend(t: Callable[..., str]) -> list[dict[str, str]]:
    """The icon colours, as in the app: one swatch per way of adding a device, then grey."""
    out = [
        {"colour": vocab.ICON_COLOURS[via], "label": t(vocab.VIA_LABEL[via])}
        for via in vocab.ADDED_VIA_ORDER
    ]
    out.append({"colour": vocab.ICON_GREY, "label": t(vocab.GREY_MEANING)})
    return out


def render(run: Run, lang: str = "en", sections: Sequence[Any] = ()) -> str:
    """The whole report as one HTML document.

    ``sections`` are extra parts shown before the appendix (the monitor's history): each must be a
    ``markupsafe.Markup`` made by an autoescaping template; anything else (a plain string) is
    escaped and shows as text, so a caller can never smuggle raw data in as HTML.
    """
    ctx = context(run, lang)
    ctx["sections"] = list(sections)
    return str(_env().get_template("report.html").render(**ctx))


def write(run: Run, path: str | Path, lang: str = "en", sections: Sequence[Any] = ()) -> None:
    """Writes atomically (temp file + rename) so a half-written report is never mailed."""
    path = Path(path)
    # backslashreplace: text from outside may hold lone surrogates (undecodable bytes), which
    # strict UTF-8 refuses; the report shows them as \udcff instead of not being written.
    data = render(run, lang, sections).encode("utf-8", errors="backslashreplace")
    write_atomic(path, data, tmp_name=f".{path.name}.tmp")
