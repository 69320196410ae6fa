"""The monitor's history in SQLite: one row per device per run, rolled up for fast reports.

Durability and concurrency choices, each for a reason:
- WAL journal: readers (``diag history``, the report) never block the cron writer.
- ``busy_timeout``: a second process waits for the lock instead of failing at once.
- ``BEGIN IMMEDIATE`` for every write: the write lock is taken up front, so two writers can never
  deadlock upgrading a read lock, and a run is recorded whole or not at all.
- The schema version lives in ``PRAGMA user_version``; ``migrate()`` applies every missing step.
- A sample row is a few integers (WITHOUT ROWID, keyed by device and time) so a year of 5-minute
  samples for 64 devices (~6.7 million rows) stays well under 1 GB; a per-day rollup and an outage
  table are maintained on insert so reports never scan the raw samples.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from diag.model import DeviceState, Run

# How long a writer waits for another writer's transaction, ms: a monitor run writes in well under
# a second, so 30 s means "something is badly wrong" rather than "busy".
BUSY_TIMEOUT_MS = 30_000
DAY_MS = 86_400_000
SITE = ""  # the device key under which site-wide samples are stored
# Codes are stored: never renumber. "unknown" (not measured) came later, hence 3; it is no outage
# (nothing says the device went down) and does not end one (nothing says it came back).
STATE_CODE: dict[str, int] = {"online": 0, "degraded": 1, "offline": 2, "unknown": 3}
CODE_STATE: dict[int, DeviceState] = {0: "online", 1: "degraded", 2: "offline", 3: "unknown"}
DAILY_COLUMN = ("online", "degraded", "offline", "unknown")

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,              -- run start, Unix milliseconds
        duration_ms INTEGER NOT NULL,
        worst INTEGER NOT NULL,           -- STATE_CODE of the worst device
        site TEXT NOT NULL
    );
    CREATE INDEX runs_ts ON runs (ts);
    CREATE TABLE devices (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE causes (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE samples (
        device INTEGER NOT NULL REFERENCES devices (id),
        ts INTEGER NOT NULL,
        state INTEGER NOT NULL,
        cause INTEGER REFERENCES causes (id),
        run INTEGER NOT NULL REFERENCES runs (id),
        PRIMARY KEY (device, ts)
    ) WITHOUT ROWID;
    CREATE TABLE daily (
        device INTEGER NOT NULL,
        day INTEGER NOT NULL,             -- Unix day number (ts // DAY_MS, UTC)
        online INTEGER NOT NULL DEFAULT 0,
        degraded INTEGER NOT NULL DEFAULT 0,
        offline INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (device, day)
    ) WITHOUT ROWID;
    CREATE TABLE outages (
        id INTEGER PRIMARY KEY,
        device INTEGER NOT NULL,
        start INTEGER NOT NULL,
        end INTEGER,                      -- NULL while the outage goes on
        cause INTEGER
    );
    CREATE INDEX outages_device ON outages (device, start);
    CREATE TABLE alert_state (
        key TEXT PRIMARY KEY,             -- device name, or "" for the site
        confirmed INTEGER NOT NULL,       -- STATE_CODE last alerted on
        pending INTEGER,                  -- a different state seen, not yet confirmed
        pending_count INTEGER NOT NULL DEFAULT 0,
        since INTEGER NOT NULL
    );
    """,
    # 2: runs in which a device's state could not be measured (state 3, "unknown").
    """
    ALTER TABLE daily ADD COLUMN unknown INTEGER NOT NULL DEFAULT 0;
    """,
)


def site_state(run: Run) -> tuple[DeviceState, str | None]:
    """The site's internet link as a state: offline when nothing beyond the gateway answered,
    degraded when a site-wide cause is likely, else online; with the top site cause."""
    cause = run.site_causes[0].id if run.site_causes else None
    for r in run.checks:
        f = r.fact("wan.internet_reachable")
        if f is not None and f.value is False:
            return "offline", cause
    if any(c.confidence >= 0.5 for c in run.site_causes):
        return "degraded", cause
    return "online", cause


class StoreError(RuntimeError):
    """The history cannot be written (disk full, read-only, corrupt): the monitor says UNKNOWN."""


@dataclass(frozen=True)
class Outage:
    device: str
    start: dt.datetime
    end: dt.datetime | None
    cause: str | None

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class DeviceHistory:
    device: str
    samples: int
    uptime_pct: float | None
    # (day start, online fraction 0..1) per day with samples, oldest first.
    days: tuple[tuple[dt.date, float], ...]
    outages: tuple[Outage, ...]


def _ts(t: dt.datetime) -> int:
    # Milliseconds: two cron runs can start within one second (--wait queues them), and a sample is
    # keyed by (device, time); seconds would let the second run overwrite the first.
    return round(t.timestamp() * 1000)


