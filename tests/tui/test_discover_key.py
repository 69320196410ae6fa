"""The dashboard's discovery key: hosts on the LAN that the site file does not name. The discovery
itself is replaced by a fixed result (its real run is tested in the lab: tests/devices)."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from test_app import wait_until
from tui_screen import screen_text

from diag.checks.base import registry_from
from diag.devices import discover as disc
from diag.devices.discover import Discovery, Found
from diag.model import Site
from diag.net import ifaces
from diag.tui.app import DiagApp
from diag.tui.screens.discover import DiscoverScreen, not_in_site

IFACE = ifaces.LocalInterface(
    "lo", 1, "02:00:5e:00:53:64", (ipaddress.IPv4Interface("127.0.0.1/8"),)
)


def result(site: Site) -> Discovery:
    known = site.devices[0]
    cam = {"onvif": True, "ports": {"http": True, "rtsp": True}}
    return Discovery(
        "lo",
        ["127.0.0.0/30"],
        [
            Found(known.address or "", mac=known.mac, model="KNOWN-BY-ADDRESS", **cam),
            Found("127.0.0.7", mac=(known.mac or "02:00:5e:00:53:99"), model="KNOWN-BY-MAC", **cam),
            Found("127.0.0.8", mac="02:00:5e:00:53:98", vendor="Acme", model="NEW-CAM-1", **cam),
            Found("127.0.0.9", mac="02:00:5e:00:53:97", ports={"http": True}),  # a printer
        ],
        "ok",
        2,
        0.9,
    )


def test_not_in_site_compares_address_and_mac(site: Site) -> None:
    site = dataclasses.replace(
        site,
        devices=(dataclasses.replace(site.devices[0], mac="02:00:5e:00:53:99"), *site.devices[1:]),
    )
    new = not_in_site(result(site).found, site)
    assert [f.model for f in new] == ["NEW-CAM-1"]


@pytest.mark.parametrize("lang", ["en", "pl"])
async def test_f_key_lists_what_the_site_file_lacks(
    site: Site, monkeypatch: pytest.MonkeyPatch, lang: str
) -> None:
    site = dataclasses.replace(
        site,
        devices=(dataclasses.replace(site.devices[0], mac="02:00:5e:00:53:99"), *site.devices[1:]),
    )
    asked: list[Any] = []

    async def fake_discover(iface: ifaces.LocalInterface, **kw: Any) -> Discovery:
        asked.append((iface.name, kw))
        return result(site)

    monkeypatch.setattr(ifaces, "local_interfaces", lambda: [IFACE])
    monkeypatch.setattr(disc, "discover", fake_discover)
    app = DiagApp(site, registry=registry_from(), autorun=False, lang=lang)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, DiscoverScreen))
        await wait_until(pilot, lambda: "NEW-CAM-1" in screen_text(app))
        text = screen_text(app)
        assert "127.0.0.8" in text and "Acme" in text
        assert "KNOWN-BY-ADDRESS" not in text and "KNOWN-BY-MAC" not in text
        assert "127.0.0.9" not in text  # not a camera by its ports
        assert ("not in the site file" if lang == "en" else "nie ma w pliku obiektu") in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, DiscoverScreen))
    assert [a[0] for a in asked] == ["lo"] and set(asked[0][1]) == {"root"}


async def test_no_site_facing_interface_is_said_and_nothing_is_swept(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def must_not_run(*a: Any, **k: Any) -> Discovery:
        raise AssertionError("discovery without a site-facing interface")

    monkeypatch.setattr(ifaces, "local_interfaces", lambda: [])
    monkeypatch.setattr(disc, "discover", must_not_run)
    app = DiagApp(site, registry=registry_from(), autorun=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")
        await wait_until(pilot, lambda: "no interface faces the site" in screen_text(app))
