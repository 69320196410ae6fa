"""The grey devices' fix steps as a printable checklist (plain text, in the chosen language).

One block per device the app shows grey (or that is not online): its kind and how it was added,
then each strong cause with its detail and its fix steps as ``[ ]`` boxes to tick on site, then
the site-wide causes once. The dashboard writes it with key ``c``; it prints on any printer and
reads in any mail client (no HTML needed).
"""

from __future__ import annotations

from diag import vocab
from diag.diagnosis.catalog import CATALOG, title_of
from diag.i18n import N_, format_datetime, msg, render
from diag.model import Cause, Run
from diag.reports.terminal import printable

# Causes below this confidence are notes, not something to go and fix.
STRONG = 0.5
TITLE = N_("Checklist for {site}")
WHEN = N_("run of {when}")
NONE = N_("No grey device: nothing to fix on site.")
SITE = N_("Site-wide")
NO_STEPS = N_("No fix steps known: see the report's evidence.")
SEE_SITE = N_("see the site-wide steps below")
BOX = "[ ]"


def _cause(lines: list[str], c: Cause, lang: str) -> None:
    lines.append(f"  * {render(title_of(c.id), lang)} ({c.confidence:.0%})")
    if c.detail is not None:
        lines.append(f"    {render(c.detail, lang)}")
    steps = [render(s, lang) for s in c.fix]
    for step in steps or [render(NO_STEPS, lang)]:
        lines.append(f"    {BOX} {step}")


def checklist_text(run: Run, lang: str = "en") -> str:
    """The checklist of ``run`` in ``lang``; text from outside (names, details) made printable."""
    head = render(msg(TITLE, site=run.site), lang)
    lines = [
        head,
        "=" * len(head),
        render(msg(WHEN, when=format_datetime(run.started_at, lang)), lang),
        "",
    ]
    shown = [
        v
        for v in sorted(run.devices, key=lambda v: (vocab.state_rank(v.state), v.device))
        if v.icon == "grey" or v.state != "online"
    ]
    for v in shown:
        kind = render(vocab.KIND_WORD.get(v.kind, v.kind), lang)
        via = render(vocab.via_label(v.added_via), lang)
        state = render(vocab.state_word(v.state), lang)
        lines.append(f"{v.device} — {kind}, {via}: {state}")
        strong = [c for c in v.causes if c.confidence >= STRONG]
        for c in strong:
            info = CATALOG.get(c.id)
            if info is not None and info.scope == "site":
                # Its steps are listed once, under the site-wide causes.
                see = render(SEE_SITE, lang)
                lines.append(f"  * {render(title_of(c.id), lang)} ({c.confidence:.0%}): {see}")
            else:
                _cause(lines, c, lang)
        if not strong:
            lines.append(f"    {BOX} {render(NO_STEPS, lang)}")
        lines.append("")
    site = [c for c in run.site_causes if c.confidence >= STRONG]
    if site:
        lines.append(render(SITE, lang))
        for c in site:
            _cause(lines, c, lang)
        lines.append("")
    if not shown and not site:
        lines.append(render(NONE, lang))
    return "\n".join(printable(line) for line in lines).rstrip() + "\n"
