"""The dashboard screen: devices, checks, details and the site header, kept in step with the run.

Results stream in from the checks panel's worker as messages; on each finished check the screen
re-diagnoses the site (``diag.diagnosis.diagnose``) with the installer's "shows grey" observations
applied, so the device icons and causes change as the evidence arrives. Export writes JSON and
HTML in a thread worker (matplotlib can take a second) and says where the files are.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable

from diag import __version__, vocab
from diag.checks.base import Registry, World
from diag.config import with_observations
from diag.i18n import N_, format_datetime, msg
from diag.i18n import Message as Words
from diag.model import Cause, CheckResult, Run, Site, Verdict
from diag.runner import DEFAULT_DEADLINE_S
from diag.tui.present import fmt_seconds, progress_bar, t
from diag.tui.runthread import RunRequest
from diag.tui.widgets.checks_panel import ChecksPanel
from diag.tui.widgets.detail_pane import DetailPane
from diag.tui.widgets.device_list import DeviceList
from diag.tui.widgets.key_bar import KeyBar
from diag.tui.widgets.site_header import SiteHeader


@dataclass(frozen=True)
class DashboardConfig:
    """Everything the dashboard is started with; tests inject the registry, world and run."""

    site: Site
    # None: the installed checks (entry points), loaded in the run's thread.
    registry: Registry | None = None
    only: Sequence[str] | None = None
    world: World = dataclasses.field(default_factory=World)
    deadline_s: float = DEFAULT_DEADLINE_S
    deep: bool = False
    # A finished run to show instead of running (snapshot tests, saved runs); nothing is probed.
    frozen: Run | None = None
    autorun: bool = True
    export_dir: Path = Path(".")


@dataclass(frozen=True)
class ExportResult:
    json_path: Path | None
    html_path: Path | None
    html_error: str | None = None
    error: str | None = None


def slug(name: str) -> str:
    """A file-name-safe form of a site name: ``Warehouse Nowak`` -> ``warehouse-nowak``."""
    s = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return s[:40] or "site"


class Dashboard(Screen[None]):
    """The one screen the installer lives in."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rerun_all", "re-run all"),
        Binding("R", "rerun_check", "re-run check"),
        Binding("e", "export", "export"),
        Binding("g", "mark_grey", "mark grey"),
        # The customer's phone (diag phone): its QR code, then the phone check with its result.
        Binding("p", "phone", "phone", show=False),
        Binding("w", "path", "where", show=False),
        # A suspect link: the slow measurements (100-probe loss series, NAT lifetime, longer
        # bandwidth and VLAN windows) for the whole site, or for the selected check.
        Binding("d", "deep_rerun", "deep re-run", show=False),
        Binding("c", "checklist", "checklist", show=False),
        # Devices on the LAN that the site file does not name (diag discover's screen).
        Binding("f", "discover", "found on the LAN", show=False),
    ]

    @dataclass
    class Exported(Message):
        result: ExportResult

    lang: reactive[str] = reactive("en")
    # True while checks run: shown by the ``-running`` class (header and frames change colour).
    running: reactive[bool] = reactive(False)

    def __init__(self, config: DashboardConfig) -> None:
        super().__init__()
        self.config = config
        self.site = config.site
        self.registry = config.registry
        self.world = config.world
        self.results: dict[str, CheckResult] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.site_causes: tuple[Cause, ...] = ()
        # The installer's observations: device -> the app shows it grey (True) or in colour.
        self.grey: dict[str, bool] = {
            d.name: d.app_shows_grey for d in self.site.devices if d.app_shows_grey is not None
        }
        self.started_at: dt.datetime = self.world.now()
        self.t0 = self.world.monotonic()
        self.finished_in: float | None = None
        self.deep_run = config.deep
        self.focus_kind: Literal["device", "check"] = "device"
        self.last_export: ExportResult | None = None
        self.diagnosis_error: str | None = None
        self._ready = False
        # The first finished run moves the cursor to the first grey device, once, and only if
        # the installer has not moved it: the screen opens on the answer, not on row one.
        self._pointed = False

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SiteHeader(self.site, id="site").data_bind(Dashboard.lang)
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield DeviceList(self.site.devices, id="devices").data_bind(Dashboard.lang)
                yield ChecksPanel(self.world.monotonic, id="checks").data_bind(Dashboard.lang)
            yield DetailPane(id="detail").data_bind(Dashboard.lang)
        yield KeyBar(id="keys").data_bind(Dashboard.lang)

    @property
    def devices(self) -> DeviceList:
        return self.query_one(DeviceList)

    @property
    def checks(self) -> ChecksPanel:
        return self.query_one(ChecksPanel)

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    def on_mount(self) -> None:
        # is_mounted only turns true after this handler; the children exist already.
        self._ready = True
        self.devices.focus()
        frozen = self.config.frozen
        if frozen is not None:
            self.results = {c.check_id: c for c in frozen.checks}
            self.verdicts = {v.device: v for v in frozen.devices}
            self.site_causes = frozen.site_causes
            self.started_at = frozen.started_at
            self.finished_in = frozen.duration_s
            self.checks.show_results(self.results)
        elif self.config.autorun:
            # After the first frame: loading the checks imports scapy & co. in the run's thread,
            # which competes for the GIL; the installer sees the screen first.
            self.running = True
            self.call_after_refresh(self.start_run, None)
        # The status line's elapsed time and bar move once a second while checks run.
        self.set_interval(1.0, self._tick)
        self._refresh_all()

    def _tick(self) -> None:
        if self.running and self._ready:
            self.query_one(SiteHeader).show(
                self.status_line(), self._ordered_results(), self.running
            )

    def watch_lang(self) -> None:
        # The bound children get the new language after this watcher: the details are painted
        # here, so they must have it first (else a check's details stay in the old language).
        if self._ready:
            self.detail.lang = self.lang
        self._refresh_all()

    def watch_running(self, running: bool) -> None:
        self.set_class(running, "-running")

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast, as plain text: it names devices, paths and errors, and a "[/]" in a device
        name made the toast's markup parser raise while painting (a crash)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # -- running --------------------------------------------------------------------------------

    def start_run(self, only: Sequence[str] | None, deep: bool | None = None) -> int:
        """Runs all checks (``only`` None) or some; a run in progress is cancelled. ``deep``:
        the slow measurements too (None: as the dashboard was started)."""
        self.deep_run = self.config.deep if deep is None else deep
        self.started_at = self.world.now()
        self.t0 = self.world.monotonic()
        self.finished_in = None
        self.running = True
        if only is None:
            # A full re-run starts from nothing: old results would mix two moments in one verdict.
            self.results.clear()
            self.verdicts.clear()
            self.site_causes = ()
        request = RunRequest(
            site=self.observed_site(),
            only=only if only is not None else self.config.only,
            registry=self.registry,
            world=self.world,
            deadline_s=self.config.deadline_s,
            deep=self.deep_run,
        )
        run_id = self.checks.start(request)
        self._refresh_all()
        return run_id

    def observed_site(self) -> Site:
        return with_observations(self.site, self.grey)

    def on_checks_panel_planned(self, message: ChecksPanel.Planned) -> None:
        self.registry = message.registry
        for unknown in message.plan.unknown:
            self.notify(
                t(msg("no check named {check}; see `diag checks`", check=unknown), self.lang),
                severity="warning",
            )
        for err in message.registry.errors:
            self.notify(
                t(
                    msg("check {name} failed to load: {error}", name=err.name, error=err.error),
                    self.lang,
                ),
                severity="warning",
            )
        self._refresh_all()

    def on_checks_panel_started(self, message: ChecksPanel.Started) -> None:
        if self.focus_kind == "check":
            self._show_detail()

    def on_checks_panel_progressed(self, message: ChecksPanel.Progressed) -> None:
        if self.focus_kind == "check" and self.checks.selected_check == message.check_id:
            self._show_detail()

    def on_checks_panel_finished(self, message: ChecksPanel.Finished) -> None:
        self.results[message.result.check_id] = message.result
        self.rediagnose()

    def on_checks_panel_run_done(self, message: ChecksPanel.RunDone) -> None:
        self.running = False
        self.finished_in = self.world.monotonic() - self.t0
        if message.error:
            self.notify(
                t(msg("the run failed: {error}", error=message.error), self.lang), severity="error"
            )
        self.rediagnose()
        self._point_at_grey()

    def _point_at_grey(self) -> None:
        if self._pointed:
            return
        self._pointed = True
        if self.focus_kind != "device" or self.devices.cursor_row != 0:
            return
        names = [d.name for d in self.site.devices]
        grey = [i for i, n in enumerate(names) if (v := self.verdicts.get(n)) and v.icon == "grey"]
        if grey and grey[0] != 0:
            self.devices.move_cursor(row=grey[0])
            self._show_detail()

    def rediagnose(self) -> None:
        """Facts so far -> verdicts; a failing diagnosis is shown, never fatal to the screen."""
        from diag.diagnosis import diagnose

        order = [cid for cid in self.checks.rows_by_id if cid in self.results]
        order += [cid for cid in self.results if cid not in order]
        try:
            verdicts, site_causes = diagnose(
                self.observed_site(),
                [self.results[c] for c in order],
                now=self.started_at,
                history=None,
            )
        except Exception as exc:
            self.diagnosis_error = f"{type(exc).__name__}: {exc}"[:200]
        else:
            self.diagnosis_error = None
            self.verdicts = {v.device: v for v in verdicts}
            self.site_causes = tuple(site_causes)
        self._refresh_all()

    # -- showing --------------------------------------------------------------------------------

    def status_line(self) -> Words:
        if self.diagnosis_error:
            return msg("diagnosis failed: {error}", error=self.diagnosis_error)
        rows = self.checks.rows_by_id.values() if self._ready else ()
        total = len(rows)
        done = sum(1 for r in rows if r.result is not None)
        if self.running:
            if total == 0:
                return msg("loading checks…")
            if self.deep_run:
                # The run's deadline bounds a deep run: that is the time it can take at most.
                so_far = max(0.0, self.world.monotonic() - self.t0)
                limit = self.config.deadline_s
                return msg(
                    "deep check: {done}/{total} done, {s} s of at most {limit} s {bar}",
                    done=done,
                    total=total,
                    s=round(so_far),
                    limit=round(limit),
                    bar=progress_bar(so_far / limit if limit else 0.0),
                )
            return msg("checking: {done}/{total} checks done", done=done, total=total)
        offline = sum(1 for v in self.verdicts.values() if v.state == "offline")
        degraded = sum(1 for v in self.verdicts.values() if v.state == "degraded")
        unknown = sum(1 for v in self.verdicts.values() if v.state == "unknown")
        took = fmt_seconds(self.finished_in or 0.0, self.lang)
        when = format_datetime(self.started_at, self.lang, short=True)
        if unknown:
            # Not measured is said apart: it is neither "offline" nor fine.
            return msg(
                "{when}, {took}: {offline} offline, {unknown} unknown, {degraded} degraded",
                when=when,
                took=took,
                offline=offline,
                unknown=unknown,
                degraded=degraded,
            )
        return msg(
            "{when}, {took}: {offline} offline, {degraded} degraded",
            when=when,
            took=took,
            offline=offline,
            degraded=degraded,
        )

    def _refresh_all(self) -> None:
        if not self._ready:
            return
        lang = self.lang
        self.query_one(SiteHeader).show(self.status_line(), self._ordered_results(), self.running)
        self.devices.show(self._shown_verdicts(), self.grey, self.running)
        offline = sum(1 for v in self.verdicts.values() if v.icon == "grey")
        self.devices.border_title = t(
            msg("Devices {n} · grey {grey}", n=len(self.site.devices), grey=offline), lang
        )
        self.devices.border_subtitle = icon_legend(lang)
        rows = self.checks.rows_by_id.values()
        self.checks.border_title = t(
            msg(
                "Checks {done}/{total}",
                done=sum(1 for r in rows if r.result is not None),
                total=len(rows),
            ),
            lang,
        )
        self.detail.border_title = t(N_("Details"), lang)
        self._show_detail()

    def _shown_verdicts(self) -> dict[str, Verdict]:
        """The verdicts the device list shows: while checks run, "online" only with evidence.

        Before any finished check has reported a fact about a device the diagnosis calls it
        unknown (not measured yet); while the checks run it stays "checking…" instead; a worse
        state (a site cause) is shown at once.
        """
        if not self.running:
            return self.verdicts
        seen = {f.target for r in self.results.values() for f in r.facts if f.target}
        return {
            name: v
            for name, v in self.verdicts.items()
            if v.state not in ("online", "unknown") or name in seen
        }

    def _ordered_results(self) -> list[CheckResult]:
        return list(self.results.values())

    def _show_detail(self) -> None:
        if self.focus_kind == "check":
            cid = self.checks.selected_check
            row = self.checks.rows_by_id.get(cid) if cid is not None else None
            if row is not None:
                self.detail.show_check(row, self.checks.elapsed(row))
                return
        name = self.devices.selected_device
        device = self.site.device(name) if name is not None else None
        if device is None:
            self.detail.show_nothing()
            return
        self.detail.show_device(
            device,
            self._shown_verdicts().get(device.name),
            self.site_causes,
            self.grey.get(device.name, False),
            self.running,
        )

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, DeviceList):
            self.focus_kind = "device"
            self._show_detail()
        elif isinstance(event.widget, ChecksPanel):
            self.focus_kind = "check"
            self._show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.has_focus:
            self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, ChecksPanel):
            self.action_rerun_check()

    # -- keys -----------------------------------------------------------------------------------

    def action_rerun_all(self) -> None:
        self.start_run(None)

    def action_rerun_check(self) -> None:
        cid = self.checks.selected_check
        if cid is None:
            return
        self.focus_kind = "check"
        self.start_run([cid])
        self.notify(t(msg("re-running {check}", check=cid), self.lang), timeout=2)

    def action_mark_grey(self) -> None:
        name = self.devices.selected_device
        if name is None:
            return
        self.grey[name] = not self.grey.get(name, False)
        self.rediagnose()
        word = N_("marked grey: {name}") if self.grey[name] else N_("unmarked: {name}")
        self.notify(t(msg(word, name=name), self.lang), timeout=3)

    def action_phone(self) -> None:
        from diag.tui.screens.phone import PhoneScreen

        def done(got: bool | None) -> None:
            if got:
                self.start_run(["phone"])
                self.notify(t(msg("re-running {check}", check="phone"), self.lang), timeout=2)

        self.app.push_screen(PhoneScreen(self.site, self.lang), done)

    def action_deep_rerun(self) -> None:
        """Deep re-run: the selected check when the checks have the focus, else every check."""
        cid = self.checks.selected_check if self.focus_kind == "check" else None
        self.start_run([cid] if cid else None, deep=True)
        limit = round(self.config.deadline_s)
        if cid:
            text = msg("deep re-run of {check}: up to {s} s", check=cid, s=limit)
        else:
            text = msg("deep re-run of the whole site: up to {s} s", s=limit)
        self.notify(t(text, self.lang), timeout=4)

    def action_checklist(self) -> None:
        """The grey devices' fix steps as a text checklist, in the language shown."""
        from diag.reports.checklist import checklist_text

        run = self.current_run()
        stamp = self.world.now().astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
        path = self.config.export_dir / f"diag-{slug(self.site.name)}-{stamp}-checklist.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(checklist_text(run, self.lang), encoding="utf-8")
        except OSError as exc:
            self.notify(
                t(msg("export failed: {error}", error=_err(exc)), self.lang), severity="error"
            )
            return
        self.notify(t(msg("checklist: {path}", path=str(path)), self.lang), timeout=10)

    def action_path(self) -> None:
        """The path picture of what is known now (partial while checks still run)."""
        from diag.tui.screens.path import PathScreen

        self.app.push_screen(PathScreen(self.current_run(), self.lang))

    def action_discover(self) -> None:
        from diag.tui.screens.discover import DiscoverScreen

        self.app.push_screen(DiscoverScreen(self.site, self.lang, root=self.world.is_root()))

    def current_run(self) -> Run:
        """What is known now, as a ``Run`` (partial while checks still run)."""
        order = [cid for cid in self.checks.rows_by_id if cid in self.results]
        order += [cid for cid in self.results if cid not in order]
        duration = self.finished_in
        if duration is None:
            duration = self.world.monotonic() - self.t0
        return Run(
            site=self.site.name,
            started_at=self.started_at.astimezone(dt.UTC),
            duration_s=round(duration, 4),
            checks=tuple(self.results[c] for c in order),
            devices=tuple(
                self.verdicts[d.name] for d in self.site.devices if d.name in self.verdicts
            ),
            site_causes=self.site_causes,
            lang=self.lang,
            site_path=self.site.path,
            tool_version=__version__,
        )

    def action_export(self) -> None:
        run = self.current_run()
        stamp = self.world.now().astimezone(dt.UTC).strftime("%Y%m%d-%H%M%S")
        base = self.config.export_dir / f"diag-{slug(self.site.name)}-{stamp}"
        self._export(run, base, self.lang)

    @work(thread=True, name="export", group="export", exclusive=True, exit_on_error=False)
    def _export(self, run: Run, base: Path, lang: str) -> None:
        from diag.reports import json as rjson

        json_path: Path | None = base.with_suffix(".json")
        html_path: Path | None = base.with_suffix(".html")
        html_error: str | None = None
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            rjson.write(run, str(json_path), lang)
        except Exception as exc:
            self.post_message(self.Exported(ExportResult(None, None, error=_err(exc))))
            return
        try:
            from diag.reports.html import write as write_html

            write_html(run, str(html_path), lang)
        except NotImplementedError:
            html_path, html_error = None, N_("not built yet")
        except Exception as exc:
            html_path, html_error = None, _err(exc)
        self.post_message(self.Exported(ExportResult(json_path, html_path, html_error)))

    def on_dashboard_exported(self, message: Exported) -> None:
        res = self.last_export = message.result
        lang = self.lang
        if res.error is not None:
            self.notify(t(msg("export failed: {error}", error=res.error), lang), severity="error")
            return
        lines = [t(msg("JSON: {path}", path=str(res.json_path)), lang)]
        if res.html_path is not None:
            lines.append(t(msg("HTML: {path}", path=str(res.html_path)), lang))
        else:
            lines.append(
                t(
                    msg("HTML not written ({why}); JSON only", why=t(res.html_error or "", lang)),
                    lang,
                )
            )
        if self.running:
            lines.append(t(N_("partial: checks were still running"), lang))
        self.notify("\n".join(lines), title=t(N_("Exported"), lang), timeout=10)


def icon_legend(lang: str) -> str:
    """The icon colours under the device list, as the app paints them: each tag in its colour,
    then grey (Textual markup; the tags are our own words, no outside text)."""
    parts = [
        f"[{vocab.ICON_COLOURS[via]}]●[/] {t(vocab.VIA_TAG[via], lang)}"
        for via in vocab.ADDED_VIA_ORDER
    ]
    parts.append(f"[{vocab.ICON_GREY}]○[/] {t(N_('grey'), lang)}")
    return " ".join(parts)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
