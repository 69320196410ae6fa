"""Whole runs (every check at once) on the lab: checks must not disturb each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from labkit import Lab  # type: ignore[import-not-found]

pytestmark = pytest.mark.lab


def facts(run: dict[str, Any], check: str) -> dict[tuple[str, str], Any]:
    c = next(c for c in run["checks"] if c["id"] == check)
    return {(f["key"], f["target"]): f["value"] for f in c["facts"]}


def test_restricted_cone_survives_a_full_run(lab_factory: Callable[..., Lab]) -> None:
    """The ports check probes the STUN servers' second address too; it must wait for stun."""
    run = lab_factory("nat-restricted").diag_run()
    f = facts(run, "stun")
    assert (f[("nat.mapping", "")], f[("nat.filtering", "")]) == ("EIM", "ADF")
    assert f[("nat.rfc3489", "")] == "Restricted Cone"


def test_healthy_site_with_eight_devices(lab_factory: Callable[..., Lab]) -> None:
    run = lab_factory("healthy", devices=8).diag_run()
    assert len(run["devices"]) == 8
    assert {d["state"] for d in run["devices"]} == {"online"}, [
        (d["name"], d["state"], d["causes"][:1]) for d in run["devices"]
    ] + [run["site"]["causes"][:2]]
    for d in run["devices"]:
        assert all(c["confidence"] < 0.5 for c in d["causes"]), d
    assert all(c["confidence"] < 0.5 for c in run["site"]["causes"])
    # The phone check measures only what `diag phone` received: with no phone here it skips.
    site_checks = [c for c in run["checks"] if c["id"] != "phone"]
    assert {c["status"] for c in site_checks} <= {"ok", "warn"}, [
        (c["id"], c["status"], c["summary"]) for c in site_checks if c["status"] not in ("ok",)
    ]
    assert run["_exit_code"] == 0
