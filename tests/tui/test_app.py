"""The dashboard driven with Pilot on fake checks: every key, streaming results, clean quitting."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from textual.binding import Binding
from tui_fakes import FakeCheck, fake_registry, reachability, site_facts
from tui_screen import region_text, screen_text, wait_until

from diag.checks.base import registry_from
from diag.i18n import render
from diag.model import Fact, Site
from diag.reports import json as rjson
from diag.tui.app import DiagApp
from diag.tui.present import STATE_WORD
from diag.tui.screens.dashboard import Dashboard
from diag.tui.screens.help import HelpScreen
from diag.tui.widgets.checks_panel import ChecksPanel

SIZE = (80, 24)


def dash(app: DiagApp) -> Dashboard:
    return app.dashboard


def detail(app: DiagApp) -> str:
    return region_text(app, dash(app).detail)


def row_phase(app: DiagApp, check_id: str) -> str:
    row = dash(app).checks.rows_by_id.get(check_id)
    return row.phase if row is not None else "not planned yet"


def finished(app: DiagApp) -> bool:
    d = dash(app)
    return not d.running and bool(d.checks.rows_by_id)


async def test_first_paint_before_checks_finish_then_results_stream_in(site: Site) -> None:
    gate = threading.Event()
    reg = fake_registry(site, offline=["Yard camera"], delay_s=0.05, gate=gate)
    app = DiagApp(site, registry=reg)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            text = screen_text(app)
            # The screen is up with every device before any check has finished.
            for d in site.devices:
                assert d.name[:12] in text
            assert "checking" in text
            # wan finishes first: its facts reach the header while heartbeat is still held.
            await wait_until(pilot, lambda: "wan" in dash(app).results)
            assert row_phase(app, "heartbeat") == "running"
            text = screen_text(app)
            assert "Port Restricted Cone (EIM/APDF)" in text
            assert "203.0.113.7" in text
            hb_line = next(ln for ln in text.splitlines() if "heartbeat" in ln)
            assert any(ch in hb_line for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
            assert "checking: 2/3 checks done" in text
            assert dash(app).running
            # Then the heartbeat arrives: the silent device turns grey with its cause.
            gate.set()
            await wait_until(pilot, lambda: finished(app))
            verdicts = dash(app).verdicts
            assert verdicts["Yard camera"].icon == "grey"
            assert verdicts["NVR office"].icon == "colour"
            # The screen points at the grey device by itself: the answer, not row one.
            await pilot.pause()
            assert dash(app).devices.selected_device == "Yard camera"
            assert "○" in screen_text(app)
            assert "Checks 3/3" in screen_text(app)
            text = detail(app)
            assert "Device has no power or its cable is faulty" in text
            assert "device-no-power" in text
            # What to do comes before the evidence: on 24 lines it is what must be seen.
            assert "Fix:" in text and "1) Check the device's power" in text
    finally:
        gate.set()


async def test_no_device_is_called_online_before_a_check_reports_on_it(site: Site) -> None:
    # With no evidence the diagnosis says "unknown" (it said "online": a dead camera was shown
    # in colour until the heartbeat ended). While checks run, such a device reads "checking…".
    gate = threading.Event()
    reg = registry_from(
        FakeCheck("wan", facts=[Fact("wan.internet_reachable", True)]),
        FakeCheck("heartbeat", gate=gate, facts=reachability(site, ["Yard camera"])),
    )
    app = DiagApp(site, registry=reg)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "wan" in dash(app).results)
            await pilot.pause()
            assert dash(app).running and dash(app).verdicts["Yard camera"].state == "unknown"
            rows = [ln[:40] for ln in screen_text(app).splitlines()[3:9]]
            yard = next(ln for ln in rows if "Yard camera" in ln)
            assert "checking" in yard and "online" not in yard
            await pilot.press("down", "down")  # Yard camera: its details do not say online
            assert "checking" in detail(app) and "No problem found" not in detail(app)
            gate.set()
            await wait_until(pilot, lambda: finished(app))
            rows = [ln[:40] for ln in screen_text(app).splitlines()[3:9]]
            assert "offline" in next(ln for ln in rows if "Yard camera" in ln)
            assert "online" in next(ln for ln in rows if "Gate camera" in ln)
    finally:
        gate.set()


async def test_the_cursor_is_left_alone_once_the_installer_moved_it(site: Site) -> None:
    gate = threading.Event()
    app = DiagApp(site, registry=fake_registry(site, offline=["Yard camera"], gate=gate))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down")  # Gate camera, while the checks run
            gate.set()
            await wait_until(pilot, lambda: finished(app))
            await pilot.pause()
            assert dash(app).devices.selected_device == "Gate camera"
            await pilot.press("up", "r")  # a re-run does not move it either
            await wait_until(pilot, lambda: finished(app))
            await pilot.pause()
            assert dash(app).devices.selected_device == "NVR office"
    finally:
        gate.set()


async def test_progress_and_elapsed_time_shown_while_running(site: Site) -> None:
    gate = threading.Event()
    slow = FakeCheck("heartbeat", delay_s=0.4, steps=2, gate=gate, facts=reachability(site))
    app = DiagApp(site, registry=registry_from(slow))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(
                pilot,
                lambda: (
                    getattr(dash(app).checks.rows_by_id.get("heartbeat"), "fraction", None) == 0.5
                ),
            )

            def hb_line() -> str:
                return next(ln for ln in screen_text(app).splitlines() if "heartbeat" in ln)

            # Progress is drawn on the panel's tick (0.5 s), not as each event arrives.
            await wait_until(pilot, lambda: "50%" in hb_line())
            line = hb_line()
            assert "██░░" in line
            assert any(ch in line for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
            # Elapsed time ticks: the shown seconds grow while the check runs.
            first = float(line.split("50%")[1].split("s")[0])
            await pilot.pause(1.1)
            assert float(hb_line().split("50%")[1].split("s")[0]) > first
    finally:
        gate.set()


async def test_r_reruns_every_check(site: Site) -> None:
    reg = fake_registry(site, delay_s=0.02)
    app = DiagApp(site, registry=reg)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        assert [reg[c].runs for c in reg.ids] == [1, 1, 1]  # type: ignore[attr-defined]
        await pilot.press("r")
        await wait_until(pilot, lambda: finished(app))
        assert [reg[c].runs for c in reg.ids] == [2, 2, 2]  # type: ignore[attr-defined]


async def test_shift_r_and_enter_rerun_only_the_selected_check(site: Site) -> None:
    reg = fake_registry(site, delay_s=0.02)
    app = DiagApp(site, registry=reg)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("tab")  # to the checks panel
        assert isinstance(app.focused, ChecksPanel)
        order = list(dash(app).checks.rows_by_id)
        await pilot.press(*["down"] * order.index("dns"))
        assert dash(app).checks.selected_check == "dns"
        await pilot.press("R")
        await wait_until(pilot, lambda: finished(app))
        runs = {c: reg[c].runs for c in reg.ids}  # type: ignore[attr-defined]
        assert runs == {"dns": 2, "heartbeat": 1, "wan": 1}
        # The other results are kept: the devices keep their verdicts.
        assert set(dash(app).results) == {"dns", "heartbeat", "wan"}
        await pilot.press("enter")
        await wait_until(pilot, lambda: finished(app) and reg["dns"].runs == 3)  # type: ignore[attr-defined]
        assert reg["wan"].runs == 1  # type: ignore[attr-defined]


async def test_e_exports_json_and_says_html_is_missing(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diag.reports.html

    def not_built(*_a: object, **_k: object) -> None:
        raise NotImplementedError("the HTML report is not built yet")

    monkeypatch.setattr(diag.reports.html, "write", not_built)
    app = DiagApp(site, registry=fake_registry(site, offline=["Yard camera"]), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("e")
        await wait_until(pilot, lambda: dash(app).last_export is not None)
        res = dash(app).last_export
        assert res is not None and res.html_path is None and res.json_path is not None
        data = json.loads(res.json_path.read_text())
        assert rjson.validate(data) == []
        yard = next(d for d in data["devices"] if d["name"] == "Yard camera")
        assert yard["icon"] == "grey"
        assert {c["id"] for c in data["checks"]} == {"dns", "heartbeat", "wan"}
        notes = [n.message for n in app._notifications]
        assert any(str(res.json_path) in n and "JSON only" in n for n in notes)


async def test_e_exports_both_and_shows_both_paths(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diag.reports.html

    def fake_html(run: object, path: str, lang: str = "en") -> None:
        Path(path).write_text("<html>report</html>")

    monkeypatch.setattr(diag.reports.html, "write", fake_html)
    app = DiagApp(site, registry=fake_registry(site), export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("e")
        await wait_until(pilot, lambda: dash(app).last_export is not None)
        res = dash(app).last_export
        assert res is not None and res.html_path is not None and res.json_path is not None
        assert res.html_path.read_text() == "<html>report</html>"
        assert res.json_path.parent == tmp_path
        note = app._notifications
        assert any(
            str(res.html_path) in n.message and str(res.json_path) in n.message for n in note
        )


async def test_l_switches_language_live(site: Site) -> None:
    app = DiagApp(site, registry=fake_registry(site, offline=["Yard camera"]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        before = screen_text(app)
        assert "offline" in before and "polski" in before
        await pilot.press("l")
        assert app.lang == "pl" and dash(app).lang == "pl"
        text = screen_text(app)
        assert "English" in text  # the key now offers the way back
        # The row by its name's start: at 80 columns the Polish state words leave it 9 cells.
        yard = next(ln for ln in text.splitlines() if "Yard cam" in ln[:30])
        assert render(STATE_WORD["offline"], "pl") in yard  # its state, in Polish
        assert "offline" not in yard
        assert "Urządzenia" in text and "Testy" in text
        await pilot.press("l")
        assert app.lang == "en"
        assert "offline" in screen_text(app)


async def test_l_translates_the_details_at_once(site: Site) -> None:
    # The detail pane was repainted before its own language followed the screen's: after ``l``
    # a check's details stayed English until the selection moved.
    app = DiagApp(site, registry=fake_registry(site, offline=["Yard camera"]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("tab", "tab")  # the details themselves have the focus (to scroll)
        assert "Measurements" in detail(app)
        await pilot.press("l")
        await pilot.pause()
        assert "Pomiary" in detail(app) and "Measurements" not in detail(app)
        await pilot.press("shift+tab", "shift+tab", "l")
        await pilot.pause()
        assert "Address" in detail(app)
        await pilot.press("l")
        await pilot.pause()
        assert "Adres" in detail(app) and "Address" not in detail(app)


async def test_g_marks_grey_and_feeds_the_diagnosis(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diag.diagnosis

    seen: list[dict[str, bool | None]] = []
    real = diag.diagnosis.diagnose

    def spy(s: Site, *a: object, **k: object) -> object:
        seen.append({d.name: d.app_shows_grey for d in s.devices})
        return real(s, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(diag.diagnosis, "diagnose", spy)
    app = DiagApp(site, registry=fake_registry(site))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        assert dash(app).verdicts["Gate camera"].icon == "colour"
        await pilot.press("down")  # Gate camera
        await pilot.press("g")
        assert seen[-1]["Gate camera"] is True
        assert dash(app).verdicts["Gate camera"].icon == "grey"
        gate_line = next(ln for ln in screen_text(app).splitlines() if "Gate camera" in ln[:30])
        assert "○G" in gate_line
        assert "You marked: the app shows this device grey." in detail(app)
        # A re-run keeps the observation.
        await pilot.press("r")
        await wait_until(pilot, lambda: finished(app))
        assert seen[-1]["Gate camera"] is True
        await pilot.press("g")
        assert seen[-1]["Gate camera"] is False
        assert dash(app).verdicts["Gate camera"].icon == "colour"


async def test_question_mark_opens_help_and_escape_closes_it(site: Site) -> None:
    app = DiagApp(site, registry=fake_registry(site))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "re-run all checks" in text and "P2P" in text
        await pilot.press("escape")
        assert isinstance(app.screen, Dashboard)
        await pilot.press("l", "question_mark")
        assert "ponownie" in screen_text(app)
        await pilot.press("l")  # the help follows a language switch while open
        assert "re-run all checks" in screen_text(app)
        await pilot.press("l")
        await pilot.press("q")  # closes help, does not quit
        assert isinstance(app.screen, Dashboard)
        assert app.is_running


async def test_q_quits_at_once_and_cancels_the_run(site: Site) -> None:
    gate = threading.Event()
    reg = fake_registry(site, delay_s=0.01, gate=gate)
    app = DiagApp(site, registry=reg)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: row_phase(app, "heartbeat") == "running")
            t0 = time.monotonic()
            await pilot.press("q")
            await pilot.pause()
        # The held probe would keep a joined thread (or an awaited task) waiting forever; a
        # generous bound keeps this honest on a loaded CI machine.
        assert time.monotonic() - t0 < 5.0
        assert app.return_code == 0
        # The run's thread has ended although the check's probe is still stuck in its thread.
        deadline = time.monotonic() + 2.0
        while any(t.name == "diag-tui-run" for t in threading.enumerate()):
            assert time.monotonic() < deadline, "run thread still alive after quit"
            time.sleep(0.02)
    finally:
        gate.set()


async def test_a_check_that_blocks_its_loop_does_not_freeze_the_screen(site: Site) -> None:
    block_s = 4.0
    hog = FakeCheck("heartbeat", delay_s=block_s, steps=1, blocking=True, facts=reachability(site))
    app = DiagApp(site, registry=registry_from(hog, FakeCheck("wan", facts=site_facts())))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: row_phase(app, "heartbeat") == "running")
        t0 = time.monotonic()
        await pilot.press("down", "l")
        await pilot.pause()
        # The keys took effect while the check still holds its loop (a blocked screen would
        # have waited the whole block_s).
        assert app.lang == "pl"
        assert row_phase(app, "heartbeat") == "running"
        assert time.monotonic() - t0 < block_s
        assert "Urządzenia" in screen_text(app)


async def test_rerun_while_running_drops_the_old_runs_results(site: Site) -> None:
    gate = threading.Event()
    held = FakeCheck("heartbeat", gate=gate, facts=reachability(site, ["Yard camera"]))
    app = DiagApp(site, registry=registry_from(held, FakeCheck("wan", facts=site_facts())))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: row_phase(app, "heartbeat") == "running")
            first = dash(app).checks.run_id
            held.gate = None  # the next run's heartbeat is not held
            held.facts = tuple(reachability(site))
            await pilot.press("r")
            assert dash(app).checks.run_id == first + 1
            await wait_until(pilot, lambda: finished(app))
            gate.set()  # the first run's probe ends now; its result must be ignored
            await pilot.pause(0.2)
            assert dash(app).verdicts["Yard camera"].icon == "colour"
            assert held.runs == 2
    finally:
        gate.set()


async def test_a_crashing_check_is_an_error_row_not_a_crash(site: Site) -> None:
    boom = FakeCheck("ports", raises=RuntimeError("socket exploded"))
    app = DiagApp(site, registry=registry_from(boom, FakeCheck("wan", facts=site_facts())))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        await pilot.press("tab")
        order = list(dash(app).checks.rows_by_id)
        await pilot.press(*["down"] * order.index("ports"))
        assert "error" in screen_text(app)
        assert "check crashed: RuntimeError: socket exploded" in detail(app)
        assert dash(app).checks.rows_by_id["wan"].result is not None


async def test_tab_moves_between_devices_and_checks_details_follow(site: Site) -> None:
    app = DiagApp(site, registry=fake_registry(site))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        assert "added by P2P to an account" in detail(app)
        await pilot.press("tab")
        text = detail(app)
        first = next(iter(dash(app).checks.rows_by_id))
        assert f"{first} — Fake check {first}" in text
        assert "rtt = 12.5 ms" in text
        await pilot.press("shift+tab")
        assert "added by P2P to an account" in detail(app)


async def test_readable_without_colour(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = DiagApp(site, registry=fake_registry(site, offline=["Yard camera"]))
    async with app.run_test(size=SIZE) as pilot:
        assert app.no_color
        await wait_until(pilot, lambda: finished(app))
        lines = screen_text(app).splitlines()
        # Without colour the icon glyph, the tag and the state word still tell the devices apart.
        yard = next(ln for ln in lines if "Yard camera" in ln[:30])
        gate = next(ln for ln in lines if "Gate camera" in ln[:30])
        assert "○" in yard and "P2P" in yard and "offline" in yard
        assert "●" in gate and "IP" in gate
        checks = "\n".join(lines)
        assert "✗ heartbeat" in checks and "✓ wan" in checks and "! dns" in checks
        assert "Upload ✗" in checks


async def test_unknown_only_ids_are_reported(site: Site) -> None:
    app = DiagApp(site, registry=fake_registry(site), only=["wan", "nosuch"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
        assert list(dash(app).checks.rows_by_id) == ["wan"]
        assert any("no check named nosuch" in n.message for n in app._notifications)


async def test_diagnosis_recomputed_as_each_check_finishes(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import diag.diagnosis

    calls: list[list[str]] = []
    real = diag.diagnosis.diagnose

    def spy(s: Site, results: list[object], *a: object, **k: object) -> object:
        calls.append(sorted(r.check_id for r in results))  # type: ignore[attr-defined]
        return real(s, results, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(diag.diagnosis, "diagnose", spy)
    reg = registry_from(
        FakeCheck("wan", delay_s=0.05, facts=site_facts()),
        FakeCheck("heartbeat", delay_s=0.3, facts=reachability(site, ["Yard camera"])),
    )
    app = DiagApp(site, registry=reg)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: finished(app))
    # One diagnosis per finished check, with the results so far, then one when the run ends.
    assert calls[0] == ["wan"]
    assert calls[1] == ["heartbeat", "wan"]
    assert calls[-1] == ["heartbeat", "wan"] and len(calls) == 3


def test_every_key_binding_is_on_the_help_screen() -> None:
    """A key the dashboard or the app answers to and the help does not list is a hidden feature
    (``f``, the found-on-the-LAN screen, was one)."""
    from diag.tui.screens.help import KEY_HELP

    listed = {k.strip() for keys, _ in KEY_HELP for k in keys.split(",")}
    names = {"question_mark": "?", "ctrl+c": "q"}  # ctrl+c quits like q, listed with it
    bound = {
        names.get(b.key, b.key)
        for b in (*Dashboard.BINDINGS, *DiagApp.BINDINGS)
        if isinstance(b, Binding)
    }
    assert bound <= listed, sorted(bound - listed)


@pytest.mark.parametrize("lang", ["en", "pl"])
def test_help_explains_every_state_mark(lang: str) -> None:
    """The device list shows ? ✗ ! ✓ next to the colour; the help says what each one means."""
    from diag import vocab
    from diag.i18n import gettext
    from diag.tui.screens.help import help_text

    lines = help_text(lang).plain.splitlines()
    for state in vocab.STATES:
        line = f"  {vocab.state_glyph(state)} {gettext(vocab.state_word(state), lang)}"
        assert line in lines, (state, lines)
    if lang == "pl":
        assert "Stany urządzeń (znak czytelny bez kolorów)" in lines


@pytest.mark.parametrize("lang", ["en", "pl"])
async def test_device_list_marks_each_state_with_a_glyph_not_only_a_colour(
    site: Site, lang: str
) -> None:
    from tui_frozen import frozen_run, frozen_world

    from diag import vocab

    run = frozen_run(site)
    app = DiagApp(site, frozen=run, world=frozen_world(), autorun=False, lang=lang)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        devices = dash(app).devices
        for v in run.devices:
            cell = devices.get_cell(v.device, "state")
            # Read without colour: the mark, then the state's word in this language.
            assert cell.plain.split(" ", 1) == [
                vocab.STATE_GLYPH[v.state],
                render(vocab.STATE_TAG[v.state], lang),
            ]
    assert {v.state for v in run.devices} == set(vocab.STATES)
