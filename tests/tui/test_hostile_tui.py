"""The dashboard shows hostile strings as text: markup stays literal, escapes never reach the
terminal, NaN/inf/huge values and odd names do not crash it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from textual.notifications import Notification
from textual.widgets._toast import Toast
from tui_fakes import FakeCheck, reachability
from tui_screen import screen_lines, wait_until

from diag.checks.base import registry_from
from diag.i18n import msg
from diag.model import Fact, Metric, Outcome, Site
from diag.tui.app import DiagApp
from diag.tui.widgets.checks_panel import ChecksPanel

SIZE = (120, 40)
MARKUP = "[bold red]x[/]"
CLICK = "[@click=app.quit]q[/]"
ESCAPES = "\x1b[2J\x1b]0;pwned\x07\u202e"


class Hostile(FakeCheck):
    """Reports what a hostile banner/LLDP/DNS answer would put in its summary and facts."""

    async def run(self, ctx: object) -> Outcome:
        return Outcome(
            "warn",
            msg("banner {b}", b=f"{MARKUP} {CLICK} {ESCAPES}"),
            metrics={
                "rtt": Metric(math.nan, "ms"),
                "big": Metric(10**400),
                "inf": Metric(math.inf),
            },
            facts=self.facts,
        )


def hostile_site(site: Site) -> Site:
    first = dataclasses.replace(site.devices[0], name=f"Cam {MARKUP} [/] {ESCAPES}")
    return dataclasses.replace(site, devices=(first, *site.devices[1:]))


async def test_hostile_strings_show_literally_and_nothing_crashes(
    site: Site, tmp_path: Path
) -> None:
    site = hostile_site(site)
    name = site.devices[0].name
    facts = [
        *reachability(site),
        Fact("device.icmp_loss_pct", math.nan, "%", target=name),
        Fact("device.rtt_ms", math.inf, "ms", target=name),
        Fact("device.info", {"name": MARKUP, "model": ESCAPES, "n": 10**400}, target=name),
        Fact("lldp.neighbor", {"system_name": CLICK, "port": ESCAPES}),
        Fact("wan.rtt_ms", math.nan, "ms"),
        Fact("wan.public_ip", f"{MARKUP}{ESCAPES}"),
    ]
    reg = registry_from(FakeCheck("heartbeat", facts=facts), Hostile("wan", facts=facts))
    app = DiagApp(site, registry=reg, export_dir=tmp_path)
    toasts: list[Toast] = []
    real_notify = app.notify

    def notify(message: str, **kw: Any) -> None:
        # Headless runs never paint toasts: render each like the toast rack would.
        note = Notification(message, title=kw.get("title", ""), markup=kw.get("markup", True))
        toasts.append(Toast(note))
        real_notify(message, **kw)

    app.notify = notify  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(
            pilot, lambda: not app.dashboard.running and "wan" in app.dashboard.results
        )
        # Select the hostile device (its detail pane formats every fact), then the hostile check.
        await pilot.pause()
        await pilot.press("g")  # mark it grey: the toast names the device
        await pilot.pause(0.1)
        assert app.is_running, "the dashboard crashed"
        assert toasts
        for toast in toasts:
            # A device name with "[/]" made Content.from_markup raise MarkupError when the toast
            # was painted (a crash); "[@click=app.quit]" made a clickable quit.
            shown = toast.render()
            assert "@click" not in str(getattr(shown, "spans", ""))
        assert any("[/]" in str(t.render()) for t in toasts)
        app.set_focus(app.dashboard.checks)
        checks = app.dashboard.checks
        assert isinstance(checks, ChecksPanel)
        for _ in range(3):
            await pilot.press("down")
            await pilot.pause(0.05)
        assert app.is_running, "the dashboard crashed"
        text = "\n".join(screen_lines(app))
        # Markup shows as the characters it is made of; clicking it can do nothing.
        assert "[bold red]x[/]" in text
        # No escape or bidi control reaches the terminal; they are shown escaped.
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        await pilot.press("e")  # export must work with these values too
        await pilot.pause(0.2)
        assert app.is_running
