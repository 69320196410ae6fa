"""The report at a phone's 360 px and a laptop's 1280 px, and printed, in headless Chromium in a
throwaway network namespace: no horizontal scrolling at 360 px, one device card per printed page.

``DIAG_SCREENSHOTS=DIR`` keeps the screenshots (report-360.png, report-1280.png) there.
"""

from __future__ import annotations

import html as htmlmod
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from isolated import CHROMIUM, can_isolate, chromium
from saved_runs import load

from diag.reports import html

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
    pytest.mark.skipif(not can_isolate(), reason="Chromium runs only in a namespace (root)"),
]
# Tall enough for the whole first screens of the report; the screenshot shows what a phone
# scrolls through first (the summary and the path picture).
HEIGHT = 2400
# The outer page measures the report inside an iframe of the wanted width: headless Chromium's
# window is at least 500 px wide, an iframe can be any width.
PROBE = """<!doctype html><html><head><meta charset="utf-8">
<style>body {{ margin: 0; }} iframe {{ border: 0; display: block; }}</style></head><body>
<iframe id="r" width="{width}" height="{height}" srcdoc="{doc}"></iframe>
<script>
document.getElementById("r").addEventListener("load", () => {{
  const d = document.getElementById("r").contentDocument;
  const vw = d.documentElement.clientWidth;
  const wide = [];
  for (const el of d.querySelectorAll("body *")) {{
    const r = el.getBoundingClientRect();
    let p = el.parentElement, inside = false;
    while (p) {{ if (getComputedStyle(p).overflowX === "auto") {{ inside = true; break; }}
      p = p.parentElement; }}
    if (!inside && r.width > 0 && r.right > vw + 1)
      wide.push(el.tagName + "." + el.className + " " + Math.round(r.right));
  }}
  const out = document.createElement("pre");
  out.id = "probe";
  const sw = d.documentElement.scrollWidth;
  out.textContent = JSON.stringify({{vw, sw, wide: wide.slice(0, 20)}});
  document.body.appendChild(out);
}});
</script></body></html>"""


def probe(tmp_path: Path, report: str, width: int) -> dict[str, object]:
    page = tmp_path / f"probe-{width}.html"
    page.write_text(PROBE.format(width=width, height=HEIGHT, doc=htmlmod.escape(report)))
    res, _ = chromium(
        tmp_path / f"p{width}",
        f"--window-size={max(width, 500)},{HEIGHT}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    )
    m = re.search(r'<pre id="probe">(.*?)</pre>', res.stdout, re.S)
    assert m, res.stderr[-2000:]
    return dict(json.loads(htmlmod.unescape(m.group(1))))


def screenshot(tmp_path: Path, report: str, width: int) -> Path:
    page = tmp_path / f"shot-{width}.html"
    page.write_text(PROBE.format(width=width, height=HEIGHT, doc=htmlmod.escape(report)))
    raw = tmp_path / f"raw-{width}.png"
    chromium(
        tmp_path / f"s{width}",
        f"--window-size={max(width, 500)},{HEIGHT}",
        "--virtual-time-budget=5000",
        f"--screenshot={raw}",
        page.as_uri(),
    )
    from PIL import Image

    shot = tmp_path / f"report-{width}.png"
    with Image.open(raw) as im:
        im.crop((0, 0, width, HEIGHT)).save(shot)
    keep = os.environ.get("DIAG_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return shot


@pytest.mark.parametrize("lang", ["pl", "en"])
def test_no_horizontal_scrolling_on_a_phone(tmp_path: Path, lang: str) -> None:
    report = html.render(load("device-no-power+dns-failure"), lang)
    got = probe(tmp_path, report, 360)
    assert got["vw"] == 360
    assert got["sw"] <= 360 and not got["wide"], got


def test_the_probe_sees_an_overflow(tmp_path: Path) -> None:
    wide = '<!doctype html><html><body><div style="width: 900px">x</div></body></html>'
    got = probe(tmp_path, wide, 360)
    assert got["sw"] > 360 and got["wide"]


def test_screenshots_at_360_and_1280(tmp_path: Path) -> None:
    from PIL import Image

    report = html.render(load("router-port-blocking"), "pl")
    for width in (360, 1280):
        shot = screenshot(tmp_path, report, width)
        with Image.open(shot) as im:
            colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
            assert im.size == (width, HEIGHT)
            assert colours is not None and len(colours) > 100  # text, icons, the path picture


def test_print_puts_each_device_card_on_its_own_page(tmp_path: Path) -> None:
    run = load("device-no-power+dns-failure")
    report = tmp_path / "report.html"
    html.write(run, report, "en")
    cards = len(html.context(run, "en")["devices"])
    assert cards >= 2
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path / "pdf", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", report.as_uri())
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))
    assert pages >= cards + 1, (pages, cards)
