"""The lab matrix's runs, saved (tests/reports/runs/<scenario>.json), for tests that need a real
run of each scenario without building a lab: the report's validity and layout, the path picture.

Refresh them with ``DIAG_MATRIX_RUNS=tests/reports/runs pytest tests/diagnosis/test_lab_matrix.py``
(as root; a few minutes).
"""

from __future__ import annotations

import functools
from pathlib import Path

from diag.model import Run
from diag.reports import json as rjson

RUNS = Path(__file__).parent / "runs"


def names() -> list[str]:
    return sorted(p.stem for p in RUNS.glob("*.json"))


@functools.cache
def load(name: str) -> Run:
    return rjson.load(RUNS / f"{name}.json")
