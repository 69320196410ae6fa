"""The picture of the path on every lab scenario (the lab matrix's saved runs): the element the
scenario breaks is where the picture puts the problem, marked from the measurements; a scenario
that injects nothing marks nothing. The SVG and the dashboard's text draw the same model."""

from __future__ import annotations

import pytest
from path_expect import check_path
from saved_runs import load, names

from diag.i18n import render
from diag.lab.scenarios import SCENARIOS
from diag.reports import html
from diag.reports.path import WAN, path_model, svg

# The scenarios the lab matrix diagnoses (the phone ones need a phone: tests/phone/).
MATRIX = [s.name for s in SCENARIOS if not s.overrides.get("phone")]


def test_the_saved_runs_cover_the_matrix() -> None:
    # A scenario added later is checked live by the lab matrix (tests/diagnosis/
    # test_lab_matrix.py runs check_path on every run); these are the ones saved for speed.
    saved = set(names())
    assert len(saved & set(MATRIX)) >= 30, "tests/reports/runs lost its saved runs"


@pytest.mark.parametrize("scenario", [n for n in MATRIX if n in names()])
def test_the_injected_element_is_marked(scenario: str) -> None:
    check_path(load(scenario), scenario)


@pytest.mark.parametrize(
    "pair", ["device-no-power+dns-failure", "radio-link-interference+low-bandwidth"]
)
def test_two_faults_are_both_marked(pair: str) -> None:
    check_path(load(pair), pair)


def test_the_numbers_are_on_the_links() -> None:
    model = path_model(load("wan-loss-latency"))
    wan = model.element(WAN)
    assert wan is not None
    words = " ".join(render(n, "pl") for n in wan.numbers)
    assert "straty" in words and "%" in words
    assert "ms" in words and "Mbit/s" in words
    assert "," in words  # Polish decimals


def test_nat_type_is_on_the_router_and_healthy_is_green() -> None:
    model = path_model(load("healthy"))
    router = model.node("router")
    assert router is not None and router.level == "ok"
    assert any(m.kind == "nat" and m.level == "ok" for m in router.marks)
    assert {n.level for n in model.nodes if n.kind != "stun"} == {"ok"}


def test_svg_is_in_the_report_and_names_the_culprit() -> None:
    run = load("router-port-blocking")
    page = html.render(run, "pl")
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page and 'role="img"' in page
    model = path_model(run)
    drawing = svg(model, lambda m: render(m, "pl"))
    assert "blokuje porty" in drawing
    assert "http" not in drawing.replace("http://www.w3.org/2000/svg", "")  # no external link


def test_svg_escapes_device_names() -> None:
    from diag.reports.sample import sample_run

    run = sample_run(3, hostile_name="<script>x</script>")
    drawing = svg(path_model(run), lambda m: render(m, "en"))
    assert "<script>" not in drawing and "&lt;script&gt;" in drawing
