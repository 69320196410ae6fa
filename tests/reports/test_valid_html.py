"""The Nu HTML Checker (vnu.jar, offline, Java in a throwaway network namespace) finds no error
in the reports of eight lab scenarios and the hostile sample, in English and in Polish."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from isolated import JAVA, VNU_JAR, can_isolate, vnu
from saved_runs import load

from diag.i18n import LANGS
from diag.reports import html
from diag.reports.sample import sample_run

# Scenarios whose reports differ most: healthy, a dead device, blocked ports, a lying resolver,
# a captive portal, symmetric NAT, a slow uplink, two faults at once.
SCENARIOS = (
    "healthy",
    "device-no-power",
    "router-port-blocking",
    "dns-failure",
    "data-plan-exhausted",
    "nat-symmetric",
    "low-bandwidth",
    "device-no-power+dns-failure",
)

pytestmark = [
    pytest.mark.skipif(not can_isolate(), reason="a network namespace needs root"),
    pytest.mark.skipif(
        os.environ.get("CI") != "true" and not (VNU_JAR.exists() and Path(JAVA).exists()),
        reason="vnu.jar or java missing (scripts/setup.sh installs them)",
    ),
]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, object]]]:
    folder = tmp_path_factory.mktemp("vnu")
    files = []
    for name in SCENARIOS:
        for lang in LANGS:
            path = folder / f"{name}.{lang}.html"
            html.write(load(name), path, lang)
            files.append(path)
    sample = folder / "sample.pl.html"
    html.write(sample_run(12, hostile_name="<script>alert(1)</script>"), sample, "pl")
    control = folder / "control.html"
    control.write_text(
        '<!doctype html><html lang="en"><head><title>x</title></head><body><h1>x</h1><h2>a</h2>'
        '<h4>b</h4><span aria-label="camera"></span></body></html>'
    )
    out: dict[str, list[dict[str, object]]] = {p.name: [] for p in [*files, sample, control]}
    for m in vnu([*files, sample, control]):
        out.setdefault(Path(str(m.get("url", ""))).name, []).append(m)
    return out


def test_the_checker_runs_and_finds_the_old_errors(checked: dict[str, list[dict]]) -> None:
    texts = " ".join(str(m.get("message")) for m in checked["control.html"] if m["type"] == "error")
    assert "aria-label" in texts and "heading" in texts.lower()


def test_reports_have_no_errors(checked: dict[str, list[dict]]) -> None:
    errors = Counter(
        f"{name}: {m.get('message')}"
        for name, msgs in checked.items()
        if name != "control.html"
        for m in msgs
        if m["type"] == "error"
    )
    assert len(checked) == 2 * len(SCENARIOS) + 2
    assert not errors, "\n".join(f"{n}x {e}" for e, n in errors.most_common(30))
