"""The phone screen (key ``p``): the QR code of ``diag phone``'s page, until the phone answers.

It serves the page on the app's own event loop (the server only awaits), says when the phone
opened it, and on the first result hands it to the ``phone`` check (``diag.phone.inbox``) and
closes with ``True`` so the dashboard re-runs that check. Escape closes it and the server.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from diag.i18n import N_, msg
from diag.model import Site
from diag.phone.result import PhoneResult
from diag.tui.present import t


class PhoneScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", show=False)]

    def __init__(self, site: Site, lang: str, *, bind: str | None = None) -> None:
        super().__init__()
        self.site = site
        self.lang = lang
        self.bind = bind
        self.server: object | None = None
        self.lan: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="phone"):
            yield Static(
                t(N_("Open this page on the customer's phone (scan the code):"), self.lang)
            )
            yield Static("", id="phone-qr")
            yield Static("", id="phone-url")
            yield Static("", id="phone-state")
            yield Static(t(N_("Press escape to close."), self.lang), classes="dim")

    def _say(self, text: str) -> None:
        self.query_one("#phone-state", Static).update(text)

    async def on_mount(self) -> None:
        from diag.phone import qr
        from diag.phone.command import page_config_of, site_facing_address
        from diag.phone.server import DEFAULT_WAIT_S, Events, PhoneServer

        found = (self.bind, []) if self.bind else site_facing_address(self.site)
        if found is None or not found[0]:
            self._say(t(N_("diag: no site-facing address found; give one with --bind"), self.lang))
            return
        host, self.lan = found[0], list(found[1])
        cfg = page_config_of(self.site)
        server = PhoneServer(
            host,
            cfg,
            events=Events(on_connect=self._connected, on_result=self._received),
        )
        try:
            await server.start()
        except OSError as exc:
            self._say(t(msg("diag: cannot listen on {address}: {error}", address=host,
                            error=exc.strerror), self.lang))  # fmt: skip
            return
        self.server = server
        self.query_one("#phone-qr", Static).update(qr.terminal(server.url))
        self.query_one("#phone-url", Static).update(server.url)
        self._say(t(msg("Waiting up to {seconds} s for the phone…", seconds=round(DEFAULT_WAIT_S)),
                    self.lang))  # fmt: skip
        self.run_worker(server.wait(DEFAULT_WAIT_S), name="phone-server", exclusive=True)

    def _connected(self, peer: str, _ua: str) -> None:
        self._say(t(msg("The phone opened the page ({address}); measuring…", address=peer),
                    self.lang))  # fmt: skip

    def _received(self, result: PhoneResult) -> None:
        from diag.phone import inbox

        inbox.put(result, tuple(self.lan))
        self.dismiss(True)

    async def action_close(self) -> None:
        from diag.phone.server import PhoneServer

        if isinstance(self.server, PhoneServer):
            await self.server.close()
        self.dismiss(False)
