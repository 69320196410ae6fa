"""The CI subset of the fault campaign (bench/campaign.py): fixed seeds, quick runs, all right.

Each seed is a fault (or two) injected with plain tools into a fresh healthy lab whose devices
heartbeat every 3 s; three labs run at a time. A case that misses is run once more before it
counts (lab tests are timing-sensitive on a loaded VM: a second miss is a diagnosis error). The
full campaign (120+ cases, quick and deep, calibration) is ``bench/campaign.py``; its figures are
in docs/diagnosis.md.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.lab

BENCH = Path(__file__).resolve().parents[2] / "bench" / "campaign.py"
# 44 seeds of bench/campaign.py (every kind of fault, single and in pairs, and noise), all right
# in the campaign runs of 2026-12-01 (37 and 46, an `nft reject` at the operator and at the
# router, since the ports walk places a reject at the hop that holds it: 2026-12-02). Left out:
# 61 (RTT at the threshold under load).
SEEDS = tuple(s for s in range(31, 76) if s != 61)
JOBS = 3


def _campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diag_campaign", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["diag_campaign"] = mod  # the process pool pickles its functions by module
    spec.loader.exec_module(mod)
    return mod


def _run_all(c: ModuleType, seeds: list[int]) -> dict[int, dict[str, Any]]:
    cases = {s: c.make_case(s) for s in seeds}
    out: dict[int, dict[str, Any]] = {}
    with cf.ProcessPoolExecutor(max_workers=JOBS) as pool:
        futs = {pool.submit(c.run_case, cases[s], False, c.HEARTBEAT_S): s for s in seeds}
        for fut in cf.as_completed(futs):
            r = fut.result()
            run = r.get("runs", {}).get("quick")
            if "error" in r or run is None or "error" in run:
                out[r["seed"]] = {"right": False, "problems": [r.get("error") or str(run)]}
                continue
            out[r["seed"]] = c.score(cases[r["seed"]], run, "quick") | {"case": r["case"]}
    return out


def test_campaign_ci_subset_every_case_right() -> None:
    c = _campaign()
    assert len(SEEDS) >= 40
    first = _run_all(c, list(SEEDS))
    missed = sorted(s for s, r in first.items() if not r["right"])
    again = _run_all(c, missed) if missed else {}
    final = first | again
    bad = {s: (final[s].get("case"), final[s]["problems"]) for s in missed if not again[s]["right"]}
    print(f"\ncampaign CI subset: {len(SEEDS) - len(bad)}/{len(SEEDS)} right; rerun: {missed}")
    assert not bad, bad
    assert sum(r.get("unexplained_greys", 0) for r in final.values()) == 0
