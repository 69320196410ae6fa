"""The HTML report in real headless Chromium: it renders, stays inert, and fetches nothing.

Chromium runs with background services off and a fresh profile, and ALL its traffic goes to a
loopback proxy that records each request and answers 502, so nothing ever leaves the host even when
Chromium's own services try (they do: network time, component updates, account checks, whatever the
flags say). "No network request" is then measured on the page: no request other than those browser
services, which go to Google's service hosts and which the page does not reference. A control page
with one external image proves the recorder sees page requests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from diag.reports import html
from diag.reports.sample import sample_run

HOSTILE = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A cold Chromium start with a fresh profile takes 1-3 s here; 90 s only trips on a real hang.
CHROMIUM_TIMEOUT_S = 90
# Chromium's own services (not the page's requests); they reach only the loopback recorder.
BROWSER_SERVICE_HOSTS = ("google.com", "googleapis.com", "gstatic.com", "gvt1.com")
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

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium is not installed (scripts/setup.sh installs it)"
)


def chromium(
    tmp_path: Path, *args: str, proxy: ProxyRecorder | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs Chromium on a file; without a recorder given, a private one swallows its traffic."""
    if proxy is None:
        with ProxyRecorder() as own:
            return chromium(tmp_path, *args, proxy=own)
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [
        CHROMIUM,
        *BASE,
        f"--user-data-dir={profile}",
        f"--proxy-server=http://127.0.0.1:{proxy.port}",
        *QUIET,
        *args,
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False
    )


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


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    html.write(sample_run(12, hostile_name=HOSTILE), path, "en")
    return path


def test_screenshot_renders(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    res = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists(), res.stderr[-2000:]
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        # A blank or error page has a handful of colours; the report has text, icons, pills.
        assert colours is not None and len(colours) > 200


def test_hostile_device_name_is_text_not_an_element(report: Path, tmp_path: Path) -> None:
    res = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Dom()
    dom.feed(res.stdout)
    assert "main" in dom.tags and "article" in dom.tags  # the page really rendered
    assert "script" not in dom.tags
    assert any(HOSTILE in t for t in dom.text), "the device name must appear as text"


def test_report_makes_no_network_request(report: Path, tmp_path: Path) -> None:
    control = tmp_path / "control.html"
    control.write_text('<!doctype html><img src="http://198.51.100.77/probe.png"><p>x</p>')
    with ProxyRecorder() as proxy:
        chromium(tmp_path, "--dump-dom", report.as_uri(), proxy=proxy)
        seen_by_report = page_requests(proxy.requests)
        n = len(proxy.requests)
        chromium(tmp_path, "--dump-dom", control.as_uri(), proxy=proxy)
        seen_by_control = page_requests(proxy.requests[n:])
    assert any("198.51.100.77" in r for r in seen_by_control), seen_by_control
    assert seen_by_report == []


def page_requests(requests: list[str]) -> list[str]:
    """Requests other than Chromium's own service calls."""
    out = []
    for r in requests:
        parts = r.split()
        target = parts[1] if len(parts) > 1 else r
        host = target.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
        if not any(host == h or host.endswith("." + h) for h in BROWSER_SERVICE_HOSTS):
            out.append(r)
    return out


def test_page_request_filter() -> None:
    assert page_requests(["CONNECT update.googleapis.com:443 HTTP/1.1"]) == []
    assert page_requests(["GET http://clients2.google.com/time/1 HTTP/1.1"]) == []
    assert page_requests(["GET http://198.51.100.77/probe.png HTTP/1.1"]) != []
    assert page_requests(["GET http://evilgoogle.com/x HTTP/1.1"]) != []
