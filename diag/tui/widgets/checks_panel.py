"""The checks panel: one row per check with a spinner, progress and elapsed time; runs the checks.

The run itself happens in a named, exclusive worker (``checks``): starting a new run cancels the one
in progress. The worker only posts messages; this widget updates its rows from them and lets them
bubble to the screen, which re-diagnoses. Every message carries the run's number so that the last
words of a cancelled run, still in the queue, are recognised and dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable

from diag.checks.base import Progress, Registry
from diag.i18n import N_
from diag.i18n import Message as Words
from diag.model import CheckResult
from diag.reports.terminal import printable
from diag.runner import CheckFinished, CheckStarted, Event, Plan, RunFinished
from diag.tui.present import (
    PHASE_WORD,
    SPINNER,
    STATUS_GLYPH,
    STATUS_STYLE,
    STATUS_WORD,
    Phase,
    fmt_seconds,
    progress_bar,
    t,
)
from diag.tui.runthread import RunRequest, run_in_thread

# Progress events closer together than this per check are dropped, s: the screen repaints at
# most every 1/60 s anyway, and a check reporting in a tight loop must not flood the queue.
PROGRESS_MIN_INTERVAL_S = 0.05
# How often spinners, elapsed times and progress bars move while checks run, s. Each move
# redraws the table (~2.5 kB of terminal output at 80x24 with eight checks running), so
# progress is drawn on this tick, not as it arrives. Over SSH the screen shares the site's
# (often LTE) uplink with the bandwidth check: two frames a second still look alive and cost
# ~5 kB/s; four would double that.
TICK_S = 0.5


@dataclass
class CheckRow:
    """What the panel knows about one check in the current run."""

    check_id: str
    title: Words | None = None
    phase: Phase = "queued"
    started: float | None = None
    fraction: float | None = None
    note: Words | None = None
    result: CheckResult | None = None


class ChecksPanel(DataTable[Text]):
    """The checks of the run, live."""

    @dataclass
    class Planned(Message):
        run_id: int
        plan: Plan
        registry: Registry

    @dataclass
    class Started(Message):
        run_id: int
        check_id: str
        at: float

    @dataclass
    class Progressed(Message):
        run_id: int
        check_id: str
        fraction: float
        note: Words | None

    @dataclass
    class Finished(Message):
        run_id: int
        result: CheckResult

    @dataclass
    class RunDone(Message):
        run_id: int
        cancelled: bool = False
        error: str | None = None

    lang: reactive[str] = reactive("en")
    running: reactive[bool] = reactive(False)

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, *, id: str | None = None
    ) -> None:
        """``clock`` is the run's monotonic clock (the injected world's), for elapsed times."""
        super().__init__(id=id, cursor_type="row", show_header=False, zebra_stripes=False)
        self.rows_by_id: dict[str, CheckRow] = {}
        self.run_id = 0
        self._clock = clock
        self._frame = 0
        self._last_progress: dict[str, float] = {}
        self._tick: Timer | None = None

    # -- building the table -------------------------------------------------------------------

    def on_mount(self) -> None:
        self._build()
        self._tick = self.set_interval(TICK_S, self._on_tick, pause=True)

    def _build(self) -> None:
        keep = self.selected_check
        self.clear(columns=True)
        # The spinner or result glyph leads the check's id; the second column is the status
        # word once done, the progress bar while running; then elapsed time, then the summary.
        self.add_column(t(N_("Check"), self.lang), key="id", width=12)
        self.add_column(t(N_("Status"), self.lang), key="status", width=9)
        self.add_column(t(N_("Time"), self.lang), key="time", width=6)
        self.add_column(t(N_("Summary"), self.lang), key="info")
        for row in self.rows_by_id.values():
            self.add_row(*self._cells(row), key=row.check_id)
        if keep is not None:
            self.select_check(keep)

    def watch_lang(self) -> None:
        if self.is_mounted:
            self._build()

    def watch_running(self, running: bool) -> None:
        self.set_class(running, "-running")
        if self._tick is not None:
            if running:
                self._tick.resume()
            else:
                self._tick.pause()

    @property
    def selected_check(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return str(key.value) if key.value is not None else None

    def select_check(self, check_id: str) -> None:
        try:
            self.move_cursor(row=self.get_row_index(check_id))
        except Exception:
            pass  # not in this run

    def elapsed(self, row: CheckRow) -> str:
        """The row's time: its duration once done, the time so far while running."""
        if row.result is not None:
            return fmt_seconds(row.result.duration_s, self.lang)
        if row.phase == "running" and row.started is not None:
            return fmt_seconds(max(0.0, self._clock() - row.started), self.lang)
        return ""

    def _cells(self, row: CheckRow) -> tuple[Text, Text, Text, Text]:
        lang = self.lang
        res = row.result
        if res is not None:
            style = STATUS_STYLE[res.status]
            name = Text(STATUS_GLYPH[res.status] + " ", style=style)
            status = Text(t(STATUS_WORD[res.status], lang), style=style)
            info = Text(t(res.summary, lang))
        elif row.phase == "running":
            name = Text(SPINNER[self._frame % len(SPINNER)] + " ", style="bold cyan")
            if row.fraction is not None:
                status = Text(f"{progress_bar(row.fraction, 4)}{row.fraction:>4.0%}", style="cyan")
            else:
                status = Text(t(PHASE_WORD["running"], lang), style="cyan")
            info = Text(t(row.note, lang) if row.note is not None else "")
        else:
            name = Text("· " if row.phase == "queued" else "× ", style="dim")
            status = Text(t(PHASE_WORD[row.phase], lang), style="dim")
            info = Text(t(row.title, lang) if row.title is not None else "", style="dim")
        name.append(printable(row.check_id))
        time = Text(self.elapsed(row), justify="right")
        return name, status, time, info

    def _refresh_row(self, check_id: str) -> None:
        row = self.rows_by_id.get(check_id)
        if row is None:
            return
        if check_id not in self.rows:
            self.add_row(*self._cells(row), key=check_id)
            return
        done = row.result is not None
        for key, cell in zip(("id", "status", "time", "info"), self._cells(row), strict=True):
            old = self.get_cell(check_id, key)
            if isinstance(old, Text) and (old.plain, old.style, old.spans) == (
                cell.plain,
                cell.style,
                cell.spans,
            ):
                continue  # each update repaints the whole table: skip unchanged cells
            # Widening the summary column re-lays the screen out: only when a result lands.
            self.update_cell(check_id, key, cell, update_width=key == "info" and done)

    def _on_tick(self) -> None:
        self._frame += 1
        for row in self.rows_by_id.values():
            if row.phase == "running" and row.result is None:
                self._refresh_row(row.check_id)

    # -- showing a frozen run -----------------------------------------------------------------

    def show_results(self, results: Mapping[str, CheckResult]) -> None:
        """Shows finished results without running anything (a saved or frozen run)."""
        self.rows_by_id = {
            cid: CheckRow(cid, phase="done", result=res) for cid, res in results.items()
        }
        self._build()

    # -- running ------------------------------------------------------------------------------

    def start(self, request: RunRequest) -> int:
        """Starts a run (cancelling the one in progress); returns its number."""
        self.run_id += 1
        self.running = True
        for row in self.rows_by_id.values():
            if row.phase in ("queued", "running"):
                row.phase = "stopped"
                self._refresh_row(row.check_id)
        self._run(request, self.run_id)
        return self.run_id

    @work(name="checks", group="checks", exclusive=True, exit_on_error=False)
    async def _run(self, request: RunRequest, run_id: int) -> None:
        last = self._last_progress

        def on_plan(registry: Registry, the_plan: Plan) -> None:
            self.post_message(self.Planned(run_id, the_plan, registry))

        def on_event(event: Event) -> None:
            # Called from the run's thread: only hand over, never touch the widgets here.
            if isinstance(event, CheckStarted):
                self.post_message(self.Started(run_id, event.check_id, request.world.monotonic()))
            elif isinstance(event, Progress):
                now = request.world.monotonic()
                if now - last.get(event.check_id, -1e9) < PROGRESS_MIN_INTERVAL_S:
                    return
                last[event.check_id] = now
                self.post_message(
                    self.Progressed(run_id, event.check_id, event.fraction, event.note)
                )
            elif isinstance(event, CheckFinished):
                self.post_message(self.Finished(run_id, event.result))
            elif isinstance(event, RunFinished):
                self.post_message(self.RunDone(run_id))

        try:
            await run_in_thread(request, on_plan, on_event)
        except asyncio.CancelledError:
            self.post_message(self.RunDone(run_id, cancelled=True))
            raise
        except Exception as exc:
            self.post_message(self.RunDone(run_id, error=f"{type(exc).__name__}: {exc}"[:200]))

    def _stale(self, message: Planned | Started | Progressed | Finished | RunDone) -> bool:
        if message.run_id != self.run_id:
            message.stop()  # a cancelled run's late words: neither shown nor diagnosed
            return True
        return False

    def on_checks_panel_planned(self, message: Planned) -> None:
        if self._stale(message):
            return
        for item in message.plan.items:
            check = message.registry.checks.get(item.check_id)
            row = CheckRow(item.check_id, title=check.title if check is not None else None)
            self.rows_by_id[item.check_id] = row
        self._build()

    def on_checks_panel_started(self, message: Started) -> None:
        if self._stale(message):
            return
        row = self.rows_by_id.setdefault(message.check_id, CheckRow(message.check_id))
        row.phase, row.started, row.result = "running", message.at, None
        self._refresh_row(message.check_id)

    def on_checks_panel_progressed(self, message: Progressed) -> None:
        if self._stale(message):
            return
        row = self.rows_by_id.get(message.check_id)
        if row is not None and row.result is None:
            row.fraction, row.note = message.fraction, message.note  # drawn on the next tick

    def on_checks_panel_finished(self, message: Finished) -> None:
        if self._stale(message):
            return
        cid = message.result.check_id
        row = self.rows_by_id.setdefault(cid, CheckRow(cid))
        row.phase, row.result = "done", message.result
        self._refresh_row(cid)

    def on_checks_panel_run_done(self, message: RunDone) -> None:
        if self._stale(message):
            return
        self.running = False
        for row in self.rows_by_id.values():
            if row.phase in ("queued", "running"):
                row.phase = "stopped"
                self._refresh_row(row.check_id)
