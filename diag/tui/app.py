"""The dashboard application: configuration, language switch, help and quit around one screen.

``DiagApp`` takes everything from outside through its constructor (the site, the checks'
registry, the world's clocks, a frozen run), so tests drive it with Pilot on loopback fakes and
snapshot it on a fixed run. Quitting cancels the checks' worker; the checks' own threads are
daemons, so nothing keeps the process alive after the screen is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive

from diag.checks.base import Registry, World
from diag.i18n import LANGS, catalog, normalize_lang
from diag.model import Run, Site
from diag.runner import DEFAULT_DEADLINE_S
from diag.tui.screens.dashboard import Dashboard, DashboardConfig
from diag.tui.screens.help import HelpScreen


class DiagApp(App[int]):
    """``diag tui``: the installer's dashboard."""

    # Absolute: Textual resolves a relative CSS_PATH against the module of the (sub)class.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "diag"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "switch_language", "language"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    lang: reactive[str] = reactive("en")

    def __init__(
        self,
        site: Site,
        *,
        registry: Registry | None = None,
        only: Sequence[str] | None = None,
        lang: str | None = None,
        world: World | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        deep: bool = False,
        frozen: Run | None = None,
        autorun: bool = True,
        export_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.config = DashboardConfig(
            site=site,
            registry=registry,
            only=only,
            world=world or World(),
            deadline_s=deadline_s,
            deep=deep,
            frozen=frozen,
            autorun=autorun,
            export_dir=Path(export_dir) if export_dir is not None else Path.cwd(),
        )
        self.set_reactive(DiagApp.lang, normalize_lang(lang or site.lang))

    @property
    def dashboard(self) -> Dashboard:
        screen = self.get_screen("dashboard")
        assert isinstance(screen, Dashboard)
        return screen

    def on_mount(self) -> None:
        # Reading the Polish catalogues takes ~0.2 s: do it after the first frame, off the
        # screen's thread, so neither the first paint nor the first press of ``l`` waits for it.
        self.call_after_refresh(
            lambda: threading.Thread(
                target=_warm_catalogues, name="diag-tui-i18n", daemon=True
            ).start()
        )
        dashboard = Dashboard(self.config)
        dashboard.set_reactive(Dashboard.lang, self.lang)
        self.install_screen(dashboard, "dashboard")
        self.push_screen("dashboard")

    def watch_lang(self, lang: str) -> None:
        if self.is_screen_installed("dashboard"):
            self.dashboard.lang = lang

    def action_switch_language(self) -> None:
        self.lang = LANGS[(LANGS.index(self.lang) + 1) % len(LANGS)]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.lang))

    async def action_quit(self) -> None:
        # Cancelling is immediate: the checks run on their own loop in a daemon thread.
        self.workers.cancel_all()
        self.exit(0)


def _warm_catalogues() -> None:
    for lang in LANGS:
        catalog(lang)
