"""The smaller fail-closed items of the monitor: ``diag history`` takes ``--site`` next to
``--db``; a ``diag monitor`` killed with -9 while writing its textfile leaves no
``diag.prom.<pid>.<tid>`` behind (one fixed hidden temp name, and old leftovers are swept)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from diag import cli
from diag.model import Run, Verdict
from diag.monitor import exporters
from diag.monitor.store import Store

SITE = '[site]\nname = "Small site"\nprofile = "loopback"\n'
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def a_run() -> Run:
    return Run("Small site", NOW, 1.0, (), (Verdict("cam", "ipc", "p2p", "online", "colour"),))


def test_history_takes_site_next_to_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site.toml"
    site.write_text(SITE)
    db = tmp_path / "h.sqlite"
    with Store(db) as store:
        store.record(a_run())
    assert cli.main(["history", "--site", str(site), "--db", str(db), "--days", "36500"]) == 0
    assert "cam" in capsys.readouterr().out
    # Neither: a usage error naming both options; a bad site file is still refused.
    assert cli.main(["history"]) == 2
    assert "--site FILE, --db FILE or both" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nname = ""\n')
    assert cli.main(["history", "--site", str(bad), "--db", str(db)]) == 2


KILLED_WRITER = """
import os, sys, time
from diag.monitor import exporters
from diag.model import Run
import datetime as dt

def hang(src, dst):
    print("writing", flush=True)
    time.sleep(60)

os.replace = hang  # the rename never comes: kill -9 lands mid-write
run = Run("Small site", dt.datetime(2026, 12, 1, tzinfo=dt.UTC), 1.0, ())
exporters.write_textfile(run, sys.argv[1])
"""


def test_kill_9_mid_write_leaves_no_growing_litter(tmp_path: Path) -> None:
    prom = tmp_path / "diag.prom"
    # What prometheus_client's writer left behind after earlier kills: swept by the next write.
    for pid in (1234, 5678):
        (tmp_path / f"diag.prom.{pid}.{pid * 3}").write_bytes(b"")
    other = tmp_path / "node.prom.1.2"  # not ours: left alone
    other.write_bytes(b"")
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(prom)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    left = sorted(p.name for p in tmp_path.iterdir())
    # Two killed runs: one hidden temp file (not *.prom: the collector ignores it), no pid litter.
    assert left == [".diag.prom.tmp", "node.prom.1.2"]
    exporters.write_textfile(a_run(), str(prom))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diag.prom", "node.prom.1.2"]
    assert "diag_device_state" in prom.read_text()
