"""The plain-text summary ``diag run`` prints: devices with their state and top cause, then checks.

Plain text with fixed columns so it reads the same over SSH, in a log and without colour.
"""

from __future__ import annotations

from diag import text, vocab
from diag.diagnosis.catalog import title_of
from diag.i18n import N_, format_number, msg, render
from diag.model import Run

LIKELY = 0.5
_STATUS = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skip": "SKIP", "error": "ERROR"}
# Column headings, marked here (not inside f-strings) so that the extractor finds them.
SITE, DURATION, SECONDS = N_("Site"), N_("duration"), N_("{seconds} s")
DEVICE, STATE, ICON, WHY = N_("Device"), N_("State"), N_("Icon"), N_("Why")
SITE_CAUSE, NO_DEVICES = N_("Site cause"), N_("no devices in the site file")
CHECK, RESULT, TIME, SUMMARY = N_("Check"), N_("Result"), N_("Time"), N_("Summary")


# The one sanitizer (diag.text); re-exported here, where the dashboard and the CLI import it.
printable = text.printable


def summary_table(run: Run, lang: str = "en") -> str:

    def t(s: str) -> str:
        return render(s, lang)

    duration = render(
        msg(SECONDS, seconds=format_number(run.duration_s, lang, 1, fixed=True)), lang
    )
    lines = [f"{t(SITE)}: {run.site}    {t(DURATION)}: {duration}", ""]
    if run.devices:
        # Widths in terminal cells of the escaped names: a wide character takes two, an escape
        # (\x1b) four; cutting after escaping keeps the columns aligned.
        w = max(text.width(t(DEVICE)), *(text.width(printable(v.device)) for v in run.devices))
        w = min(w, 28)
        # Column widths from the words in this language ("poza siecią" is longer than "offline").
        ws = max(len(t(x)) for x in (STATE, *vocab.STATE_WORD.values()))
        wi = max(len(t(x)) for x in (ICON, *vocab.ICON_WORD.values()))
        lines.append(f"{text.pad(t(DEVICE), w)}  {t(STATE):<{ws}} {t(ICON):<{wi}} {t(WHY)}")
        for v in run.devices:
            # Below 0.5 a cause is a note (a share about to expire, a possibility), not "why": the
            # table would otherwise accuse a healthy device; the reports list the notes.
            top = v.causes[0] if v.causes and v.causes[0].confidence >= LIKELY else None
            why = f"{render(title_of(top.id), lang)} ({top.confidence:.0%})" if top else "-"
            if v.state == "unknown" and v.unmeasured:
                # "?": not measured; the gaps name the check that failed and why.
                why = "? " + "; ".join(m.render(lang) for m in v.unmeasured)
            state, icon = t(vocab.state_word(v.state)), t(vocab.icon_word(v.icon))
            lines.append(f"{text.pad(v.device, w)}  {state:<{ws}} {icon:<{wi}} {why}")
    else:
        lines.append(t(NO_DEVICES))
    lines.append("")
    likely = [c for c in run.site_causes if c.confidence >= LIKELY]
    for cause in likely:
        title = render(title_of(cause.id), lang)
        lines.append(f"{t(SITE_CAUSE)}: {title} ({cause.confidence:.0%})")
    if likely:
        lines.append("")
    w = max((len(c.check_id) for c in run.checks), default=5)
    w = max(w, len(t(CHECK)))
    # In other languages the report's words for a check's result (the short English tags are the
    # convention of English tools only).
    words = _STATUS if lang == "en" else {k: t(v) for k, v in vocab.STATUS_WORD.items()}
    wr = max(len(t(RESULT)), *(len(x) for x in words.values()))
    lines.append(f"{t(CHECK):<{w}}  {t(RESULT):<{wr}} {t(TIME):>7}  {t(SUMMARY)}")
    for c in run.checks:
        lines.append(
            f"{c.check_id:<{w}}  {words[c.status]:<{wr}} {c.duration_s:>6.2f}s  "
            f"{text.cut(c.summary.render(lang), 100)}"
        )
    return "\n".join(printable(line) for line in lines)
