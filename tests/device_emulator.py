"""The lab's real device emulator started on 127.0.0.1 for loopback tests (heartbeat, adapters)."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PASSWORD = "S3cr3t-Pa55!word"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Emulator:
    """The lab's real device emulator on 127.0.0.1 (P2P off: no heartbeats sent anywhere)."""

    def __init__(self, tmp: Path, **cfg: Any) -> None:
        self.port = free_port()
        pw = tmp / f"pw-{self.port}"
        pw.write_text(PASSWORD, encoding="utf-8")
        conf = {
            "name": "cam",
            "serial": "IPC123",
            "username": "admin",
            "password_file": str(pw),
            "bind": "127.0.0.1",
            "http_port": self.port,
            "rtsp_port": 0,
            "p2p_enabled": False,
            "reported": {
                "ip": "127.0.0.1",
                "mask": "255.0.0.0",
                "gateway": "127.0.0.254",
                "dns": ["127.0.0.1"],
            },
            **cfg,
        }
        self.conf = tmp / f"dev-{self.port}.json"
        self.conf.write_text(json.dumps(conf), encoding="utf-8")
        # The log goes to a file, not a pipe: an undrained pipe fills after ~64 KiB of log lines
        # (a few hundred requests) and the emulator then blocks in write().
        self.log_path = tmp / f"dev-{self.port}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "diag.lab.emulators.device", "--config", str(self.conf)],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log_path.read_text(errors="replace")) from None
                time.sleep(0.05)
        raise RuntimeError("device emulator did not start")

    def stop(self) -> str:
        """Stops the emulator (once; later calls only read) and returns its log."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def peer_read(port: int, host: str = "127.0.0.1", password: str = PASSWORD) -> dict[str, Any]:
    """One device read by onvif-zeep-async (the independent ONVIF client of the dev extras)."""
    from onvif import ONVIFCamera

    cam = ONVIFCamera(host, port, "admin", password, adjust_time=True)
    try:
        await cam.update_xaddrs()
        dev = await cam.create_devicemgmt_service()
        info = await dev.GetDeviceInformation()
        nics = await dev.GetNetworkInterfaces()
        gw = await dev.GetNetworkDefaultGateway()
        dns = await dev.GetDNS()
        ntp = await dev.GetNTP()
        sdt = await dev.GetSystemDateAndTime()
    finally:
        await cam.close()
    u = sdt.UTCDateTime
    when = dt.datetime(
        u.Date.Year, u.Date.Month, u.Date.Day, u.Time.Hour, u.Time.Minute, u.Time.Second,
        tzinfo=dt.UTC,
    )  # fmt: skip
    manual = nics[0].IPv4.Config.Manual[0]
    return {
        "vendor": info.Manufacturer,
        "model": info.Model,
        "serial": info.SerialNumber,
        "firmware": info.FirmwareVersion,
        "mac": nics[0].Info.HwAddress.lower(),
        "ip": manual.Address,
        "prefix": manual.PrefixLength,
        "dhcp": nics[0].IPv4.Config.DHCP,
        "gateway": gw.IPv4Address[0],
        "dns": [d.IPv4Address for d in dns.DNSManual],
        "ntp": sdt.DateTimeType == "NTP",
        "ntp_servers": [n.IPv4Address for n in ntp.NTPManual],
        "offset_s": (when - dt.datetime.now(dt.UTC)).total_seconds(),
    }
