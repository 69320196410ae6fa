"""device-clock-wrong and device-address-changed from the facts the device adapters and the ARP
sweep report (helpers and the healthy site from test_rules)."""

from __future__ import annotations

from test_rules import REMOVE, conf, dead, run, top


def test_clock_far_off_with_the_device_grey_is_the_cause() -> None:
    over = {
        ("device.clock_offset_s", "Cam-P2P"): (-3 * 3600.0, "s"),
        ("device.ntp_enabled", "Cam-P2P"): False,
        ("device.platform_online", "Cam-P2P"): False,
    }
    devs, _ = run(over)
    v = devs["Cam-P2P"]
    assert top(v) == "device-clock-wrong" and v.state == "offline"
    assert v.causes[0].confidence >= 0.85
    detail = v.causes[0].detail
    assert detail is not None and "180 min behind" in detail.render("en")
    assert "spóźnia się o 180 min" in detail.render("pl")
    assert v.causes[0].fix  # the catalogue's NTP steps


def test_clock_ahead_is_said_so_and_the_threshold_is_the_sites() -> None:
    over = {("device.clock_offset_s", "Cam-IP"): (400.0, "s")}
    devs, _ = run(over)
    assert top(devs["Cam-IP"]) == "device-clock-wrong"
    assert "ahead" in (devs["Cam-IP"].causes[0].detail.render("en"))  # type: ignore[union-attr]
    near = {("device.clock_offset_s", "Cam-IP"): (290.0, "s")}  # under the 5 min default
    assert conf(run(near)[0]["Cam-IP"].causes, "device-clock-wrong") == 0.0


def test_clock_off_on_a_device_the_platform_sees_online_is_only_a_note() -> None:
    over = {
        ("device.clock_offset_s", "Cam-P2P"): (7200.0, "s"),
        ("device.platform_online", "Cam-P2P"): True,
    }
    devs, _ = run(over)
    assert 0 < conf(devs["Cam-P2P"].causes, "device-clock-wrong") < 0.5
    assert devs["Cam-P2P"].state == "online"


def test_ntp_off_without_a_comparable_clock_is_weak_evidence() -> None:
    over = {
        ("device.ntp_enabled", "Cam-P2P"): False,
        ("device.clock", "Cam-P2P"): {"utc": None, "offset_s": None, "ntp": False},
        ("device.platform_online", "Cam-P2P"): False,
    }
    c = conf(run(over)[0]["Cam-P2P"].causes, "device-clock-wrong")
    assert 0 < c < 0.5


def moved(name: str, new: str) -> dict[tuple[str, str], object]:
    return {**dead(name), ("device.seen_at", name): new, ("device.platform_online", name): REMOVE}


def test_ip_added_device_whose_mac_answers_elsewhere_moved_and_is_grey() -> None:
    devs, _ = run(moved("Cam-IP", "198.18.0.121"))
    v = devs["Cam-IP"]
    assert top(v) == "device-address-changed" and v.state == "offline" and v.icon == "grey"
    assert conf(v.causes, "device-no-power") < 0.5  # it is not off: it moved (explained away)
    assert "198.18.0.121" in v.causes[0].detail.render("en")  # type: ignore[union-attr]


def test_p2p_device_that_moved_stays_in_colour() -> None:
    over = {
        **moved("Cam-P2P", "198.18.0.122"),
        ("device.platform_online", "Cam-P2P"): True,
    }
    devs, _ = run(over)
    v = devs["Cam-P2P"]
    assert top(v) == "device-address-changed" and v.icon == "colour"
    assert v.causes[0].confidence >= 0.5


def test_no_seen_at_no_address_cause() -> None:
    devs, _ = run(dead("Cam-IP"))
    assert conf(devs["Cam-IP"].causes, "device-address-changed") == 0.0
    assert top(devs["Cam-IP"]) == "device-no-power"


def test_a_device_without_a_site_file_mac_moved_by_its_learnt_mac() -> None:
    import dataclasses

    from test_rules import DEVICES, make_site

    site = make_site(*(dataclasses.replace(d, mac=None) for d in DEVICES))
    over = {
        **moved("Cam-IP", "198.18.0.121"),
        ("device.mac_learnt", "Cam-IP"): {"mac": "02:00:00:00:00:21", "learnt": "2026-11-30"},
    }
    devs, _ = run(over, site=site)
    v = devs["Cam-IP"]
    assert top(v) == "device-address-changed" and v.icon == "grey"
    detail = v.causes[0].detail
    assert detail is not None
    assert "learnt on 2026-11-30" in detail.render("en") and "198.18.0.121" in detail.render("en")
    assert "poznana 2026-11-30" in detail.render("pl")


def test_ntp_on_but_its_server_silent_explains_a_clock_far_off() -> None:
    over = {
        ("device.clock_offset_s", "Cam-P2P"): (-3 * 3600.0, "s"),
        ("device.ntp_enabled", "Cam-P2P"): True,
        ("device.clock", "Cam-P2P"): {"offset_s": -10800.0, "ntp": True, "ntp_servers": ["x"]},
        ("device.ntp_reachable", "Cam-P2P"): False,
        ("device.platform_online", "Cam-P2P"): False,
    }
    v = run(over)[0]["Cam-P2P"]
    assert top(v) == "device-clock-wrong" and v.causes[0].confidence >= 0.85
    detail = v.causes[0].detail
    assert detail is not None and "NTP on, but its server does not answer" in detail.render("en")
    assert "włączone, ale jego serwer nie odpowiada" in detail.render("pl")


def test_ntp_on_with_a_silent_server_and_no_comparable_clock_is_weak_evidence() -> None:
    clock = {"utc": None, "offset_s": None, "ntp": True, "ntp_servers": ["198.18.0.1"]}
    over = {
        ("device.ntp_enabled", "Cam-P2P"): True,
        ("device.clock", "Cam-P2P"): clock,
        ("device.ntp_reachable", "Cam-P2P"): False,
        ("device.platform_online", "Cam-P2P"): False,
    }
    v = run(over)[0]["Cam-P2P"]
    c = next(c for c in v.causes if c.id == "device-clock-wrong")
    assert 0 < c.confidence < 0.5
    assert "198.18.0.1, which does not answer" in c.detail.render("en")  # type: ignore[union-attr]
    # The same device whose server answers: no clock cause at all.
    over[("device.ntp_reachable", "Cam-P2P")] = True
    assert conf(run(over)[0]["Cam-P2P"].causes, "device-clock-wrong") == 0.0


def test_a_clock_on_time_is_no_cause_even_with_its_ntp_server_silent() -> None:
    over = {
        ("device.clock_offset_s", "Cam-IP"): (2.0, "s"),
        ("device.ntp_enabled", "Cam-IP"): True,
        ("device.clock", "Cam-IP"): {"offset_s": 2.0, "ntp": True, "ntp_servers": ["198.18.0.1"]},
        ("device.ntp_reachable", "Cam-IP"): False,
    }
    assert conf(run(over)[0]["Cam-IP"].causes, "device-clock-wrong") == 0.0
