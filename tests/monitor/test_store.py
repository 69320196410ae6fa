"""History store: records, rollups, outages, migrations, retention, integrity."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from conftest_helpers import make_run  # type: ignore[import-not-found]

from diag.monitor.store import MIGRATIONS, Store, StoreError

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
STEP = dt.timedelta(minutes=5)


def test_record_and_read_back(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        s.record(make_run({"cam1": "online", "cam2": "online"}, T0))
        s.record(make_run({"cam1": "offline", "cam2": "online"}, T0 + STEP))
        s.record(make_run({"cam1": "offline", "cam2": "degraded"}, T0 + 2 * STEP))
        s.record(make_run({"cam1": "online", "cam2": "online"}, T0 + 3 * STEP))
        assert s.run_count() == 4
        assert s.last_states() == {"cam1": "online", "cam2": "online", "": "online"}
        outs = s.outages("cam1")
        assert len(outs) == 1
        assert outs[0].start == T0 + STEP and outs[0].end == T0 + 3 * STEP
        assert outs[0].duration_s == 600
        assert outs[0].cause == "device-no-power"
        hist = {h.device: h for h in s.device_history()}
        assert hist["cam1"].samples == 4 and hist["cam1"].uptime_pct == 50.0
        # degraded still reaches the app: counts as up
        assert hist["cam2"].uptime_pct == 100.0
        assert s.outages("cam2") == []
        assert s.integrity() == []


def test_open_outage_has_no_end(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        s.record(make_run({"cam1": "offline"}, T0))
        s.record(make_run({"cam1": "offline"}, T0 + STEP))
        (o,) = s.outages("cam1")
        assert o.end is None and o.duration_s is None
        assert s.last_outage("cam1") == o


def test_schema_is_versioned_and_migrates_from_empty(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        assert s.version == len(MIGRATIONS)
        journal = s.db.execute("PRAGMA journal_mode").fetchone()[0]
        assert journal == "wal"


def test_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    p = tmp_path / "h.sqlite"
    db = sqlite3.connect(p)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(StoreError, match="newer than this diag"):
        Store(p)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    p = tmp_path / "h.sqlite"
    p.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        Store(p)


def test_retention_prunes_old_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        s.record(make_run({"cam1": "offline"}, T0))
        s.record(make_run({"cam1": "online"}, T0 + STEP))
        s.record(make_run({"cam1": "online"}, T0 + dt.timedelta(days=10)))
        assert s.oldest_run() == T0
        s.prune(T0 + dt.timedelta(days=5))
        assert s.run_count() == 1
        assert s.outages("cam1") == []
        (h,) = s.device_history()
        assert h.samples == 1
        assert s.integrity() == []


def test_failed_write_rolls_back_whole_run(tmp_path: Path) -> None:
    with Store(tmp_path / "h.sqlite") as s:
        s.record(make_run({"cam1": "online"}, T0))
        with pytest.raises(StoreError), s.write() as db:
            db.execute("INSERT INTO runs (ts, duration_ms, worst, site) VALUES (1, 1, 0, 'x')")
            db.execute("INSERT INTO no_such_table VALUES (1)")
        assert s.run_count() == 1


def test_bulk_import_builds_the_same_rollups_as_live_recording(tmp_path: Path) -> None:
    import random

    rng = random.Random(7)
    seq = []
    for i in range(600):
        for dev in ("a", "b", "c"):
            state = rng.choice(["online"] * 6 + ["offline", "degraded"])
            seq.append((dev, T0 + i * STEP, state, "link-outage" if state == "offline" else None))
    live, bulk = Store(tmp_path / "live.sqlite"), Store(tmp_path / "bulk.sqlite")
    for i in range(600):
        states = {d: st for d, t, st, _c in seq[i * 3 : i * 3 + 3]}
        live.record(make_run(states, T0 + i * STEP, cause="link-outage"))  # type: ignore[arg-type]
    bulk.import_samples(seq)  # type: ignore[arg-type]
    for dev in ("a", "b", "c"):
        assert [(o.start, o.end, o.cause) for o in live.outages(dev)] == [
            (o.start, o.end, o.cause) for o in bulk.outages(dev)
        ]
    lh = {h.device: h for h in live.device_history()}
    bh = {h.device: h for h in bulk.device_history()}
    assert {d: (h.samples, h.uptime_pct, h.days) for d, h in bh.items()} == {
        d: (lh[d].samples, lh[d].uptime_pct, lh[d].days) for d in bh
    }
    assert bulk.integrity() == []
