"""What the fault campaign's cases declare (bench/campaign.py), without a lab."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "campaign.py"


def _campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diag_campaign_decl", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["diag_campaign_decl"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_an_operator_block_hidden_behind_the_routers_drop_is_allowed_not_required() -> None:
    c = _campaign()
    router, isp = c.make_case(110).faults  # router drops udp/32100+tcp/443 out; isp rejects both
    assert router.site == (frozenset({"router-port-blocking"}),)
    assert isp.site == () and isp.devices == {} and "isp-p2p-blocking" in isp.allow
    # the router blocks only udp/32100: the operator's tcp/443 block is still seen, still required
    router, isp = c.make_case(46).faults
    assert isp.site == (frozenset({"isp-p2p-blocking"}),) and "isp-p2p-blocking" not in isp.allow
