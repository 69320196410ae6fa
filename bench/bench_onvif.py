"""Benchmark: diag's own ONVIF requests vs onvif-zeep-async (zeep) reading the same device.

The lab's device emulator runs on 127.0.0.1 (two hours fast, NTP off). Measured:
- import time of each client, in a fresh interpreter (``python -c "import ..."`` minus a bare
  ``python -c pass``), median of ``--imports`` runs;
- one full read of identity, network settings and time, ``--reads`` times, median: diag's
  ``OnvifAdapter.read`` (GetSystemDateAndTime, GetDeviceInformation, then GetNetworkInterfaces,
  GetNetworkDefaultGateway, GetDNS, GetNTP, GetServices concurrently) vs onvif-zeep-async
  (``ONVIFCamera(adjust_time=True)``, ``update_xaddrs``, the same six calls through zeep);
- that both read the same values.

Run (not pytest): ``.venv/bin/python bench/bench_onvif.py [--reads 20] [--imports 5] [--md FILE]``.
Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from device_emulator import PASSWORD, Emulator, peer_read

REPORTED = {"ip": "127.0.0.1", "mask": "255.0.0.0", "gateway": "127.0.0.254", "dns": ["127.0.0.1"]}


def import_ms(module: str, runs: int) -> float:
    def once(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return (time.perf_counter() - t) * 1000

    base = statistics.median(once("pass") for _ in range(runs))
    return round(statistics.median(once(f"import {module}") for _ in range(runs)) - base, 1)


CLIENT: Any = None


async def diag_read(port: int) -> dict[str, Any]:
    from diag.devices import Target
    from diag.devices.http import device_client
    from diag.devices.onvif import OnvifAdapter

    global CLIENT
    if CLIENT is None:
        # One client for every device, as the heartbeat check has (building one loads the CA
        # store: ~50 ms, paid once per run, not per device).
        CLIENT = device_client()
    r = await OnvifAdapter().read(Target("cam", "127.0.0.1", port, "admin", PASSWORD, CLIENT))
    assert r.auth == "ok", r
    assert r.identity and r.network and r.clock
    return {
        "serial": r.identity["serial"],
        "model": r.identity["model"],
        "ip": r.network["ip"],
        "gateway": r.network["gateway"],
        "dns": r.network["dns"],
        "ntp_servers": r.clock["ntp_servers"],
        "offset_s": round(float(r.clock["offset_s"] or 0)),
    }


async def zeep_read(port: int) -> dict[str, Any]:
    vals = await peer_read(port)
    keys = ("serial", "model", "ip", "gateway", "dns", "ntp_servers")
    return {**{k: vals[k] for k in keys}, "offset_s": round(vals["offset_s"])}


async def timed(fn: Any, port: int, n: int) -> tuple[float, float, dict[str, Any]]:
    """(first read ms, median of the later reads ms, values read)."""
    times = []
    out: dict[str, Any] = {}
    for _ in range(n + 1):
        t = time.perf_counter()
        out = await fn(port)
        times.append((time.perf_counter() - t) * 1000)
    return round(times[0], 1), round(statistics.median(times[1:]), 1), out


async def adapter_ms(port: int, n: int) -> dict[str, float]:
    """Median full read per built-in adapter (shared client, as the heartbeat check has)."""
    from diag.devices import Target, load_adapters
    from diag.devices.http import device_client

    adapters = load_adapters()[0]
    out: dict[str, float] = {}
    async with device_client() as client:
        for name in ("onvif", "isapi", "dahua"):
            times = []
            for _ in range(n):
                t = time.perf_counter()
                r = await adapters[name].read(
                    Target("cam", "127.0.0.1", port, "admin", PASSWORD, client)
                )
                times.append((time.perf_counter() - t) * 1000)
                assert r.auth == "ok", (name, r)
            out[name] = round(statistics.median(times), 1)
    return out


def main() -> int:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # onvif-zeep-async turns INFO on
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=20)
    ap.add_argument("--imports", type=int, default=5)
    ap.add_argument("--md", help="write the table as Markdown here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(
            Path(tmp), reported=REPORTED, clock_offset_s=7200,
            ntp={"enabled": False, "servers": ["127.0.0.9"]},
        )  # fmt: skip
        try:
            d_first, d_ms, d_vals = asyncio.run(timed(diag_read, emu.port, args.reads))
            z_first, z_ms, z_vals = asyncio.run(timed(zeep_read, emu.port, args.reads))
            per_adapter = asyncio.run(adapter_ms(emu.port, args.reads))
        finally:
            emu.stop()
    d_imp = import_ms("diag.devices.onvif", args.imports)
    z_imp = import_ms("onvif", args.imports)
    same = {k: d_vals[k] == z_vals[k] for k in d_vals if k != "offset_s"}
    # The device's clock has 1 s resolution: the two offsets agree within a second.
    same["offset_s"] = abs(d_vals["offset_s"] - z_vals["offset_s"]) <= 1
    rows = [
        ("import (ms)", d_imp, z_imp),
        ("first read of a device (ms; zeep loads its WSDLs)", d_first, z_first),
        ("later reads (ms, median)", d_ms, z_ms),
    ]
    lines = ["| | diag (own SOAP) | onvif-zeep-async | ratio |", "|---|---|---|---|"]
    lines += [f"| {name} | {a} | {b} | {b / a:.1f}x |" for name, a, b in rows]
    lines.append(f"\nsame values: {json.dumps(same)}")
    lines.append(
        "\none full read per adapter (ms, median): "
        + ", ".join(f"{k} {v}" for k, v in per_adapter.items())
    )
    text = "\n".join(lines)
    print(text)
    if args.md:
        Path(args.md).write_text(text + "\n", encoding="utf-8")
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
