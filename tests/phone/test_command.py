"""`diag phone` on loopback: prints a QR code that scans to the URL, takes one result, runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from diag.phone import qr
from phone.samples import raw

EXAMPLE = Path(__file__).parents[2] / "examples" / "loopback-site.toml"
URL = re.compile(r"^(http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]+/)$", re.M)


def scan(block: str) -> str:
    """Decodes a terminal QR code as a phone camera would (zxing-cpp on a rendered image)."""
    import zxingcpp
    from PIL import Image

    rows = qr.parse_terminal(block)
    scale = 6
    img = Image.new("L", (len(rows[0]) * scale, len(rows) * scale))
    for y, row in enumerate(rows):
        for x, light in enumerate(row):
            if light:
                img.paste(255, (x * scale, y * scale, (x + 1) * scale, (y + 1) * scale))
    found = zxingcpp.read_barcodes(img)
    assert found, "no QR code found"
    return str(found[0].text)


def test_terminal_qr_scans_back_to_the_text() -> None:
    url = "http://198.18.0.100:41234/Ab-_0123456789abcdefghij/"
    assert scan(qr.terminal(url)) == url


def start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "diag.cli", "phone", "--site", str(EXAMPLE), "--bind",
         "127.0.0.1", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DIAG_LOOPBACK_NVR_PASSWORD": "x", "DIAG_LOOPBACK_IPC_PASSWORD": "x"},
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if URL.match(lines[-1]):
            return proc, lines
    proc.kill()
    raise AssertionError("no URL printed:\n" + "\n".join(lines) + proc.stderr.read())


def test_diag_phone_prints_qr_and_takes_one_result() -> None:
    proc, lines = start("--no-run", "--wait", "20")
    try:
        url = lines[-1]
        block = "\n".join(ln for ln in lines if set(ln) <= set("█▀▄ ") and ln.strip())
        assert scan(block) == url  # the QR code is the URL printed beside it
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert b"Phone check" in resp.read()
        # The example profile has no STUN servers and one HTTPS endpoint.
        body = raw(
            ice=None,
            endpoints=[{"url": "https://127.0.0.1:38443/", "outcome": "timeout", "ms": 5000}],
        )
        req = urllib.request.Request(url + "result", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read()) == {"ok": True}
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "The phone opened the page (127.0.0.1)" in out
    assert "phone.platform_reachable = False" in out
    assert "phone.on_site_lan" in out


def test_diag_phone_gives_up_after_wait() -> None:
    proc, _ = start("--no-run", "--wait", "0.5")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 6
    assert "No result from a phone within" in out


def test_diag_phone_refuses_a_bad_bind() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli", "phone", "--site", str(EXAMPLE), "--bind", "nope"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode == 2 and "--bind" in res.stdout + res.stderr


@pytest.mark.parametrize("lang", ["pl"])
def test_diag_phone_speaks_polish(lang: str) -> None:
    proc, lines = start("--no-run", "--wait", "0.5", "--lang", lang)
    out, _ = proc.communicate(timeout=20)
    assert "Otwórz tę stronę" in "\n".join(lines) + out


def test_placeholder_names_are_left_out_of_the_page() -> None:
    import dataclasses

    from diag.config import load_site
    from diag.model import StunServer
    from diag.phone.command import page_config_of

    site = load_site(EXAMPLE)
    prof = dataclasses.replace(
        site.profile,
        stun_servers=(StunServer("stun.example.com"), StunServer("198.51.100.20")),
        status_api_url="https://api.example.net/v1",
    )
    cfg = page_config_of(dataclasses.replace(site, profile=prof))
    # A placeholder would read as "blocked" on the phone; left out, it is "not measured".
    assert cfg.stun == ("198.51.100.20:3478",)
    assert "https://api.example.net/v1" not in cfg.endpoints
    assert cfg.endpoints == ("https://127.0.0.1:38443/",)
