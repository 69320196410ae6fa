"""The HTML report in real headless Chromium: it renders, stays inert, and fetches nothing.

Chromium runs in a throwaway network namespace with nothing but loopback (tests/reports/
isolated.py), with background services off and a fresh profile, and ALL its traffic goes to a
loopback proxy that records each request and answers 502, so nothing ever leaves the host even when
Chromium's own services try (they do: network time, component updates, account checks, whatever the
flags say). "No network request" is then measured on the page: no request other than those browser
services, which go to Google's service hosts and which the page does not reference. A control page
with one external image proves the recorder sees page requests.
"""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from isolated import BASE, CHROMIUM, QUIET, ProxyRecorder, can_isolate
from isolated import chromium as isolated_chromium

from diag.reports import html
from diag.reports.sample import sample_run

HOSTILE = "<script>alert(1)</script>"
# Chromium's own services (not the page's requests); they reach only the loopback recorder.
BROWSER_SERVICE_HOSTS = ("google.com", "googleapis.com", "gstatic.com", "gvt1.com")
# The phone's browser (tests/phone/nsbrowser.py) takes the switches and the proxy from here.
__all__ = ["BASE", "CHROMIUM", "QUIET", "ProxyRecorder", "page_requests"]

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="chromium is not installed (scripts/setup.sh does)"
    ),
    pytest.mark.skipif(not can_isolate(), reason="Chromium runs only in a namespace (root)"),
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium on a file, in a throwaway namespace behind a refusing loopback proxy."""
    return isolated_chromium(tmp_path, *args)[0]


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
    _, requests = isolated_chromium(tmp_path / "a", "--dump-dom", report.as_uri())
    seen_by_report = page_requests(requests)
    _, requests = isolated_chromium(tmp_path / "b", "--dump-dom", control.as_uri())
    seen_by_control = page_requests(requests)
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
