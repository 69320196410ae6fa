"""The learnt-MAC store (diag.devices.learnt) and the heartbeat's use of it: what a run learns,
what it keeps when a device moved or was replaced, and a damaged file that is only a note."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from diag.checks.heartbeat import moved_devices, observed_macs
from diag.devices import learnt
from diag.devices.learnt import Learnt
from diag.model import Device, Fact

DAY1 = dt.date(2026, 11, 30)
DAY2 = dt.date(2026, 12, 2)
MAC_A = "02:00:00:00:00:21"
MAC_B = "02:00:00:00:00:99"


def test_save_then_load_round_trips_atomically(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "devices.json"
    store = {"Site": {"cam": Learnt(MAC_A, DAY1.isoformat(), "198.18.0.21")}}
    assert learnt.save(path, store) is None
    assert learnt.load(path) == (store, None)
    # Written through a temporary file that is renamed: none is left behind.
    assert [p.name for p in path.parent.iterdir()] == ["devices.json"]


def test_a_missing_file_is_an_empty_store_without_a_note(tmp_path: Path) -> None:
    assert learnt.load(tmp_path / "none.json") == ({}, None)


def test_a_corrupt_or_foreign_file_is_a_note_never_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "devices.json"
    for text in ("{not json", "[1, 2]", '{"version": 99, "sites": {}}', "[" * 100_000, "\udcff"):
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        store, note = learnt.load(path)
        assert store == {} and note in ("corrupt", "unreadable"), text[:20]
    # Bad entries are dropped one by one; the good ones are kept.
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "sites": {
                    "S": {
                        "ok": {"mac": MAC_A.upper(), "learnt": "2026-11-30", "address": "x"},
                        "bad-mac": {"mac": "zz", "learnt": "2026-11-30", "address": "x"},
                        "bad-date": {"mac": MAC_A, "learnt": "yesterday", "address": "x"},
                        "not-a-dict": 5,
                    },
                    "T": [],
                },
            }
        ),
        encoding="utf-8",
    )
    assert learnt.load(path) == ({"S": {"ok": Learnt(MAC_A, "2026-11-30", "x")}}, None)


def test_an_unwritable_path_is_a_note(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    assert learnt.save(blocker / "devices.json", {}) == "unwritable"


def test_the_path_is_the_environments_when_set() -> None:
    assert learnt.state_path() == Path(os.environ[learnt.ENV])


def test_update_keeps_the_first_date_and_the_evidence_of_a_move() -> None:
    first = learnt.update({}, {"cam": (MAC_A.upper(), "198.18.0.21")}, {MAC_A}, DAY1)
    assert first == {"cam": Learnt(MAC_A, "2026-11-30", "198.18.0.21")}
    # Same MAC two days later: the date it was first learnt stays.
    assert learnt.update(first, {"cam": (MAC_A, "198.18.0.21")}, {MAC_A}, DAY2) == first
    # Another device now has the address and the learnt MAC answers elsewhere: DHCP moved it;
    # the learnt MAC is kept (it is the evidence).
    assert learnt.update(first, {"cam": (MAC_B, "198.18.0.21")}, {MAC_A, MAC_B}, DAY2) == first
    # The learnt MAC answers nowhere: the device was replaced, the new one is learnt.
    replaced = learnt.update(first, {"cam": (MAC_B, "198.18.0.21")}, {MAC_B}, DAY2)
    assert replaced == {"cam": Learnt(MAC_B, "2026-12-02", "198.18.0.21")}
    # Not seen this run: nothing changes.
    assert learnt.update(first, {}, set(), DAY2) == first


def test_observed_macs_prefers_one_arp_answer_and_learns_nothing_from_a_conflict() -> None:
    devices = [Device(n, "ipc", "ip", address=f"198.18.0.{i}") for i, n in enumerate("abcd", 1)]
    facts = [
        Fact("device.arp_macs", [MAC_A], target="a"),
        Fact("device.info", {"mac": MAC_B}, target="a"),
        Fact("device.arp_macs", [MAC_A, MAC_B], target="b"),  # an IP conflict
        Fact("device.info", {"mac": MAC_B}, target="c"),  # no ARP (no root): the API's MAC
        Fact("device.arp_macs", [], target="d"),
    ]
    assert observed_macs(devices, facts) == {
        "a": (MAC_A, "198.18.0.1"),
        "c": (MAC_B, "198.18.0.3"),
    }


def test_moved_devices_uses_the_learnt_mac_when_the_site_file_has_none() -> None:
    cam = Device("cam", "ipc", "ip", address="198.18.0.21")
    known = {"cam": Learnt(MAC_A, "2026-11-30", "198.18.0.21")}
    facts = moved_devices([cam], {"198.18.0.121": [MAC_A]}, known)
    assert [(f.key, f.value) for f in facts] == [
        ("device.mac_learnt", {"mac": MAC_A, "learnt": "2026-11-30"}),
        ("device.seen_at", "198.18.0.121"),
    ]
    # Still at its own address: not moved.
    assert [f.key for f in moved_devices([cam], {"198.18.0.21": [MAC_A]}, known)] == [
        "device.mac_learnt"
    ]
    # Nothing learnt, no MAC in the site file: nothing to look for.
    assert moved_devices([cam], {"198.18.0.121": [MAC_A]}, {}) == []
