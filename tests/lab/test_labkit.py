"""The lab fixtures other tests build on: reuse per scenario, exec in the laptop, diag_run."""

from __future__ import annotations

import pytest
from labkit import Lab

pytestmark = pytest.mark.lab


def test_lab_factory_reuses_a_lab_per_scenario(lab_factory) -> None:
    lab: Lab = lab_factory("healthy", devices=1)
    assert lab_factory("healthy", devices=1) is lab
    assert lab.scenario == "healthy" and lab.site_path.exists()
    assert set(lab.status["roles"]) >= {"laptop", "router", "nvr"}
    # exec runs in the laptop namespace.
    res = lab.exec("ip", "-4", "-o", "addr", "show", "dev", "eth0")
    assert "198.18.0.100/24" in res.stdout
    assert lab.ns_exec("router", "ip", "-4", "-o", "addr", "show", "dev", "lan0").returncode == 0
    assert lab.python("import socket; print(socket.gethostbyname('p2p.lab-cloud.test'))") == (
        "198.51.100.10"
    )


def test_diag_run_returns_the_runs_json(lab_factory) -> None:
    lab: Lab = lab_factory("healthy", devices=1)  # the same lab as above
    run = lab.diag_run(only=["host"])
    assert run["schema_version"] >= 1
    assert [c["id"] for c in run["checks"]] == ["host"]
    assert run["checks"][0]["status"] == "ok"
    assert run["_exit_code"] == 5  # only host: no device measured, unknown (never 0)
