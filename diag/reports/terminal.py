"""The plain-text summary ``diag run`` prints: devices with their state and top cause, then checks.

Plain text with fixed columns so it reads the same over SSH, in a log and without colour.
"""

from __future__ import annotations

from diag.diagnosis.catalog import title_of
from diag.i18n import N_, render
from diag.model import Run

_STATE = {"online": N_("online"), "degraded": N_("degraded"), "offline": N_("offline")}
_ICON = {"colour": N_("colour"), "grey": N_("grey")}
_STATUS = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_table(run: Run, lang: str = "en") -> str:

    def t(s: str) -> str:
        return render(s, lang)

    lines = [f"{t(N_('Site'))}: {run.site}    {t(N_('duration'))}: {run.duration_s:.1f} s", ""]
    if run.devices:
        w = max(len(t(N_("Device"))), *(len(v.device) for v in run.devices))
        w = min(w, 28)
        lines.append(
            f"{t(N_('Device')):<{w}}  {t(N_('State')):<10} {t(N_('Icon')):<7} {t(N_('Why'))}"
        )
        for v in run.devices:
            top = v.causes[0] if v.causes else None
            why = f"{render(title_of(top.id), lang)} ({top.confidence:.0%})" if top else "-"
            lines.append(
                f"{_cut(v.device, w):<{w}}  {t(_STATE[v.state]):<10} {t(_ICON[v.icon]):<7} {why}"
            )
        lines.append("")
    for cause in run.site_causes:
        title = render(title_of(cause.id), lang)
        lines.append(f"{t(N_('Site cause'))}: {title} ({cause.confidence:.0%})")
    if run.site_causes:
        lines.append("")
    w = max((len(c.check_id) for c in run.checks), default=5)
    lines.append(
        f"{t(N_('Check')):<{w}}  {t(N_('Status')):<6} {t(N_('Time')):>7}  {t(N_('Summary'))}"
    )
    for c in run.checks:
        lines.append(
            f"{c.check_id:<{w}}  {_STATUS[c.status]:<6} {c.duration_s:>6.2f}s  "
            f"{_cut(c.summary.render(lang), 100)}"
        )
    return "\n".join(lines)
