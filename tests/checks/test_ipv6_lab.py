"""The ipv6 check on the lab: the lab is an IPv4 site (IPv6 is off in every namespace), so the
laptop has no global IPv6 address, and the report says so."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.lab


def test_lab_is_ipv4_only(lab_factory: Any) -> None:
    run = lab_factory("healthy").diag_run(only=["ipv6"])
    c = next(c for c in run["checks"] if c["id"] == "ipv6")
    f = {x["key"]: x["value"] for x in c["facts"]}
    assert c["status"] == "ok", c["summary"]
    assert f["ipv6.global_address"] is False
    assert f["ipv6.platform_names_aaaa"] == 0
    assert c["summary"] == "no global IPv6 address: IPv4 only"
