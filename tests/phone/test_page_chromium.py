"""The page in real headless Chromium on loopback: its language, what it measures, its requests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
from isolated import CHROMIUM, can_isolate, isolated
from test_chromium import page_requests

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and can_isolate()),
    reason="needs chromium and root for a throwaway network namespace",
)
ROOT = Path(__file__).parents[2]


def open_page(tmp_path: Path, lang: str) -> dict[str, Any]:
    out = tmp_path / "page.json"
    res = isolated(
        [sys.executable, str(Path(__file__).with_name("pagerun.py")), str(out), lang],
        timeout=150,
        cwd=ROOT,
    )
    assert out.exists(), res.stderr[-3000:]
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(("lang", "done"), [("en-US", "Done."), ("pl", "Gotowe.")])
def test_page_speaks_the_phones_language_and_reports_what_it_measured(
    tmp_path: Path, lang: str, done: str
) -> None:
    data = open_page(tmp_path, lang)
    r = data["result"]
    assert r is not None, data["dom"][-2000:]
    assert r["lang"] == lang[:2]
    assert done in data["dom"]  # the page told the customer it is finished
    # Loopback is a secure context: the Battery Status API answers there.
    assert r["secure_context"] is True and r["battery"] is not None
    assert r["connection"]["effective_type"] in ("slow-2g", "2g", "3g", "4g")
    # No STUN server given: ICE is "not measured", never "blocked".
    assert r["ice"] is None and "ice" in r["unsupported"]
    assert [e["outcome"] for e in r["endpoints"]] == ["error"]
    # The page itself asked nothing of anyone but its own server and the endpoint it was given.
    assert page_requests(data["requests"]) == []