def _dt(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts / 1000, dt.UTC)


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.db.execute("PRAGMA journal_mode = WAL")
            # NORMAL is durable across a process crash in WAL mode; only a power cut can lose the
            # last transaction, which for a 5-minute sample is acceptable.
            self.db.execute("PRAGMA synchronous = NORMAL")
            self.db.execute("PRAGMA foreign_keys = ON")
            self.migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One immediate write transaction; any error rolls it back and becomes ``StoreError``."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: {exc}") from exc
            raise

    @property
    def version(self) -> int:
        row = self.db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def migrate(self) -> None:
        with self.write() as db:
            current = int(db.execute("PRAGMA user_version").fetchone()[0])
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path}: history schema {current} is newer than this diag "
                    f"({len(MIGRATIONS)}); upgrade diag"
                )
            for step in range(current, len(MIGRATIONS)):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {step + 1}")

    def _id(self, table: str, name: str) -> int:
        row = self.db.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        cur = self.db.execute(f"INSERT INTO {table} (name) VALUES (?)", (name,))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def record(self, run: Run) -> int:
        """Stores one run (all devices and the site) in one transaction; returns the run id."""
        ts = _ts(run.started_at)
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO runs (ts, duration_ms, worst, site) VALUES (?, ?, ?, ?)",
                (ts, int(run.duration_s * 1000), STATE_CODE[run.worst_state], run.site),
            )
            run_id = cur.lastrowid
            assert run_id is not None
            rows: list[tuple[str, int, str | None]] = [
                (v.device, STATE_CODE[v.state], v.causes[0].id if v.causes else None)
                for v in run.devices
            ]
            site, site_cause = site_state(run)
            rows.append((SITE, STATE_CODE[site], site_cause))
            for name, code, cause in rows:
                self._sample(self._id("devices", name), ts, code, cause, run_id)
        return run_id

    def import_samples(
        self, samples: Sequence[tuple[str, dt.datetime, DeviceState, str | None]], site: str = ""
    ) -> None:
        """Bulk import of many samples (other tools' history, benchmarks), then rebuilt rollups.

        Row-by-row ``record`` keeps the rollups current on every insert; for millions of rows that
        is needlessly slow, so this inserts with ``executemany`` and derives rollups in SQL.
        """
        if not samples:
            return
        with self.write() as db:
            cur = db.execute(
                "INSERT INTO runs (ts, duration_ms, worst, site) VALUES (?, 0, 0, ?)",
                (_ts(samples[0][1]), site),
            )
            run_id = cur.lastrowid
            ids = {n: self._id("devices", n) for n in {s[0] for s in samples}}
            causes = {c: self._id("causes", c) for c in {s[3] for s in samples} if c}
            db.executemany(
                "INSERT OR REPLACE INTO samples (device, ts, state, cause, run) VALUES (?,?,?,?,?)",
                (
                    (ids[n], _ts(t), STATE_CODE[st], causes.get(c) if c else None, run_id)
                    for n, t, st, c in samples
                ),
            )
            self._rebuild_rollups(db)

    def _rebuild_rollups(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM daily")
        db.execute(
            "INSERT INTO daily (device, day, online, degraded, offline, unknown) "
            "SELECT device, ts / 86400000, sum(state = 0), sum(state = 1), sum(state = 2), "
            "sum(state = 3) "
            "FROM samples GROUP BY device, ts / 86400000"
        )
        db.execute("DELETE FROM outages")
        # An outage starts at an offline sample whose predecessor was not offline and ends at the
        # next sample where that flips back: transitions, then each start paired with the next.
        db.execute(
            "INSERT INTO outages (device, start, end, cause) "
            "SELECT device, ts, nxt, cause FROM ("
            "  SELECT device, ts, state, cause,"
            "         LEAD(ts) OVER (PARTITION BY device ORDER BY ts) AS nxt FROM ("
            "    SELECT device, ts, state, cause,"
            "           LAG(state) OVER (PARTITION BY device ORDER BY ts) AS prev FROM samples"
            "    WHERE state != 3"
            "  ) WHERE (state = 2) != (coalesce(prev, -1) = 2)"
            ") WHERE state = 2"
        )

    def _sample(self, device: int, ts: int, code: int, cause: str | None, run_id: int) -> None:
        db = self.db
        cause_id = self._id("causes", cause) if cause else None
        db.execute(
            "INSERT OR REPLACE INTO samples (device, ts, state, cause, run) VALUES (?, ?, ?, ?, ?)",
            (device, ts, code, cause_id, run_id),
        )
        col = DAILY_COLUMN[code]
        db.execute(
            f"INSERT INTO daily (device, day, {col}) VALUES (?, ?, 1) "
            f"ON CONFLICT (device, day) DO UPDATE SET {col} = {col} + 1",
            (device, ts // DAY_MS),
        )
        open_row = db.execute(
            "SELECT id FROM outages WHERE device = ? AND end IS NULL", (device,)
        ).fetchone()
        if code == STATE_CODE["offline"] and open_row is None:
            db.execute(
                "INSERT INTO outages (device, start, cause) VALUES (?, ?, ?)",
                (device, ts, cause_id),
            )
        elif code not in (STATE_CODE["offline"], STATE_CODE["unknown"]) and open_row is not None:
            db.execute("UPDATE outages SET end = ? WHERE id = ?", (ts, open_row[0]))

    # -- reading ---------------------------------------------------------------------------

    def device_names(self) -> list[str]:
        rows = self.db.execute("SELECT name FROM devices WHERE name != '' ORDER BY name")
        return [str(r[0]) for r in rows]

    def run_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM runs").fetchone()[0])

    def runs_recorded(self) -> int:
        """Runs recorded since the database was created: unlike ``run_count`` the retention does
        not lower it (run ids only grow; the newest row is never pruned), so it is a counter."""
        row = self.db.execute("SELECT coalesce(max(id), 0) FROM runs").fetchone()
        return int(row[0])

    def oldest_run(self) -> dt.datetime | None:
        row = self.db.execute("SELECT min(ts) FROM runs").fetchone()
        return _dt(int(row[0])) if row and row[0] is not None else None

    def last_states(self) -> dict[str, DeviceState]:
        """The latest recorded state of every device (and "" for the site)."""
        rows = self.db.execute(
            "SELECT d.name, s.state FROM devices d JOIN samples s ON s.device = d.id "
            "WHERE s.ts = (SELECT max(ts) FROM samples WHERE device = d.id)"
        )
        return {str(n): CODE_STATE[int(c)] for n, c in rows}

    def outages(
        self, device: str | None = None, since: dt.datetime | None = None, limit: int = 1000
    ) -> list[Outage]:
        q = (
            "SELECT d.name, o.start, o.end, c.name FROM outages o "
            "JOIN devices d ON d.id = o.device LEFT JOIN causes c ON c.id = o.cause "
            "WHERE (o.end IS NULL OR o.end >= ?)"
        )
        args: list[object] = [_ts(since) if since else 0]
        if device is not None:
            q += " AND d.name = ?"
            args.append(device)
        q += " ORDER BY o.start DESC LIMIT ?"
        args.append(limit)
        return [
            Outage(str(n), _dt(int(s)), _dt(int(e)) if e is not None else None, c)
            for n, s, e, c in self.db.execute(q, args)
        ]

    def last_outage(self, device: str) -> Outage | None:
        found = self.outages(device, limit=1)
        return found[0] if found else None

    def device_history(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> list[DeviceHistory]:
        """Uptime, daily availability and outages per device from the rollups (no sample scan)."""
        lo = _ts(since) // DAY_MS if since else 0
        hi = _ts(until) // DAY_MS if until else 2**40
        per: dict[str, list[tuple[int, int, int, int]]] = {}
        rows = self.db.execute(
            "SELECT d.name, y.day, y.online, y.degraded, y.offline FROM daily y "
            "JOIN devices d ON d.id = y.device WHERE d.name != '' AND y.day BETWEEN ? AND ? "
            "ORDER BY d.name, y.day",
            (lo, hi),
        )
        for name, day, on, deg, off in rows:
            per.setdefault(str(name), []).append((int(day), int(on), int(deg), int(off)))
        outs: dict[str, list[Outage]] = {}
        for o in self.outages(since=since, limit=100_000):
            outs.setdefault(o.device, []).append(o)
        out = []
        for name in sorted(set(per) | {k for k in outs if k}):
            days = per.get(name, [])
            total = sum(on + deg + off for _, on, deg, off in days)
            up = sum(on + deg for _, on, deg, _off in days)
            out.append(
                DeviceHistory(
                    device=name,
                    samples=total,
                    uptime_pct=round(100.0 * up / total, 3) if total else None,
                    days=tuple(
                        (dt.date(1970, 1, 1) + dt.timedelta(days=d), (on + deg) / (on + deg + off))
                        for d, on, deg, off in days
                        # A day of only unknown samples measured nothing: no availability.
                        if on + deg + off
                    ),
                    outages=tuple(outs.get(name, [])),
                )
            )
        return out

    def prune(self, older_than: dt.datetime) -> int:
        """Retention: drops samples, rollups, runs and closed outages older than ``older_than``."""
        ts = _ts(older_than)
        with self.write() as db:
            n = db.execute("DELETE FROM samples WHERE ts < ?", (ts,)).rowcount
            db.execute("DELETE FROM daily WHERE day < ?", (ts // DAY_MS,))
            db.execute("DELETE FROM outages WHERE end IS NOT NULL AND end < ?", (ts,))
            db.execute("DELETE FROM runs WHERE ts < ?", (ts,))
        return int(n)

    def integrity(self) -> list[str]:
        """Problems found by SQLite's integrity check and our own consistency rules (empty: ok)."""
        problems = [
            str(r[0]) for r in self.db.execute("PRAGMA integrity_check") if str(r[0]) != "ok"
        ]
        # Every run's samples must be there whole: a run is written in one transaction.
        bad = self.db.execute(
            "SELECT r.id FROM runs r WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.run = r.id)"
        ).fetchall()
        problems += [f"run {r[0]} has no samples" for r in bad]
        opened = self.db.execute(
            "SELECT device, count(*) FROM outages WHERE end IS NULL "
            "GROUP BY device HAVING count(*) > 1"
        ).fetchall()
        problems += [f"device id {d} has {n} open outages" for d, n in opened]
        return problems
