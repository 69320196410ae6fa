"""The MACs diag learnt for each site's devices, kept between runs (``device-address-changed``).

A site file rarely names its devices' MACs; without one, a device DHCP moved is only "silent". So
every run that sees a device at its configured address writes down the MAC that answered there
(ARP, one MAC only, else the MAC the device's own API reports) with the date it was first seen;
a later run whose device is silent at its address finds that MAC at another address in the ARP
sweep. The store is one small JSON file per user (``platformdirs`` user state dir,
``diag/devices.json``; ``DIAG_DEVICE_STATE`` names another path, for tests and labs), keyed by the
site's name, written atomically. An unreadable or corrupt file is ignored with a note (the run
starts learning afresh), never a crash: the file is a cache, the site file stays the truth.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diag.fileio import write_atomic

ENV = "DIAG_DEVICE_STATE"
VERSION = 1
# The store is a few hundred bytes per device; a file over this size (1 MiB: thousands of sites)
# is not ours or is damaged, and is not read into memory.
MAX_BYTES = 1024 * 1024
MAC_CHARS = set("0123456789abcdef:")


@dataclass(frozen=True)
class Learnt:
    mac: str
    # ISO date (YYYY-MM-DD) this MAC was first seen at the device's configured address.
    learnt: str
    address: str


Store = dict[str, dict[str, Learnt]]


def state_path() -> Path:
    override = os.environ.get(ENV)
    if override:
        return Path(override)
    from platformdirs import user_state_dir

    return Path(user_state_dir("diag", appauthor=False)) / "devices.json"


def _mac(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    mac = value.strip().lower().replace("-", ":")
    if len(mac) != 17 or not set(mac) <= MAC_CHARS or mac == "00:00:00:00:00:00":
        return None
    return mac


def _entry(raw: object) -> Learnt | None:
    if not isinstance(raw, dict):
        return None
    mac, when, addr = _mac(raw.get("mac")), raw.get("learnt"), raw.get("address")
    if mac is None or not isinstance(when, str) or not isinstance(addr, str):
        return None
    try:
        dt.date.fromisoformat(when)
    except ValueError:
        return None
    return Learnt(mac, when, addr[:64])


def load(path: Path) -> tuple[Store, str | None]:
    """(the store, a note): note ``unreadable``/``corrupt`` when the file was there but unusable
    (the store is then empty); a missing file is an empty store without a note."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return {}, "corrupt"
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError):
        return {}, "unreadable"
    except (ValueError, RecursionError):
        return {}, "corrupt"
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}, "corrupt"
    sites = data.get("sites")
    if not isinstance(sites, dict):
        return {}, "corrupt"
    store: Store = {}
    for site, devices in sites.items():
        if not isinstance(site, str) or not isinstance(devices, dict):
            continue
        kept = {n: e for n, raw in devices.items() if (e := _entry(raw)) is not None}
        if kept:
            store[site] = kept
    return store, None


def save(path: Path, store: Store) -> str | None:
    """Writes the store atomically (a temporary file in the same directory, then a rename); a
    note (``unwritable``) instead of an exception when it cannot."""
    data = {
        "version": VERSION,
        "sites": {
            site: {
                n: {"mac": e.mac, "learnt": e.learnt, "address": e.address} for n, e in devs.items()
            }
            for site, devs in sorted(store.items())
        },
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
    except OSError:
        return "unwritable"
    return None


def update(
    known: Mapping[str, Learnt],
    observed: Mapping[str, tuple[str, str]],
    seen_macs: set[str],
    today: dt.date,
) -> dict[str, Learnt]:
    """The site's learnt MACs after this run (pure).

    ``observed``: device -> (MAC, address) that answered at the device's configured address this
    run; ``seen_macs``: every MAC the run's ARP saw anywhere. A device keeps its learnt date while
    the same MAC answers; a different MAC at its address replaces the learnt one only when the
    learnt MAC answered nowhere this run (the device was replaced), not when it answered
    elsewhere (DHCP moved it and gave its address to another device: the evidence is kept).
    """
    out = dict(known)
    for name, (raw_mac, address) in observed.items():
        mac = _mac(raw_mac)
        if mac is None:
            continue
        old = known.get(name)
        if old is not None and old.mac == mac:
            out[name] = Learnt(mac, old.learnt, address)
        elif old is None or old.mac not in seen_macs:
            out[name] = Learnt(mac, today.isoformat(), address)
    return out
