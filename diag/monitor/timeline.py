"""The history section of the HTML report: availability timeline per device, outages, uptime.

Drawn as hand-made inline SVG rather than matplotlib: a year for 64 devices is 23,000 day cells, and
only the imperfect days need a shape of their own (a full-green bar underneath covers the rest), so
the section stays small and renders in milliseconds from the rollup tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from jinja2 import Environment
from markupsafe import Markup

from diag.i18n import N_, render
from diag.monitor.store import DeviceHistory, Outage

# Width of one timeline, px; a year at 2 px a day.
BAR_W = 730
BAR_H = 14
# Outages listed in the report (the most recent); the count of all is shown too.
MAX_OUTAGES_LISTED = 50

_TEMPLATE = """
<section class="history" id="history">
<h2>{{ t("History") }}</h2>
<p class="muted">{{ t("Availability from {start} to {end}; each bar is one device, a day per step.")
   .format(start=start, end=end) }}</p>
<table class="history-table">
<thead><tr><th>{{ t("Device") }}</th><th>{{ t("Uptime") }}</th><th>{{ t("Timeline") }}</th>
<th>{{ t("Outages") }}</th></tr></thead>
<tbody>
{% for row in rows %}
<tr><td>{{ row.name }}</td><td class="num">{{ row.uptime }}</td>
<td><svg width="{{ bar_w }}" height="{{ bar_h }}" viewBox="0 0 {{ bar_w }} {{ bar_h }}"
 role="img" aria-label="{{ row.name }} {{ row.uptime }}"><rect width="{{ row.covered_w }}"
 x="{{ row.covered_x }}" height="{{ bar_h }}" fill="#2e9d57"/>
{% for x, w, colour, title in row.cells %}<rect x="{{ x }}" width="{{ w }}" height="{{ bar_h }}"
 fill="{{ colour }}"><title>{{ title }}</title></rect>{% endfor %}</svg></td>
<td class="num">{{ row.outages }}</td></tr>
{% endfor %}
</tbody></table>
{% if outages %}
<h3>{{ t("Outages") }}{% if total_outages > outages|length %} ({{ t("latest {n} of {total}")
  .format(n=outages|length, total=total_outages) }}){% endif %}</h3>
<table class="outages"><thead><tr><th>{{ t("Device") }}</th><th>{{ t("Start") }}</th>
<th>{{ t("Duration") }}</th><th>{{ t("Cause") }}</th></tr></thead><tbody>
{% for o in outages %}<tr><td>{{ o.device }}</td><td>{{ o.start }}</td><td>{{ o.duration }}</td>
<td>{{ o.cause }}</td></tr>{% endfor %}
</tbody></table>
{% else %}<p>{{ t("No outages in this period.") }}</p>{% endif %}
</section>
"""


# The template's words, listed here so the message extractor finds them.
_WORDS = (
    N_("History"),
    N_("Availability from {start} to {end}; each bar is one device, a day per step."),
    N_("Device"),
    N_("Uptime"),
    N_("Timeline"),
    N_("Outages"),
    N_("latest {n} of {total}"),
    N_("Start"),
    N_("Duration"),
    N_("Cause"),
    N_("No outages in this period."),
)


@dataclass(frozen=True)
class _Row:
    name: str
    uptime: str
    covered_x: float
    covered_w: float
    cells: list[tuple[float, float, str, str]]
    outages: int


def _colour(fraction: float) -> str:
    if fraction >= 0.99:
        return "#8fcf9f"  # a blip: lighter green
    if fraction >= 0.9:
        return "#e0a526"
    return "#c8372d"


def duration_text(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return render(N_("ongoing"), lang)
    m = int(seconds) // 60
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    if d:
        return f"{d} d {h} h"
    return f"{h} h {m:02d} min" if h else f"{m} min"


def history_section(
    histories: Sequence[DeviceHistory],
    start: dt.date,
    end: dt.date,
    lang: str = "en",
) -> Markup:
    """An HTML fragment (everything from outside escaped) for the report's history section."""
    from diag.diagnosis.catalog import title_of

    days = max(1, (end - start).days + 1)
    step = BAR_W / days
    rows = []
    all_outages: list[Outage] = []
    for h in histories:
        cells = []
        first = last = None
        for day, frac in h.days:
            i = (day - start).days
            if not 0 <= i < days:
                continue
            first = i if first is None else first
            last = i
            if frac < 1.0:
                title = f"{day.isoformat()}: {frac * 100:.1f}%"
                cells.append((round(i * step, 2), max(round(step, 2), 1.0), _colour(frac), title))
        covered_x = round((first or 0) * step, 2)
        covered_w = round(
            ((last - first + 1) if first is not None and last is not None else 0) * step, 2
        )
        uptime = f"{h.uptime_pct:.2f}%" if h.uptime_pct is not None else "–"
        rows.append(_Row(h.device, uptime, covered_x, covered_w, cells, len(h.outages)))
        all_outages.extend(h.outages)
    all_outages.sort(key=lambda o: o.start, reverse=True)
    listed = [
        {
            "device": o.device,
            "start": f"{o.start:%Y-%m-%d %H:%M} UTC",
            "duration": duration_text(o.duration_s, lang),
            "cause": title_of(o.cause).render(lang) if o.cause else "–",
        }
        for o in all_outages[:MAX_OUTAGES_LISTED]
    ]
    env = Environment(autoescape=True)
    # Markup: the report embeds it as HTML; every value in it went through autoescaping above.
    return Markup(
        env.from_string(_TEMPLATE).render(
            t=lambda s: render(s, lang),
            rows=rows,
            outages=listed,
            total_outages=len(all_outages),
            start=start.isoformat(),
            end=end.isoformat(),
            bar_w=BAR_W,
            bar_h=BAR_H,
        )
    )


def section_from_db(
    db_path: str, lang: str = "en", days: int = 365, now: dt.datetime | None = None
) -> Markup:
    """The history section for the last ``days`` days of a monitor database."""
    from diag.monitor.store import Store

    end = (now or dt.datetime.now(dt.UTC)).date()
    start = end - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(start, dt.time(), dt.UTC)
    with Store(db_path) as store:
        return history_section(store.device_history(since), start, end, lang)
