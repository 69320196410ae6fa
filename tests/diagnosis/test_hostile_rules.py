"""A plugin rule that exits, raises a BaseException or returns a malformed Hit loses only its own
cause: the diagnosis, the JSON and the reports go on, and diag does not exit."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from diag.diagnosis import diagnose
from diag.diagnosis.engine import ENTRY_POINT_GROUP, load_rules
from diag.diagnosis.rules import RULES, Hit, Rule
from diag.i18n import msg
from diag.model import CheckResult, Device, Fact, Profile, Run, Site
from diag.reports import html
from diag.reports import json as rjson

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
SITE = Site("s", (Device("Cam", "ipc", "p2p-account", address="198.18.0.30"),), Profile("p"))
RESULTS = [CheckResult("hb", "ok", msg("ok"), facts=(Fact("device.reachable", False, "", "Cam"),))]


class Odd(BaseException):
    pass


def _raises(exc: BaseException) -> Any:
    def when(env: Any, device: Any) -> Hit | None:
        raise exc

    return when


def _returns(value: Any) -> Any:
    return lambda env, device: value


BAD_WHENS = {
    "SystemExit": _raises(SystemExit(1)),
    "custom BaseException": _raises(Odd()),
    "returns a dict": _returns({"confidence": 1}),
    "NaN confidence": _returns(Hit(confidence=math.nan)),
    "string confidence": _returns(Hit(confidence="high")),  # type: ignore[arg-type]
    "detail not a Message": _returns(Hit(0.9, detail="plain")),  # type: ignore[arg-type]
    "evidence not facts": _returns(Hit(0.9, evidence=("x",))),  # type: ignore[arg-type]
    "unknown effect": _returns(Hit(0.9, effect="explode")),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("name", list(BAD_WHENS))
def test_a_broken_rule_loses_only_its_cause(name: str) -> None:
    bad = Rule("ip-conflict", BAD_WHENS[name], name="bad")
    verdicts, site_causes = diagnose(SITE, RESULTS, now=NOW, rules=[*RULES, bad])
    (v,) = verdicts
    assert v.state == "offline"
    assert v.causes and v.causes[0].id != "ip-conflict"
    assert all(c.id != "ip-conflict" for c in v.causes)
    run = Run("s", NOW, 1.0, tuple(RESULTS), verdicts, site_causes)
    assert rjson.validate(json.loads(rjson.dumps(run))) == []
    html.render(run)


PLUGIN = """
import sys
sys.exit("vendor rules refuse to load")
"""


@pytest.fixture
def exiting_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "exiting_rules.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "exiting_rules"
    sys.modules.pop("exiting_rules", None)


def test_a_plugin_that_exits_on_import_is_a_load_error(exiting_plugin: str) -> None:
    rs = load_rules([EntryPoint("exits", f"{exiting_plugin}:RULE", ENTRY_POINT_GROUP)])
    assert len(rs.rules) == len(RULES)
    (err,) = rs.errors
    assert err.name == "exits" and "SystemExit" in err.error
