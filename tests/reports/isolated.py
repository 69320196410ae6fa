"""Headless Chromium and the Nu HTML Checker, each in a throwaway network namespace.

``isolated(cmd)`` runs a command under ``unshare --net``: a fresh namespace with nothing but
loopback, gone when the command ends (nothing to clean up, nothing in ``ip netns list``).
Chromium runs there behind a loopback proxy that records each request and answers 502 (the
proxy runs in the same namespace: ``python isolated.py chromium OUT.json ARGS...`` starts both),
so neither the page nor Chromium's own services can reach anything; Java runs there with no
proxy at all. Only root can make namespaces: the tests that use this need root, as the lab does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
JAVA = shutil.which("java") or "/usr/bin/java"
# scripts/setup.sh puts the checker here (npm package vnu-jar, gitignored).
VNU_JAR = ROOT / "tools" / "node" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
# A cold Chromium start with a fresh profile takes 1-3 s here; 90 s only trips on a real hang.
CHROMIUM_TIMEOUT_S = 90
# The checker's JVM start plus a dozen reports takes 5-15 s on two busy cores.
VNU_TIMEOUT_S = 240
# Headless, no sandbox (root in CI), background services off (tests/phone/nsbrowser.py too).
BASE = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
)
QUIET = (
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,"
    "OptimizationGuideModelDownloading,MediaRouter,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater",
    "--no-pings",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-field-trial-config",
    "--safebrowsing-disable-auto-update",
    "--disable-breakpad",
    "--no-default-browser-check",
)


def can_isolate() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def isolated(
    cmd: list[str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``cmd`` in a new network namespace with only loopback up."""
    wrapper = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    return subprocess.run(
        [*wrapper, *cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )


def chromium(profile_dir: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Chromium with ``args`` in a throwaway namespace; (its result, the requests it tried)."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    out = profile_dir / "chromium-result.json"
    res = isolated(
        [sys.executable, __file__, "chromium", str(out), str(profile_dir), *args],
        timeout=CHROMIUM_TIMEOUT_S + 30,
    )
    if not out.exists():
        raise AssertionError(f"the isolated Chromium run failed: {res.stderr[-2000:]}")
    data = json.loads(out.read_text())
    done = subprocess.CompletedProcess(
        data["cmd"], data["returncode"], data["stdout"], data["stderr"]
    )
    return done, list(data["requests"])


def vnu(files: list[Path]) -> list[dict[str, Any]]:
    """The Nu HTML Checker's messages (errors and warnings) for ``files``, offline."""
    res = isolated(
        [JAVA, "-Xss8m", "-jar", str(VNU_JAR), "--format", "json", "--exit-zero-always",
         *map(str, files)],
        timeout=VNU_TIMEOUT_S,
    )  # fmt: skip
    try:
        report = json.loads(res.stderr or res.stdout)
    except json.JSONDecodeError as exc:
        got = f"{res.stdout[-1000:]} {res.stderr[-2000:]}"
        raise AssertionError(f"vnu gave no JSON: {got}") from exc
    return list(report.get("messages", []))


class ProxyRecorder:
    """A loopback HTTP proxy that records the first line of every request and answers 502."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ProxyRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                self.requests.append(data.split(b"\r\n", 1)[0].decode("latin-1") or "<empty>")
                try:
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass


def _run_chromium(out: Path, profile: Path, args: list[str]) -> None:
    """Inside the namespace: the recorder, then Chromium through it; the result as JSON."""
    with ProxyRecorder() as proxy:
        cmd = [
            CHROMIUM,
            *BASE,
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={profile / 'profile'}",
            f"--proxy-server=http://127.0.0.1:{proxy.port}",
            *QUIET,
            *args,
        ]
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
            )
            rc, stdout, stderr = res.returncode, res.stdout, res.stderr
        except subprocess.TimeoutExpired:
            rc, stdout, stderr = -9, "", "timed out"
    out.write_text(
        json.dumps(
            {
                "cmd": cmd,
                "returncode": rc,
                "stdout": stdout,
                "stderr": stderr[-20000:],
                "requests": proxy.requests,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "chromium":
        _run_chromium(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
