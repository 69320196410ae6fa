"""The discovery screen (key ``f``): hosts found on the LAN that the site file does not name.

It runs the same discovery as ``diag discover`` (WS-Discovery on the site-facing interface, the
ARP sweep with root, service ports) in a worker on the app's loop, so the dashboard never blocks,
and lists every camera-like host whose address and MAC are not in the site file, with what was
learnt about it. Escape closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from diag.devices.discover import Discovery, Found
from diag.i18n import N_, msg
from diag.model import Site
from diag.tui.present import clean, t


def not_in_site(found: Sequence[Found], site: Site) -> list[Found]:
    """The hosts of a discovery the site file does not know, by address or MAC (pure). The
    gateway is the site's router, not a lost device."""
    addresses = {d.address for d in site.devices if d.address}
    macs = {d.mac.lower() for d in site.devices if d.mac}
    gw = site.network.gateway
    return [
        f
        for f in found
        if f.address not in addresses
        and (f.mac or "").lower() not in macs
        and f.address != gw
        and f.looks_like_camera
    ]


class DiscoverScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", show=False)]
    DEFAULT_CSS = """
    DiscoverScreen { align: center middle; }
    #discover {
        width: 90%; height: 80%; border: round $accent; padding: 1 2; background: $surface;
    }
    #disc-table { height: 1fr; }
    #disc-title { text-style: bold; }
    """

    def __init__(self, site: Site, lang: str, *, root: bool) -> None:
        super().__init__()
        self.site = site
        self.lang = lang
        self.root = root
        self.result: Discovery | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="discover"):
            yield Static(
                t(N_("Found on the LAN, not in the site file"), self.lang), id="disc-title"
            )
            yield Static(t(N_("Looking for devices on the LAN…"), self.lang), id="disc-state")
            yield DataTable(id="disc-table", cursor_type="row", zebra_stripes=True)
            yield Static(t(N_("Press escape to close."), self.lang), classes="dim")

    def _say(self, text: str) -> None:
        self.query_one("#disc-state", Static).update(text)

    def on_mount(self) -> None:
        table = self.query_one("#disc-table", DataTable)
        for head in (N_("address"), N_("MAC"), N_("vendor"), N_("model"), N_("ONVIF"),
                     N_("open ports")):  # fmt: skip
            table.add_column(t(head, self.lang))
        self.run_worker(self._discover(), name="discover", exclusive=True)

    async def _discover(self) -> None:
        from diag.devices import discover as disc
        from diag.net.ifaces import local_interfaces, pick_interface

        iface = pick_interface(self.site, local_interfaces())
        if iface is None:
            # Never the default route's LAN: the site file must say which LAN is the site's.
            self._say(t(N_("no interface faces the site: set network.interface"), self.lang))
            return
        self.result = await disc.discover(iface, root=self.root)
        self.show(self.result)

    def show(self, result: Discovery) -> None:
        table = self.query_one("#disc-table", DataTable)
        table.clear()
        new = not_in_site(result.found, self.site)
        yes, no = t(N_("yes"), self.lang), t(N_("no"), self.lang)
        for f in new:
            table.add_row(
                f.address,
                clean(f.mac or "-"),
                clean(f.vendor or f.mac_vendor or "-"),
                clean(f.model or "-"),
                yes if f.onvif else no,
                ", ".join(f.open_ports) or "-",
            )
        state = msg(
            N_("{new} of {hosts} hosts on {iface} are not in the site file ({s} s)"),
            new=len(new),
            hosts=len(result.found),
            iface=result.iface,
            s=result.duration_s,
        )
        text = t(state, self.lang)
        if result.arp == "needs-root":
            text += "\n" + t(
                N_("ARP sweep skipped: needs root; only ONVIF answers listed"), self.lang
            )
        self._say(text)

    def action_close(self) -> None:
        self.dismiss(None)
