"""``diag monitor`` end to end, in real processes: plugin conventions, locking, crashes, full disk.

The checks come from a test plugin registered through its own dist-info (``plugin/``), so these
tests exercise plugin discovery too and send no traffic at all.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest_helpers import PLUGIN_SITE, plugin_env  # type: ignore[import-not-found]

from diag.monitor.store import Store

env_for = plugin_env


def monitor(
    site: Path, *args: str, states: dict[str, bool] | None = None
) -> subprocess.CompletedProcess[str]:
    tmp = site.parent
    if states is not None:
        (tmp / "states.json").write_text(json.dumps(states))
    cmd = [sys.executable, "-m", "diag.cli", "monitor", "--site", str(site), "--only", "fakehb"]
    if "--db" not in args:
        cmd += ["--db", str(tmp / "history.sqlite")]
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, env=env_for(tmp), timeout=60
    )


def start_monitor(site: Path, *args: str) -> subprocess.Popen[str]:
    """``diag monitor`` on the test plugin in the background, stdout captured."""
    cmd = [sys.executable, "-m", "diag.cli", "monitor", "--site", str(site), "--only", "fakehb"]
    return subprocess.Popen(
        [*cmd, *args], stdout=subprocess.PIPE, text=True, env=env_for(site.parent)
    )


def test_ok_run_prints_one_line_with_perfdata(site: Path) -> None:
    r = monitor(site)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("DIAG OK - Monitor test site: 2/2 devices online")
    perf = lines[0].split(" | ", 1)[1]
    assert "online=2;;;0;2" in perf and "offline=0;;0;0;2" in perf and "duration=" in perf
    with Store(site.parent / "history.sqlite") as s:
        assert s.run_count() == 1


def test_offline_device_is_critical_and_named(site: Path) -> None:
    r = monitor(site, states={"Gate camera": False})
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.startswith("DIAG CRITICAL - ")
    assert "Gate camera offline" in r.stdout


def test_polish_status_line(site: Path) -> None:
    r = monitor(site, "--lang", "pl")
    assert r.returncode == 0
    assert "dostępne urządzenia 2/2" in r.stdout


def test_bad_site_is_unknown_naming_the_field(site: Path) -> None:
    site.write_text(PLUGIN_SITE.replace('added_via = "p2p"', 'added_via = "bluetooth"'))
    r = monitor(site)
    assert r.returncode == 3
    assert r.stdout.startswith("DIAG UNKNOWN - ") and "added_via" in r.stdout


def _hold_lock(db: Path) -> int:
    fd = os.open(str(db) + ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_second_run_says_so_and_exits_unknown(site: Path) -> None:
    db = site.parent / "history.sqlite"
    fd = _hold_lock(db)
    try:
        r = monitor(site)
    finally:
        os.close(fd)
    assert r.returncode == 3
    assert "another monitor run is in progress" in r.stdout
    assert not db.exists() or Store(db).run_count() == 0


def test_wait_waits_for_the_lock(site: Path) -> None:
    db = site.parent / "history.sqlite"
    fd = _hold_lock(db)
    try:
        t0 = time.monotonic()
        proc = start_monitor(site, "--db", str(db), "--wait", "20")
        time.sleep(1.0)
        assert proc.poll() is None, "must wait while the lock is held"
    finally:
        os.close(fd)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert time.monotonic() - t0 >= 1.0
    assert Store(db).run_count() == 1


def test_ten_overlapping_runs_lose_nothing(site: Path) -> None:
    db = site.parent / "history.sqlite"
    procs = [start_monitor(site, "--db", str(db), "--wait", "60") for _ in range(10)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, outs
    with Store(db) as s:
        assert s.run_count() == 10
        assert s.integrity() == []
        (h,) = [h for h in s.device_history() if h.device == "NVR"]
        assert h.samples == 10


WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    sys.path.insert(0, sys.argv[2])
    from conftest_helpers import make_run
    from diag.monitor.store import Store
    s = Store(sys.argv[1])
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=int(sys.argv[3]))
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        states = {f"cam{k}": ("offline" if (i + k) % 3 == 0 else "online") for k in range(16)}
        s.record(make_run(states, t + dt.timedelta(seconds=i)))
    """
)


def test_kill_9_mid_write_never_corrupts(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    rng = random.Random(1234)
    for i in range(100):
        p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(Path(__file__).parent), str(i)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.03))
        p.send_signal(signal.SIGKILL)
        p.wait()
    with Store(db) as s:
        assert s.integrity() == []
        # every run recorded is whole: 16 devices + the site in each
        per_run = s.db.execute("SELECT count(*) FROM samples GROUP BY run").fetchall()
        assert per_run and {n for (n,) in per_run} == {17}
        assert s.run_count() == len(per_run)


def test_kill_9_of_the_monitor_itself(site: Path) -> None:
    db = site.parent / "history.sqlite"
    rng = random.Random(99)
    for _ in range(10):
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "diag.cli",
                "monitor",
                "--site",
                str(site),
                "--only",
                "fakehb",
                "--db",
                str(db),
            ],
            stdout=subprocess.DEVNULL,
            env=env_for(site.parent),
        )
        time.sleep(rng.uniform(0.2, 1.2))
        p.send_signal(signal.SIGKILL)
        p.wait()
    r = monitor(site)
    assert r.returncode == 0, r.stdout
    with Store(db) as s:
        assert s.integrity() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tiny tmpfs needs root")
