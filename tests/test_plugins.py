"""Checks are plugins: a third-party package's entry point is listed and run like a built-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from diag.checks.base import ENTRY_POINT_GROUP, load_checks
from diag.reports.json import validate

ROOT = Path(__file__).parent.parent
PLUGIN = '''
"""A third-party diag check, installed by the test as a distribution on PYTHONPATH."""
from diag.checks.base import Check
from diag.i18n import msg
from diag.model import Fact, Metric, Outcome


class DemoCheck(Check):
    id = "demo-plugin"
    title = msg("Demo plugin check")
    depends_on = ("host",)

    async def run(self, ctx):
        host = ctx.result("host")
        return Outcome(
            "warn",
            msg("demo ran after host ({status})", status=host.status if host else "none"),
            {"answer": Metric(42, "units")},
            (Fact("demo.ran", True),),
        )


class NotACheck:
    pass
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding an "installed" distribution: package + dist-info with entry points."""
    d = tmp_path_factory.mktemp("plugin-env")
    (d / "diag_demo_plugin").mkdir()
    (d / "diag_demo_plugin" / "__init__.py").write_text(PLUGIN, encoding="utf-8")
    info = d / "diag_demo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: diag-demo-plugin\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "demo-plugin = diag_demo_plugin:DemoCheck\n"
        "not-a-check = diag_demo_plugin:NotACheck\n"
        "missing-module = diag_no_such_module:X\n",
        encoding="utf-8",
    )
    return d


def diag(plugin_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(plugin_path), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "diag.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_plugin_is_listed_next_to_builtins(plugin_path: Path) -> None:
    out = diag(plugin_path, "checks", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    by_id = {c["id"]: c for c in data["checks"]}
    assert {"host", "dns", "p2p", "demo-plugin"} <= set(by_id)
    assert by_id["demo-plugin"]["title"] == "Demo plugin check"
    assert by_id["demo-plugin"]["depends_on"] == ["host"]
    # Broken plugins are reported, never fatal.
    errors = {e["name"]: e["error"] for e in data["errors"]}
    assert "not a diag.checks.base.Check subclass" in errors["not-a-check"]
    assert "ModuleNotFoundError" in errors["missing-module"]


def test_plugin_is_not_there_without_its_distribution(plugin_path: Path) -> None:
    out = diag(plugin_path.parent / "nonexistent", "checks", "--json")
    ids = {c["id"] for c in json.loads(out.stdout)["checks"]}
    assert "demo-plugin" not in ids and "host" in ids


def test_plugin_runs_with_only_and_gets_its_dependency(plugin_path: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "run.json"
    out = diag(
        plugin_path,
        "run",
        "--site",
        str(ROOT / "examples" / "loopback-site.toml"),
        "--only",
        "demo-plugin",
        "--json",
        str(out_json),
    )
    # No heartbeat in --only: the devices are unknown (exit 5), never "online" by default.
    assert out.returncode in (0, 1, 3, 5), out.stderr
    assert "demo-plugin" in out.stdout
    data = json.loads(out_json.read_text())
    assert validate(data) == []
    checks = {c["id"]: c for c in data["checks"]}
    assert set(checks) == {"host", "demo-plugin"}
    assert checks["demo-plugin"]["status"] == "warn"
    assert checks["demo-plugin"]["summary"].startswith("demo ran after host (")
    assert "none" not in checks["demo-plugin"]["summary"]
    assert checks["demo-plugin"]["metrics"]["answer"] == {"value": 42, "unit": "units"}
    assert "failed to load" in out.stderr  # the broken plugins are named, the run went on


def test_load_checks_rejects_bad_entry_points() -> None:
    eps = [
        EntryPoint("host", "diag.checks.host:HostCheck", ENTRY_POINT_GROUP),
        EntryPoint("wrong-name", "diag.checks.dns:DnsCheck", ENTRY_POINT_GROUP),
        EntryPoint("host", "diag.checks.host:HostCheck", ENTRY_POINT_GROUP),
        EntryPoint("model", "diag.model:Site", ENTRY_POINT_GROUP),
    ]
    reg = load_checks(eps)
    assert reg.ids == ["host"]
    errors = {(e.name, e.error.split(":")[0]) for e in reg.errors}
    assert errors == {("wrong-name", "ValueError"), ("host", "ValueError"), ("model", "TypeError")}


def test_builtins_are_registered_through_entry_points() -> None:
    reg = load_checks()
    for cid, cls in (("host", "HostCheck"), ("dns", "DnsCheck"), ("p2p", "P2PCheck")):
        assert cid in reg
        assert type(reg[cid]).__name__ == cls


def test_plugin_that_exits_on_import_or_has_a_bad_id_is_only_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "bad_id_plugin.py").write_text(
        "from diag.checks.base import Check\n"
        "from diag.i18n import msg\n"
        "class Bad(Check):\n"
        "    id = 'My Check'\n"
        "    title = msg('bad')\n"
        "    async def run(self, ctx):\n"
        "        raise AssertionError\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [
        EntryPoint("host", "diag.checks.host:HostCheck", ENTRY_POINT_GROUP),
        EntryPoint("exits", "exits_on_import:X", ENTRY_POINT_GROUP),
        EntryPoint("My Check", "bad_id_plugin:Bad", ENTRY_POINT_GROUP),
    ]
    reg = load_checks(eps)
    assert reg.ids == ["host"]
    errors = {e.name: e.error for e in reg.errors}
    assert errors["exits"].startswith("SystemExit")
    assert "must match" in errors["My Check"]
