"""The detail pane: why a device is grey (causes, evidence, fixes), or what a check found.

It renders what it is given: the screen hands it the selection and the current diagnosis every
time either changes. Long evidence (DNS answers, banners) is cut and stripped of control
characters, since it came from the network.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from diag import vocab
from diag.diagnosis.catalog import CATALOG, title_of
from diag.i18n import N_, Message, msg
from diag.model import Cause, CheckResult, Device, Verdict
from diag.reports.terminal import printable
from diag.tui.present import (
    GREY,
    ICON_GLYPH,
    PHASE_WORD,
    STATE_STYLE,
    STATE_TAG,
    STATUS_STYLE,
    STATUS_WORD,
    VIA_COLOUR,
    VIA_MEANING,
    fmt_fact,
    fmt_seconds,
    fmt_value,
    t,
)
from diag.tui.widgets.checks_panel import CheckRow

# Causes below this confidence are listed as "also considered", not as the answer: SPEC says a
# healthy site gives no cause above 0.5.
SHOWN_CONFIDENCE = 0.5
# Evidence lines per cause: more than this is noise on a 24-line terminal; the report has all.
MAX_EVIDENCE = 6


class DetailPane(VerticalScroll):
    """Causes, evidence and fixes for the selected device, or the selected check's result."""

    lang: reactive[str] = reactive("en")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: tuple[str, tuple[object, ...]] | None = None
        self._subject = ""

    def compose(self) -> ComposeResult:
        yield Static(id="detail-body")

    def _put(self, text: Text, subject: str) -> None:
        # Every finished check re-sends the selection; an unchanged text must not cost a layout.
        key = (text.plain, tuple(text.spans))
        if key == self._shown:
            return
        self._shown = key
        self.query_one("#detail-body", Static).update(text)
        if subject != self._subject:
            self._subject = subject
            self.scroll_home(animate=False)  # a new selection is read from its top

    # -- devices --------------------------------------------------------------------------------

    def show_device(
        self,
        device: Device,
        verdict: Verdict | None,
        site_causes: Sequence[Cause],
        marked_grey: bool,
        checking: bool,
    ) -> None:
        lang = self.lang
        out = Text()
        colour = VIA_COLOUR[device.added_via]
        icon = verdict.icon if verdict is not None else "unknown"
        out.append(ICON_GLYPH[icon] + " ", style=f"bold {GREY if icon == 'grey' else colour}")
        out.append(printable(device.name), style="bold")
        out.append(f"  {device.kind.upper()}\n")
        out.append(t(VIA_MEANING[device.added_via], lang) + "\n", style=colour)
        if device.address:
            out.append(f"{t(N_('Address'), lang)}: {printable(device.address)}\n")
        if verdict is None:
            word = N_("checking…") if checking else N_("not diagnosed yet")
            out.append(t(word, lang) + "\n", style="dim")
        else:
            out.append(f"{t(N_('State'), lang)}: ")
            # After "State:" the column word ("State: unknown", not "State: state unknown").
            out.append(t(STATE_TAG[verdict.state], lang), style=STATE_STYLE[verdict.state])
            icon_word = vocab.icon_word(verdict.icon)
            out.append(f"  {t(N_('app icon'), lang)}: {t(icon_word, lang)}\n")
            if verdict.state == "unknown":
                # Why the state is unknown: what could not be measured, naming the check.
                self._gaps(out, verdict.unmeasured)
        if marked_grey:
            out.append(t(N_("You marked: the app shows this device grey."), lang) + "\n", "bold")
        causes = list(verdict.causes) if verdict is not None else []
        self._causes(out, causes, N_("Why"))
        # The diagnosis attaches the site causes that explain this device's state to its own
        # list; the rest are shown once, below, so nothing is listed twice.
        own = {c.id for c in causes}
        site = [c for c in site_causes if c.confidence >= SHOWN_CONFIDENCE and c.id not in own]
        if site:
            self._causes(out, site, N_("Site-wide"))
        if (
            verdict is not None
            and verdict.state != "unknown"
            and not any(c.confidence >= SHOWN_CONFIDENCE for c in (*causes, *site))
        ):
            out.append("\n" + t(N_("No problem found for this device."), lang) + "\n", "green")
        if verdict is not None and verdict.state != "unknown" and verdict.unmeasured:
            # A measured state: the evidence a device cause needs that is missing, after the
            # causes (on 24 lines the state and the why come first).
            out.append(f"\n{t(N_('Not measured'), lang)}\n", style="bold underline")
            self._gaps(out, verdict.unmeasured)
        self._put(out, f"device:{device.name}")

    def _gaps(self, out: Text, gaps: Sequence[Message]) -> None:
        for gap in gaps:
            out.append(f"? {printable(t(gap, self.lang))}\n", style=STATE_STYLE["unknown"])

    def _causes(self, out: Text, causes: Sequence[Cause], heading: str) -> None:
        lang = self.lang
        if not causes:
            return
        out.append(f"\n{t(heading, lang)}\n", style="bold underline")
        ranked = sorted(causes, key=lambda c: -c.confidence)
        for i, cause in enumerate(ranked, 1):
            strong = cause.confidence >= SHOWN_CONFIDENCE
            out.append(f"{i}. ", style="bold")
            out.append(t(title_of(cause.id), lang), style="bold" if strong else "dim")
            out.append(f" ({cause.confidence:.0%}) [{cause.id}]\n", style="" if strong else "dim")
            info = CATALOG.get(cause.id)
            if info is not None and info.checklist:
                out.append(
                    "   " + t(N_("checklist: cannot be measured from the site"), lang) + "\n"
                )
            if cause.detail is not None:
                out.append(f"   {t(cause.detail, lang)}\n")
            # What to do comes before the evidence: on 24 lines it is what must be on screen.
            if cause.fix:
                out.append(f"   {t(N_('Fix'), lang)}:\n", style="italic")
                for n, step in enumerate(cause.fix, 1):
                    out.append(f"   {n}) {t(step, lang)}\n")
            if cause.evidence:
                out.append(f"   {t(N_('Evidence'), lang)}:\n", style="italic")
                for fact in cause.evidence[:MAX_EVIDENCE]:
                    out.append(f"   • {fmt_fact(fact, lang)}\n")
                more = len(cause.evidence) - MAX_EVIDENCE
                if more > 0:
                    out.append("   " + t(msg("… and {n} more", n=more), lang) + "\n", "dim")

    # -- checks ---------------------------------------------------------------------------------

    def show_check(self, row: CheckRow, elapsed: str) -> None:
        lang = self.lang
        out = Text()
        out.append(printable(row.check_id), style="bold")
        if row.title is not None:
            out.append(f" — {t(row.title, lang)}")
        out.append("\n")
        res: CheckResult | None = row.result
        if res is None:
            out.append(f"{t(PHASE_WORD[row.phase], lang)}", style="cyan")
            if elapsed:
                out.append(f"  {elapsed}")
            if row.fraction is not None:
                out.append(f"  {row.fraction:.0%}")
            out.append("\n")
            if row.note is not None:
                out.append(t(row.note, lang) + "\n")
            self._put(out, f"check:{row.check_id}")
            return
        out.append(t(STATUS_WORD[res.status], lang), style=STATUS_STYLE[res.status])
        out.append(f"  {fmt_seconds(res.duration_s, lang)}\n")
        out.append(t(res.summary, lang) + "\n")
        if res.targets and res.targets != ("site",):
            targets = printable(", ".join(res.targets))
            out.append(f"{t(N_('Targets'), lang)}: {targets}\n", style="dim")
        if res.metrics:
            out.append(f"\n{t(N_('Measurements'), lang)}\n", style="bold underline")
            for name, metric in res.metrics.items():
                out.append(
                    f"• {printable(name)} = {fmt_value(metric.value, metric.unit, lang=lang)}\n"
                )
        if res.facts:
            out.append(f"\n{t(N_('Facts'), lang)}\n", style="bold underline")
            for fact in res.facts:
                out.append(f"• {fmt_fact(fact, lang)}\n")
        self._put(out, f"check:{row.check_id}")

    def show_nothing(self) -> None:
        self._put(Text(t(N_("Select a device or a check."), self.lang), style="dim"), "")
