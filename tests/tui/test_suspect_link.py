"""The dashboard for a suspect link: a deep re-run (whole site or the selected check) with its
progress and the time it can take, the icon-colour legend, and the grey devices' fix steps
written as a checklist in the language shown."""

from __future__ import annotations

import threading
from pathlib import Path

from test_app import SIZE, dash, finished, wait_until
from tui_fakes import FakeCheck, reachability, site_facts
from tui_screen import screen_text

from diag.checks.base import Context, registry_from
from diag.model import Outcome, Site
from diag.tui.app import DiagApp
from diag.tui.widgets.checks_panel import ChecksPanel


class DeepAware(FakeCheck):
    """Remembers whether each run was deep."""

    def __init__(self, *a: object, **k: object) -> None:
        super().__init__(*a, **k)  # type: ignore[arg-type]
        self.deep: list[bool] = []

    async def run(self, ctx: Context) -> Outcome:
        self.deep.append(ctx.deep)
        return await super().run(ctx)


async def test_d_reruns_everything_deep_and_shows_progress_and_time(site: Site) -> None:
    gate = threading.Event()
    wan = DeepAware("wan", delay_s=0.02, facts=site_facts())
    hb = DeepAware("heartbeat", delay_s=0.02, facts=reachability(site))
    app = DiagApp(site, registry=registry_from(wan, hb), deadline_s=40)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        assert wan.deep == [False] and hb.deep == [False]
        hb.gate = gate
        await pilot.press("d")
        await wait_until(pilot, lambda: "deep check" in screen_text(app))
        text = screen_text(app)
        assert "of at most 40 s" in text and "░" in text  # expected time and a bar
        gate.set()
        await wait_until(pilot, lambda: finished(app) and len(hb.deep) == 2)
        assert wan.deep == [False, True] and hb.deep == [False, True]


async def test_d_on_a_selected_check_reruns_only_it_deep(site: Site) -> None:
    wan = DeepAware("wan", delay_s=0.02, facts=site_facts())
    hb = DeepAware("heartbeat", delay_s=0.02, facts=reachability(site))
    app = DiagApp(site, registry=registry_from(wan, hb))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("tab")
        assert isinstance(app.focused, ChecksPanel)
        order = list(dash(app).checks.rows_by_id)
        await pilot.press(*["down"] * order.index("wan"))
        await pilot.press("d")
        await wait_until(pilot, lambda: finished(app) and len(wan.deep) == 2)
        assert wan.deep == [False, True] and hb.deep == [False]


async def test_the_device_list_carries_the_icon_legend(site: Site) -> None:
    app = DiagApp(site, registry=registry_from(FakeCheck("wan")), lang="pl")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        legend = str(dash(app).devices.border_subtitle)
        for tag in ("IP", "P2P", "KONTO", "UDOST.", "szara"):
            assert tag in legend


async def test_c_writes_the_grey_devices_checklist_in_polish(site: Site, tmp_path: Path) -> None:
    hb = FakeCheck(
        "heartbeat", delay_s=0.02, facts=reachability(site, ["Yard camera"]), status="fail"
    )
    app = DiagApp(site, registry=registry_from(hb), lang="pl", export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("c")
        await wait_until(pilot, lambda: any(tmp_path.glob("*-checklist.txt")))
    text = next(tmp_path.glob("*-checklist.txt")).read_text(encoding="utf-8")
    assert text.startswith("Lista kontrolna: ")
    assert "Yard camera" in text and "poza siecią" in text
    assert "[ ] Sprawdź zasilacz" in text  # the fix steps as boxes, in Polish
