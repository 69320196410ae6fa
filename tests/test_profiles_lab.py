"""A site file naming a server that does not exist (scenario profile-wrong): both the site's and
the independent resolver say NXDOMAIN, so the finding is profile-wrong, not dns-failure, and the
devices (which use the real names) are not marked down by it."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab


def test_profile_wrong_is_not_a_dns_failure(lab_factory: Any) -> None:
    run = lab_factory("profile-wrong").diag_run(only=["dns", "p2p", "wan", "heartbeat"])
    causes = run["site"]["causes"]
    assert causes and causes[0]["id"] == "profile-wrong", [
        (c["id"], c["confidence"]) for c in causes
    ]
    assert "p2p-v1.lab-cloud.test" in causes[0]["detail"]
    assert all(c["confidence"] < 0.5 for c in causes if c["id"] == "dns-failure")
    assert {d["state"] for d in run["devices"]} == {"online"}
