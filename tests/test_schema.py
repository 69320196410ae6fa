"""Every run the code produces validates against reports/run.schema.json; the schema bites."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fakes import make_site

from diag.checks.base import Check, Context, registry_from
from diag.checks.dns import DnsCheck
from diag.checks.host import HostCheck
from diag.checks.p2p import P2PCheck
from diag.i18n import msg
from diag.model import Cause, CheckResult, Fact, Metric, Outcome, Run, Verdict
from diag.reports import json as rjson
from diag.runner import execute

HOSTILE = '<script>alert("x")</script> ąęł \x00\u202e'


class Emits(Check):
    """A check that returns whatever status and odd values it is given."""

    title = msg("emits")

    def __init__(self, cid: str, behaviour: str) -> None:
        self.id = cid  # type: ignore[misc]
        self.behaviour = behaviour
        self.timeout_s = 0.3  # type: ignore[misc]

    async def run(self, ctx: Context) -> Outcome:
        if self.behaviour == "raise":
            raise ValueError(HOSTILE)
        if self.behaviour == "hang":
            await asyncio.sleep(60)
        return Outcome(
            self.behaviour,  # type: ignore[arg-type]
            msg("banner {b} and {nested}", b=HOSTILE, nested=msg("inner {x}", x=1.5)),
            {
                "nan": Metric(float("nan"), "ms"),
                "inf": Metric(float("inf"), "ms"),
                "text": Metric(HOSTILE, ""),
                "none": Metric(None, "ms"),
            },
            (
                Fact("x.nested", {"a": [1, 2.5, None, {"b": float("-inf")}], "c": HOSTILE}),
                Fact("x.list", [HOSTILE], target=HOSTILE),
                Fact("x.none", None, "ms", "dev"),
            ),
        )


def produced_runs() -> list[tuple[str, Run]]:
    """Runs made the way the product makes them: runner + diagnosis, plus hand-built extremes."""
    site = make_site(
        devices=[
            {"name": "NVR <1>", "kind": "nvr", "added_via": "p2p-account"},
            {"name": "Cam", "kind": "ipc", "added_via": "p2p"},
        ]
    )
    checks = [Emits(f"c-{b}", b) for b in ("ok", "warn", "fail", "raise", "hang")]
    checks += [DnsCheck(), P2PCheck(), HostCheck()]  # nothing to probe: skip; host: local facts
    runs = [("runner, every status", asyncio.run(execute(site, registry_from(*checks))))]
    runs.append(("empty", asyncio.run(execute(make_site(), registry_from()))))
    cause = Cause(
        "dns-failure",
        0.8,
        (Fact("dns.site.rcode", "SERVFAIL", target="p2p.test"),),
        (msg("Change the router's DNS to {ip}", ip="198.51.100.53"),),
        msg("the operator's resolver answers {rc}", rc="SERVFAIL"),
    )
    full = Run(
        site=HOSTILE,
        started_at=dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC),
        duration_s=1.25,
        checks=(CheckResult("dns", "fail", msg("x"), {"m": Metric(3, "ms")}, (), 0.5, ("a",)),),
        devices=(
            Verdict("Cam", "ipc", "p2p", "offline", "grey", (cause,)),
            Verdict("NVR", "nvr", "shared", "degraded", "colour"),
        ),
        site_causes=(Cause("cgnat", 1.0),),
        lang="pl",
        site_path=None,
        tool_version="0.1.0",
    )
    runs.append(("hand-built with causes", full))
    return runs


RUNS = produced_runs()


@pytest.mark.parametrize("run", [r for _, r in RUNS], ids=[n for n, _ in RUNS])
@pytest.mark.parametrize("lang", ["en", "pl"])
def test_produced_runs_validate(run: Run, lang: str, tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    rjson.write(run, path, lang)
    text = path.read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert rjson.validate(data) == []
    assert data["lang"] == lang
    # And back: a saved run loads and re-renders the same.
    again = rjson.load(path)
    assert rjson.run_to_dict(again, lang) == data


def test_statuses_of_the_runner_run() -> None:
    run = RUNS[0][1]
    status = {c.check_id: c.status for c in run.checks}
    assert status["c-ok"] == "ok" and status["c-warn"] == "warn" and status["c-fail"] == "fail"
    assert status["c-raise"] == "error" and status["c-hang"] == "error"
    assert status["dns"] == "skip" and status["p2p"] == "skip"
    data = rjson.run_to_dict(run)
    ok = next(c for c in data["checks"] if c["id"] == "c-ok")
    assert ok["metrics"]["nan"] == {"value": None, "unit": "ms"}
    assert ok["facts"][0]["value"]["a"][3] == {"b": None}


def valid() -> dict[str, Any]:
    return rjson.run_to_dict(RUNS[2][1])


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("schema_version", lambda d: d.update(schema_version=2)),
        ("missing checks", lambda d: d.pop("checks")),
        ("missing devices", lambda d: d.pop("devices")),
        ("bad check status", lambda d: d["checks"][0].update(status="meh")),
        ("bad check id", lambda d: d["checks"][0].update(id="Has Space")),
        ("negative duration", lambda d: d.update(duration_s=-1)),
        ("bad device state", lambda d: d["devices"][0].update(state="sleeping")),
        ("bad icon", lambda d: d["devices"][0].update(icon="blue")),
        ("bad added_via", lambda d: d["devices"][0].update(added_via="bluetooth")),
        ("unknown cause id", lambda d: d["devices"][0]["causes"][0].update(id="gremlins")),
        ("confidence above 1", lambda d: d["devices"][0]["causes"][0].update(confidence=1.5)),
        ("metric without unit", lambda d: d["checks"][0]["metrics"]["m"].pop("unit")),
        ("metric as list", lambda d: d["checks"][0]["metrics"]["m"].update(value=[1])),
        ("bad lang", lambda d: d.update(lang="de")),
        ("site without worst_state", lambda d: d["site"].pop("worst_state")),
    ],
)
def test_schema_rejects(name: str, mutate: Any) -> None:
    d = copy.deepcopy(valid())
    mutate(d)
    assert rjson.validate(d), name


def test_load_refuses_invalid_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot read a run"):
        rjson.load(bad)
    bad.write_text(json.dumps({"schema_version": 1}), encoding="utf-8")
    with pytest.raises(ValueError, match="not a diag run"):
        rjson.load(bad)


def test_schema_file_is_a_valid_schema() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(rjson.schema())


def test_docs_describe_the_format() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "json.md").read_text(encoding="utf-8")
    for word in ("schema_version", "worst_state", "summary_msg", "duration_s", "exit code"):
        assert word in doc
    # Every top-level field of the schema is documented.
    for key in rjson.schema()["properties"]:
        assert f"`{key}`" in doc, key
