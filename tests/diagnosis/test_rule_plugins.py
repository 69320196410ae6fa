"""Third-party rules through the ``diag.rules`` entry-point group, loaded like checks are."""

from __future__ import annotations

import datetime as dt
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from diag.diagnosis import diagnose
from diag.diagnosis.engine import CALIBRATION_CAP, ENTRY_POINT_GROUP, load_rules
from diag.diagnosis.rules import RULES
from diag.i18n import msg
from diag.model import CheckResult, Device, Fact, Profile, Site

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)

PLUGIN = textwrap.dedent(
    '''
    """A vendor plugin: its PoE check reports poe.port_power_w; no power means no power."""
    from diag.diagnosis.rules import Hit, Rule
    from diag.i18n import msg

    def _poe_off(env, device):
        watts = env.facts.num("poe.port_power_w", device.name)
        if watts is None or watts > 0:
            return None
        return Hit(0.95, detail=msg("{device}'s PoE port delivers no power", device=device.name))

    POE = Rule("device-no-power", _poe_off, ("poe.port_power_w",), 0.95, name="poe-off")
    ALL = [POE]

    def factory():
        return [POE]

    BAD = Rule("my-own-cause", _poe_off)
    NOT_A_RULE = 42

    def broken(env, device):
        raise RuntimeError("plugin bug")

    BROKEN = Rule("ip-conflict", broken, name="broken")
    '''
)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "vendor_rules.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "vendor_rules"
    sys.modules.pop("vendor_rules", None)


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name, value, ENTRY_POINT_GROUP)


def site() -> Site:
    return Site("s", (Device("Cam", "ipc", "p2p-account", address="198.18.0.30"),), Profile("p"))


def results(watts: float) -> list[CheckResult]:
    facts = (Fact("poe.port_power_w", watts, "W", "Cam"), Fact("device.reachable", True, "", "Cam"))
    return [CheckResult("poe", "ok", msg("ok"), facts=facts)]


@pytest.mark.parametrize("value", ["vendor_rules:POE", "vendor_rules:ALL", "vendor_rules:factory"])
def test_a_plugin_rule_is_loaded_and_used(plugin: str, value: str) -> None:
    rs = load_rules([ep("vendor", value)])
    assert rs.errors == ()
    assert len(rs.rules) == len(RULES) + 1
    verdicts, _ = diagnose(site(), results(0.0), now=NOW, rules=rs.rules)
    cause = verdicts[0].causes[0]
    # the plugin's 0.95 is evidence strength; the engine reports it calibrated like every rule's
    assert cause.id == "device-no-power" and cause.confidence == CALIBRATION_CAP
    assert cause.evidence[0].key == "poe.port_power_w" and cause.evidence[0].unit == "W"
    assert verdicts[0].state == "offline"
    # near miss: the port delivers power
    verdicts, _ = diagnose(site(), results(6.5), now=NOW, rules=rs.rules)
    assert not verdicts[0].causes


def test_bad_plugins_are_errors_not_crashes(plugin: str) -> None:
    rs = load_rules(
        [
            ep("unknown-cause", "vendor_rules:BAD"),
            ep("not-a-rule", "vendor_rules:NOT_A_RULE"),
            ep("missing", "vendor_rules_nope:X"),
        ]
    )
    assert len(rs.rules) == len(RULES)
    errors = {e.name: e.error for e in rs.errors}
    assert "unknown cause id 'my-own-cause'" in errors["unknown-cause"]
    assert "TypeError" in errors["not-a-rule"]
    assert "ModuleNotFoundError" in errors["missing"]


def test_a_rule_that_raises_does_not_stop_the_diagnosis(plugin: str) -> None:
    rs = load_rules([ep("broken", "vendor_rules:BROKEN"), ep("vendor", "vendor_rules:POE")])
    verdicts, _ = diagnose(site(), results(0.0), now=NOW, rules=rs.rules)
    assert verdicts[0].causes[0].id == "device-no-power"


def test_installed_group_loads_without_errors() -> None:
    rs = load_rules()
    assert rs.errors == ()
    assert set(RULES) <= set(rs.rules)
