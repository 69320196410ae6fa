"""Dashboard benchmark: time to first paint, and key-press repaint latency during a 64-device run.

Run: ``.venv/bin/python bench/bench_tui.py`` (``--json`` for machine use). Nothing touches the
network: the checks are fakes that sleep and report facts, as in tests/tui.

The dashboard runs for real, in a pseudo-terminal at 80x24 as over SSH (not Textual's headless
driver, whose test helpers wait for the whole process to go idle), and the bench reads what it
draws, byte for byte:

1. First paint: from starting the process (interpreter and imports included) until the key bar
   has been drawn; the checks take seconds, so no result can have arrived by then.
2. Key press -> repaint: while the 64-device run is in progress (eight checks streaming progress
   and results), ``l`` switches the language back and forth: the heaviest key, it redraws every
   table. Each press is timed from writing the key to the terminal until the key bar's new
   label (``English`` / ``polski``) has come out of it. ``?`` (help, a new screen) likewise.

Targets (issue 6): first paint < 1 s, repaint < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "tui"))

FIRST_PAINT_TARGET_S = 1.0
REPAINT_TARGET_S = 0.100
N_DEVICES = 64
# The fake checks take up to this long, s: long enough that every key press lands mid-run.
CHECK_S = 12.0
# Waiting for a frame longer than this means the dashboard is stuck, s.
FRAME_TIMEOUT_S = 10.0


def bench_site() -> Any:
    from diag.config import load_site
    from diag.model import Device

    site = load_site(ROOT / "tests" / "tui" / "site.toml")
    vias = ("ip", "p2p", "p2p-account", "shared")
    devices = tuple(
        Device(
            f"{'NVR' if i % 8 == 0 else 'Camera'} {i:02d}",
            "nvr" if i % 8 == 0 else "ipc",
            vias[i % 4],  # type: ignore[arg-type]
            address=f"127.0.1.{i + 1}",
            public_host="127.0.0.1" if i % 4 == 0 else None,
            serial=f"SN{i:04d}",
            streams_kbps=(2048,),
        )
        for i in range(N_DEVICES)
    )
    return dataclasses.replace(site, devices=devices)


def bench_registry(site: Any, check_s: float) -> Any:
    from tui_fakes import FakeCheck, reachability, site_facts

    from diag.checks.base import registry_from
    from diag.model import Fact

    offline = [d.name for d in site.devices[::9]]
    # Eight checks with 20 progress steps each: a steady stream of messages during the run.
    checks = [
        FakeCheck("wan", delay_s=check_s * 0.3, steps=20, facts=site_facts()),
        FakeCheck("heartbeat", delay_s=check_s, steps=40, facts=reachability(site, offline)),
    ]
    for i, name in enumerate(("dns", "p2p", "stun", "ports", "vlan", "bandwidth")):
        facts = [Fact(f"bench.{name}", j, target=d.name) for j, d in enumerate(site.devices)]
        checks.append(FakeCheck(name, delay_s=check_s * (0.4 + 0.1 * i), steps=20, facts=facts))
    return registry_from(*checks)


def serve() -> int:
    """The child: the real dashboard on the 64-device site with slow fake checks."""
    from textual import events, on

    from diag.tui.app import DiagApp

    mark = os.environ.get("DIAG_BENCH_MARK")

    class BenchApp(DiagApp):
        @on(events.Mount)
        def _bench_mark(self) -> None:
            if mark:
                self.call_after_refresh(
                    lambda: Path(mark).write_text(json.dumps({"cpu_s": time.process_time()}))
                )

    site = bench_site()
    BenchApp(site, registry=bench_registry(site, CHECK_S)).run()
    return 0


class Term:
    """The dashboard in a pseudo-terminal; collects everything it writes."""

    def __init__(
        self, cols: int = 80, rows: int = 24, argv: list[str] | None = None, nice: int = 0
    ) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
        env.pop("NO_COLOR", None)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv or [sys.executable, __file__, "--serve"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            # A negative nice (root) gives the dashboard the CPU it would have on the installer's
            # laptop when this machine is shared with other jobs; the load is printed either way.
            preexec_fn=(lambda: os.setpriority(os.PRIO_PROCESS, 0, nice)) if nice else None,
        )
        os.close(slave)
        self.out = b""

    def wait_for(self, needle: bytes, since: int) -> float:
        """Reads until ``needle`` appears in the output after offset ``since``; the time then."""
        deadline = time.perf_counter() + FRAME_TIMEOUT_S
        while needle not in self.out[since:]:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"{needle!r} not drawn within {FRAME_TIMEOUT_S} s")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    raise TimeoutError("the dashboard exited") from None
        return time.perf_counter()

    def drain(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    return

    def press(self, key: bytes, expect: bytes) -> float:
        mark = len(self.out)
        t0 = time.perf_counter()
        os.write(self.master, key)
        return self.wait_for(expect, mark) - t0

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()  # only the child this bench started
            self.proc.wait()
        os.close(self.master)


def measure(nice: int = 0) -> dict[str, Any]:
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    paint_file = tmp / "paint.json"
    os.environ["DIAG_BENCH_MARK"] = str(paint_file)
    term = Term(nice=nice)
    try:
        first_paint = term.wait_for(b"quit", 0) - term.t0
        # CPU the process spent until its first frame (interpreter, imports, layout): what an
        # idle laptop would take, whatever the load here.
        term.drain(0.3)
        paint_cpu = json.loads(paint_file.read_text())["cpu_s"] if paint_file.exists() else None
        term.drain(1.0)  # let the run get going: progress streaming from all eight checks
        # What the screen costs a weak link while nothing is pressed: spinners, times, results.
        mark = len(term.out)
        term.drain(2.0)
        idle_rate = (len(term.out) - mark) / 2.0
        running_at_start = b"Checks 0/8" in term.out or b"Checks 1/8" in term.out
        toggle = [(b"l", b"English"), (b"l", b"polski")] * 15
        key_times = []
        for key, expect in toggle:
            key_times.append(term.press(key, expect))
            term.drain(0.1)  # a person presses at most ~10 keys a second
        help_times = []
        for _ in range(5):
            help_times.append(term.press(b"?", b"Device icons"))
            term.drain(0.1)
            os.write(term.master, b"q")  # closes the help
            term.drain(0.2)
        term.drain(0.05)
        elapsed = time.perf_counter() - term.t0
        still_running = elapsed < CHECK_S
    finally:
        term.close()
        shutil.rmtree(tmp, ignore_errors=True)
    all_times = sorted(key_times + help_times)
    return {
        "first_paint_s": round(first_paint, 3),
        "first_paint_cpu_s": round(paint_cpu, 3) if paint_cpu is not None else None,
        "checks_running_after_first_paint": running_at_start,
        "presses": len(all_times),
        "median_ms": round(statistics.median(all_times) * 1000, 1),
        "p95_ms": round(all_times[int(len(all_times) * 0.95) - 1] * 1000, 1),
        "max_ms": round(all_times[-1] * 1000, 1),
        "help_median_ms": round(statistics.median(help_times) * 1000, 1),
        "run_in_progress_during_presses": still_running,
        "devices": N_DEVICES,
        "output_bytes_per_s_while_running": round(idle_rate),
    }


def cli_first_paint(nice: int = 0) -> float:
    """First paint through the real command, ``diag tui``, with real checks on the loopback site.

    Only ``host`` (reads /proc) and ``p2p`` (to 127.0.0.1) run: this measures the command's own
    start-up (argument parsing, entry points, imports), not the fakes.
    """
    diag = Path(sys.executable).with_name("diag")
    site = ROOT / "tests" / "tui" / "site.toml"
    term = Term(argv=[str(diag), "tui", "--site", str(site), "--only", "host,p2p"], nice=nice)
    try:
        return term.wait_for(b"quit", 0) - term.t0
    finally:
        term.close()


async def _cpu_per_key() -> dict[str, float]:
    """UI-thread CPU per key (handler + composing a full 80x24 frame), ms: independent of load."""
    from diag.tui.app import DiagApp

    site = bench_site()
    app = DiagApp(site, registry=bench_registry(site, CHECK_S))
    keys = {
        "l (language)": lambda: app.action_switch_language(),
        "down (device)": lambda: app.dashboard.devices.action_cursor_down(),
        "g (mark grey)": lambda: app.dashboard.action_mark_grey(),
    }
    out: dict[str, list[float]] = {k: [] for k in keys}
    async with app.run_test(size=(80, 24)):
        while not any(r.phase == "running" for r in app.dashboard.checks.rows_by_id.values()):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        for _ in range(10):
            for name, press in keys.items():
                c0 = time.thread_time()
                press()
                await asyncio.sleep(0)  # the handlers and watchers it set off
                app.screen._refresh_layout()
                app.screen._compositor.render_full_update()
                out[name].append((time.thread_time() - c0) * 1000)
                await asyncio.sleep(0.05)
        running = app.dashboard.running
        app.exit()
    if not running:
        raise RuntimeError("the run ended before the keys were measured")
    return {k: round(statistics.median(v), 1) for k, v in out.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--nice", type=int, default=0, help="run the dashboard at this nice level (root: < 0)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    load_before = os.getloadavg()[0]
    runs = [measure(args.nice) for _ in range(args.runs)]
    cli_paints = [round(cli_first_paint(args.nice), 3) for _ in range(args.runs)]
    cpu = asyncio.run(_cpu_per_key())
    load_after = os.getloadavg()[0]
    worst_paint = max([r["first_paint_s"] for r in runs] + cli_paints)
    worst_p95 = max(r["p95_ms"] for r in runs)
    worst_max = max(r["max_ms"] for r in runs)
    ok = (
        worst_paint < FIRST_PAINT_TARGET_S
        and worst_p95 < REPAINT_TARGET_S * 1000
        and all(r["run_in_progress_during_presses"] for r in runs)
    )
    load = (
        f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} CPUs, "
        f"dashboard at nice {args.nice}"
    )
    if args.json:
        print(
            json.dumps(
                {"runs": runs, "cli_first_paint_s": cli_paints, "load": load, "ok": ok}, indent=2
            )
        )
    else:
        print(f"{'run':>3}  {'first paint':>11}  {'median':>8}  {'p95':>8}  {'max':>8}  presses")
        for i, r in enumerate(runs, 1):
            print(
                f"{i:>3}  {r['first_paint_s']:>9.3f} s  {r['median_ms']:>5.1f} ms  "
                f"{r['p95_ms']:>5.1f} ms  {r['max_ms']:>5.1f} ms  {r['presses']}"
            )
        cpus = [r["first_paint_cpu_s"] for r in runs]
        print(f"CPU time of the dashboard process until its first frame: {cpus} s")
        rates = [r["output_bytes_per_s_while_running"] for r in runs]
        print(f"terminal output while the run streams, no key pressed: {rates} bytes/s")
        print(f"first paint of `diag tui` (the command, real checks): {cli_paints} s")
        print(f"UI-thread CPU per key incl. a full frame, median ms: {cpu}")
        print(load)
        print(
            f"worst first paint {worst_paint:.3f} s (target < {FIRST_PAINT_TARGET_S:.0f} s), "
            f"worst p95 repaint {worst_p95:.1f} ms, worst max {worst_max:.1f} ms "
            f"(target < {REPAINT_TARGET_S * 1000:.0f} ms), {N_DEVICES} devices, 80x24 pty"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
