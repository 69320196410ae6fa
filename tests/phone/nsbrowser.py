"""Headless Chromium as the customer's phone, run INSIDE a lab namespace (``ip netns exec``).

``python nsbrowser.py URL --ca CA.crt --seconds S`` opens URL and keeps the browser running for
up to S seconds (the page measures for about 5 s and posts its result), or until SIGTERM. The
namespace has lab routes only; on top of that every request Chromium would send anywhere but
the lab's own ranges goes to a proxy on this namespace's loopback that records its first line
and refuses it (Chromium's own services: update, time, safe browsing...). The lab CA is trusted
through a throwaway NSS database, as a real phone trusts the platform's public CA. On exit it
prints one JSON line: the proxy's records and Chromium's exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The Chromium switches and the refusing proxy of the report's Chromium tests, shared.
sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
from test_chromium import BASE, CHROMIUM, QUIET, ProxyRecorder

# Only the lab's address plan and zone go direct; everything else hits the refusing proxy.
LAB_DIRECT = "198.18.0.0/15;198.51.100.0/24;203.0.113.0/24;100.64.0.0/10;*.lab-cloud.test"
FLAGS = (*BASE, *QUIET)


def trust(home: Path, ca: str) -> None:
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "lab-ca", "-i", ca], check=True
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--ca")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--lang", default="en-US")
    # Stands in for the installer tapping "proceed" on the throwaway certificate of --https.
    ap.add_argument("--accept-self-signed", action="store_true")
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    proxy = ProxyRecorder().__enter__()
    with tempfile.TemporaryDirectory(prefix="diag-phone-browser-") as tmp:
        home = Path(tmp)
        if args.ca:
            trust(home, args.ca)
        cmd = [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={home / 'profile'}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            f"--proxy-bypass-list={LAB_DIRECT}",
            f"--lang={args.lang}",
            f"--accept-lang={args.lang}",
            *(["--ignore-certificate-errors"] if args.accept_self_signed else []),
            args.url,
        ]
        env = {**os.environ, "HOME": str(home), "LANGUAGE": args.lang.replace("-", "_")}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + args.seconds
        while not stop.is_set() and time.monotonic() < deadline and proc.poll() is None:
            stop.wait(0.1)
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    proxy.__exit__()
    print(json.dumps({"proxied": proxy.requests, "rc": proc.returncode,
                      "stderr": err.decode(errors="replace")[-2000:]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
