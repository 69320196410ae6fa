"""Charts for the HTML report: matplotlib (Agg) figures as self-contained SVG data URIs.

matplotlib is imported lazily, on the first chart, so that ``diag monitor`` (cron) and the TUI never
pay for it. Figures are built with the object API (``matplotlib.figure.Figure``), not pyplot: no
global state, safe in any thread. Text stays text in the SVG (``svg.fonttype = none``), which keeps
each chart to a few kB. The report embeds a chart as ``<img src="data:image/svg+xml;base64,...">``:
labels come from outside (server names), and an SVG shown through ``<img>`` can never run script,
whatever a label contains.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Palette shared with the report's CSS.
OK = "#1e9e5a"
WARN = "#d98a00"
BAD = "#d64545"
INK = "#27313d"
MUTED = "#8a94a0"
GRID = "#e3e7ec"

_configured = False


def _mpl() -> Any:
    global _configured
    import matplotlib

    if not _configured:
        matplotlib.use("Agg", force=True)
        matplotlib.rcParams.update(
            {
                "svg.fonttype": "none",
                # Stable element ids: the same run renders to the same bytes.
                "svg.hashsalt": "diag",
                "font.family": ["DejaVu Sans", "sans-serif"],
                "font.size": 9,
                "axes.edgecolor": GRID,
                "axes.labelcolor": INK,
                "xtick.color": INK,
                "ytick.color": INK,
            }
        )
        _configured = True
    from matplotlib.figure import Figure

    return Figure


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str = OK
    # Shown after the bar; None: the value with the chart's unit.
    note: str | None = None


def _to_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    # No bbox_inches="tight": it draws the figure twice; the margins are set by the chart.
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def bar_chart(
    bars: Sequence[Bar],
    unit: str,
    title: str,
    limit: float | None = None,
    limit_label: str = "",
) -> str:
    """Horizontal bars (one per label) with an optional threshold line; an SVG data URI."""
    Figure = _mpl()
    height = 1.0 + 0.3 * max(1, len(bars))
    width = 6.4
    fig = Figure(figsize=(width, height))
    labels = [_plain(_short(b.label)) for b in bars]
    # Room for the longest label on the left (about 0.075 in per character at 9 pt), for the
    # title above and the axis label below; fixed margins keep one draw per chart.
    left = min(0.45, (0.25 + 0.075 * max((len(x) for x in labels), default=4)) / width)
    fig.subplots_adjust(left=left, right=0.97, top=1 - 0.42 / height, bottom=0.55 / height)
    ax = fig.add_subplot()
    values = [_bounded(b.value) for b in bars]
    ys = list(range(len(bars)))
    ax.barh(ys, values, color=[b.colour for b in bars], height=0.6)
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()
    limit = _bounded(limit) if limit is not None else None
    top = max([*values, limit or 0.0, 1e-9])
    ax.set_xlim(0, top * 1.22)
    for y, b, v in zip(ys, bars, values, strict=True):
        ax.text(
            v + top * 0.01,
            y,
            _plain(b.note if b.note is not None else f"{_num(v)} {unit}"),
            va="center",
            fontsize=8,
            color=INK,
        )
    if limit is not None:
        ax.axvline(limit, color=BAD, linestyle="--", linewidth=1, label=_plain(limit_label) or None)
    ax.set_title(_plain(title), loc="left", fontsize=10, color=INK)
    ax.set_xlabel(_plain(unit))
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _to_data_uri(fig)


# Bars longer than this are cut to it: a broken measurement (1e308 ms) must not overflow the
# axis limits to infinity, which matplotlib refuses.
MAX_VALUE = 1e12


def _bounded(v: float) -> float:
    """The bar's length: NaN -> 0, negative -> 0, beyond MAX_VALUE -> MAX_VALUE."""
    return min(MAX_VALUE, max(0.0, v)) if math.isfinite(v) or v > 0 else 0.0


def _plain(text: str) -> str:
    """Text as-is: "$" would start matplotlib mathtext, and "$^$" in a label makes it raise;
    control characters are not allowed in XML, and one in a label made the SVG unreadable."""
    from diag.reports.terminal import printable

    return printable(text).replace("$", r"\$")


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
