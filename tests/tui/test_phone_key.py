"""The dashboard's phone key: QR code and URL on screen, the result becomes the phone check."""

from __future__ import annotations

import asyncio
import time

from test_app import wait_until
from textual.pilot import Pilot
from tui_screen import screen_text

from diag.checks.base import registry_from
from diag.checks.phone import PhoneCheck
from diag.model import Site
from diag.phone import inbox
from diag.phone.server import PhoneServer
from diag.tui.app import DiagApp
from diag.tui.screens.phone import PhoneScreen


async def open_phone(pilot: Pilot[int], app: DiagApp) -> PhoneServer:
    """Presses the phone key and waits for the screen's server to listen."""
    await pilot.press("p")
    await wait_until(pilot, lambda: isinstance(app.screen, PhoneScreen))
    screen = app.screen
    assert isinstance(screen, PhoneScreen)
    await wait_until(pilot, lambda: isinstance(screen.server, PhoneServer))
    assert isinstance(screen.server, PhoneServer)
    return screen.server


async def post(port: int, path: str, body: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    resp = await reader.read()
    writer.close()
    return int(resp.split()[1])


async def test_phone_key_shows_the_code_and_feeds_the_phone_check(site: Site) -> None:
    import json

    inbox.clear()
    app = DiagApp(site, registry=registry_from(PhoneCheck()), autorun=False)
    body = {"v": 1, "sent_at_ms": time.time() * 1000, "battery": {"level": 0.1, "charging": False}}
    try:
        async with app.run_test(size=(100, 50)) as pilot:
            server = await open_phone(pilot, app)
            assert server.url in screen_text(app) and "▀" in screen_text(app)
            status = await post(server.port, f"/{server.token}/result", json.dumps(body).encode())
            assert status == 200
            await wait_until(pilot, lambda: "phone" in app.dashboard.results)
            res = app.dashboard.results["phone"]
            assert res.status == "ok"
            assert any(f.key == "phone.battery_pct" and f.value == 10 for f in res.facts)
            await wait_until(
                pilot, lambda: any(c.id == "phone-side" for c in app.dashboard.site_causes)
            )
    finally:
        inbox.clear()


async def test_escape_closes_the_phone_screen_and_its_server(site: Site) -> None:
    app = DiagApp(site, registry=registry_from(PhoneCheck()), autorun=False)
    async with app.run_test(size=(100, 50)) as pilot:
        port = (await open_phone(pilot, app)).port
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, PhoneScreen))
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            pass
        else:
            raise AssertionError("the phone server still listens after escape")