def test_full_disk_is_unknown_with_a_clear_message(site: Path, tmp_path: Path) -> None:
    mnt = tmp_path / "full"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        db = mnt / "history.sqlite"
        r = monitor(site, "--db", str(db))
        assert r.returncode == 0, r.stdout
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass  # the disk is full now
        finally:
            os.close(fd)
        results = [monitor(site, "--db", str(db)) for _ in range(3)]
        assert any(r.returncode == 3 for r in results), [r.stdout for r in results]
        bad = next(r for r in results if r.returncode == 3)
        assert bad.stdout.startswith("DIAG UNKNOWN - cannot write the history")
        assert "full" in bad.stdout
        (mnt / "filler").unlink()
        with Store(db) as s:
            assert s.integrity() == []
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_cron_path_imports_neither_textual_nor_matplotlib(site: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from diag.cli import main
        rc = main(["monitor", "--site", {str(site)!r}, "--only", "fakehb",
                   "--db", {str(site.parent / "h.sqlite")!r}])
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"textual", "matplotlib"}})
        print("HEAVY", heavy, rc)
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env_for(site.parent),
        timeout=60,
    )
    assert "HEAVY [] 0" in r.stdout, r.stdout + r.stderr


def test_prometheus_textfile_and_pushgateway(site: Path, pushgateway: str) -> None:
    prom = site.parent / "diag.prom"
    r = monitor(site, "--prometheus", str(prom), "--pushgateway", pushgateway)
    assert r.returncode == 0, r.stdout
    text = prom.read_text()
    assert 'diag_device_up{device="Gate camera",site="Monitor test site"} 1.0' in text
    assert 'diag_relogin_window_seconds{site="Monitor test site"}' in text
    import httpx

    pushed = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    assert (
        'diag_runs_total{instance="monitor-test-site",job="diag",site="Monitor test site"} 1'
        in pushed
    )


def test_history_command_lists_outages(site: Path) -> None:
    for up in (True, False, False, True):
        monitor(site, states={"Gate camera": up})
    db = site.parent / "history.sqlite"
    r = subprocess.run(
        [sys.executable, "-m", "diag.cli", "history", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    data = {d["device"]: d for d in json.loads(r.stdout)}
    assert data["Gate camera"]["uptime_pct"] == 50.0
    assert len(data["Gate camera"]["outages"]) == 1
    assert data["NVR"]["outages"] == []
    table = subprocess.run(
        [sys.executable, "-m", "diag.cli", "history", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "Gate camera" in table and "50.00%" in table


def test_history_feeds_relogin_delay_after_a_link_outage(site: Path) -> None:
    """The guide's sequential login: the link is back, devices still grey while they log in."""
    up = {"@internet": True, "NVR": {"reachable": True, "platform": True}}
    down = {"@internet": False, "NVR": {"reachable": True, "platform": False}}
    back = {"@internet": True, "NVR": {"reachable": True, "platform": False}}
    for states in (up, down, down):
        monitor(site, states=states)
    r = monitor(site, "--json", str(site.parent / "run.json"), states=back)
    run = json.loads((site.parent / "run.json").read_text())
    nvr = next(d for d in run["devices"] if d["name"] == "NVR")
    assert nvr["causes"] and nvr["causes"][0]["id"] == "p2p-relogin-delay", (r.stdout, nvr)
    keys = {e["key"] for e in nvr["causes"][0]["evidence"]}
    assert "history.since_outage_s" in keys
    # without the history the same facts read differently
    r2 = subprocess.run(
        [
            sys.executable,
            "-m",
            "diag.cli",
            "run",
            "--site",
            str(site),
            "--only",
            "fakehb",
            "--json",
            str(site.parent / "run2.json"),
        ],
        capture_output=True,
        text=True,
        env=env_for(site.parent),
        timeout=60,
    )
    run2 = json.loads((site.parent / "run2.json").read_text())
    nvr2 = next(d for d in run2["devices"] if d["name"] == "NVR")
    assert not nvr2["causes"] or nvr2["causes"][0]["id"] != "p2p-relogin-delay", r2.stdout


def test_reports_carry_the_history_section(site: Path) -> None:
    for up in (True, False, True):
        monitor(site, states={"Gate camera": up})
    html_path = site.parent / "report.html"
    # back at the platform too, so no relogin delay keeps it grey
    back = {"Gate camera": {"reachable": True, "platform": True}}
    r = monitor(
        site, "--html", str(html_path), "--json", str(site.parent / "run.json"), states=back
    )
    assert r.returncode == 0, r.stdout
    page = html_path.read_text()
    assert 'id="history"' in page and "Gate camera" in page and "75.00%" in page
    # the same section from a saved run and the database, in Polish
    out = site.parent / "report-pl.html"
    db = site.parent / "history.sqlite"
    saved = str(site.parent / "run.json")

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "diag.cli", "report", "--from", saved, "--html", str(out)]
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)

    rr = report("--lang", "pl", "--history", str(db))
    assert rr.returncode == 0, rr.stderr
    assert "Historia" in out.read_text()
    missing = report("--history", str(site.parent / "nope.sqlite"))
    assert missing.returncode == 2 and "no history database" in missing.stderr
