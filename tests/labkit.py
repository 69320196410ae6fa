"""Pytest fixtures for tests that need a lab: one lab per scenario per module, always torn down.

Usage (tests carry ``@pytest.mark.lab``)::

    pytestmark = pytest.mark.lab

    def test_dns_failure(lab_factory):
        lab = lab_factory("dns-failure")
        run = lab.diag_run(only=["dns"])
        ...
        assert lab.exec("dig", "+short", "p2p.lab-cloud.test").stdout.strip()

``lab_factory(scenario, devices=None)`` builds the lab the first time a module asks for that
(scenario, devices) pair and hands the same ``Lab`` back afterwards; every lab of the module is
removed when the module ends (also when a test failed). ``Lab`` attributes: ``name``, ``scenario``,
``site_path``, ``status`` (``diag lab status --json`` as a dict), ``state_dir``; methods
``exec(*cmd)`` (laptop namespace), ``ns_exec(role, *cmd)``, ``diag_run(only, extra)``, ``down()``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Lab", "lab_factory", "start_lab"]

# A `diag run` on a lab finishes in well under a minute; this bounds a hung one (s).
DIAG_RUN_TIMEOUT_S = 180
_run_ids = itertools.count(1)


@dataclass
class Lab:
    name: str
    scenario: str
    site_path: Path
    state_dir: Path
    status: dict[str, Any] = field(default_factory=dict)
    devices: int | None = None

    def refresh(self) -> dict[str, Any]:
        from diag.lab import runtime

        self.status = runtime.status(self.name)
        return self.status

    def ns(self, role: str) -> str:
        return str(self.status["roles"][role])

    def ns_exec(
        self, role: str, *cmd: str, timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``cmd`` in the namespace of ``role`` (output captured as text, never raises)."""
        from diag.lab import runtime

        return subprocess.run(
            ["ip", "netns", "exec", self.ns(role), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=runtime.exec_env(),
            check=False,
        )

    def exec(
        self, *cmd: str, timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``cmd`` in the laptop namespace, like ``diag lab exec -- cmd``."""
        return self.ns_exec("laptop", *cmd, timeout=timeout, input=input)

    def python(self, code: str, role: str = "laptop", timeout: float = 30) -> str:
        """Runs a Python snippet in a namespace and returns its stdout (stripped)."""
        import sys

        res = self.ns_exec(role, sys.executable, "-c", code, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(f"python in {role} failed: {res.stderr[-2000:]}")
        return res.stdout.strip()

    def diag_run(
        self,
        only: Sequence[str] | None = None,
        extra: Sequence[str] = (),
        timeout: float = DIAG_RUN_TIMEOUT_S,
    ) -> dict[str, Any]:
        """``diag run --site <lab site> --json FILE`` in the laptop namespace; the parsed JSON."""
        out = self.state_dir / "runs" / f"run-{next(_run_ids)}.json"
        out.parent.mkdir(exist_ok=True)
        cmd = ["diag", "run", "--site", str(self.site_path), "--json", str(out)]
        if only:
            cmd += ["--only", ",".join(only)]
        cmd += list(extra)
        res = self.exec(*cmd, timeout=timeout)
        if not out.exists():
            raise AssertionError(
                f"diag run wrote no JSON (exit {res.returncode}):\n{res.stdout[-3000:]}\n"
                f"{res.stderr[-3000:]}"
            )
        data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        data["_exit_code"] = res.returncode
        return data

    def down(self) -> None:
        from diag.lab import runtime

        runtime.down(self.name)


def start_lab(scenario: str = "healthy", devices: int | None = None) -> Lab:
    """Builds a lab now (the caller takes it down); most tests want ``lab_factory`` instead."""
    from diag.lab import runtime

    state = runtime.up(scenario, devices)
    lab = Lab(
        name=state["name"],
        scenario=scenario,
        site_path=Path(state["site_config"]),
        state_dir=Path(state["state_dir"]),
        devices=devices,
    )
    lab.refresh()
    return lab


@pytest.fixture(scope="module")
def lab_factory() -> Iterator[Callable[..., Lab]]:
    """``up(scenario, devices=None) -> Lab``: one lab per (scenario, devices) in this module."""
    labs: dict[tuple[str, int | None], Lab] = {}

    def up(scenario: str, devices: int | None = None) -> Lab:
        key = (scenario, devices)
        if key not in labs:
            labs[key] = start_lab(scenario, devices)
        return labs[key]

    try:
        yield up
    finally:
        for lab in labs.values():
            lab.down()
