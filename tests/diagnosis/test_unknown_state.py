"""Fail closed: a device whose state could not be measured is ``unknown``, never ``online``.

The property: for any run in which the check that decides device states errors, times out, is
skipped or does not run (or one device's own probe, login or credentials break), no affected
device is ``online``, whatever else the run found. Then the pieces around it: the words, the
JSON, the terminal, the monitor's line and code, the history and the metrics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.diagnosis import diagnose
from diag.diagnosis.unmeasured import STATE_CHECK, missing_evidence, unmeasured, with_gaps
from diag.i18n import msg
from diag.model import (
    ADDED_VIA,
    CheckResult,
    Device,
    Fact,
    Profile,
    Run,
    Site,
    Verdict,
)
from diag.reports import json as rjson

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def site_of(devices: list[Device]) -> Site:
    return Site(
        name="Fail-closed site",
        devices=tuple(devices),
        profile=Profile(name="lab", status_api_url="https://status.lab.example.net"),
    )


def device(i: int, via: str = "p2p", address: bool = True) -> Device:
    return Device(
        f"cam{i}",
        "ipc",
        via,  # type: ignore[arg-type]
        address=f"198.18.0.{20 + i}" if address else None,
        serial=f"SER{i}",
    )


def measured(d: Device, reachable: bool = True) -> list[Fact]:
    facts = [Fact("device.reachable", reachable, target=d.name)]
    if d.added_via != "ip":
        facts.append(Fact("device.platform_online", reachable, target=d.name))
    return facts


def heartbeat(status: str, facts: list[Fact], targets: tuple[str, ...]) -> CheckResult:
    extra: list[Fact] = []
    if status == "timeout":
        status, extra = "error", [Fact("check.timeout", True, target=STATE_CHECK)]
    elif status == "error":
        extra = [Fact("check.exception", "TypeError", target=STATE_CHECK)]
    return CheckResult(
        STATE_CHECK,
        status,  # type: ignore[arg-type]
        msg("heartbeat {s}", s=status),
        facts=tuple(facts + extra),
        targets=targets,
    )


# Facts of the other checks that make site causes fire (or not): a healthy or a broken site
# around the devices must not turn an unmeasured device into "online".
SITE_FACTS = st.lists(
    st.sampled_from(
        [
            Fact("dns.site.ok", True, target="p2p.lab.example.net"),
            Fact("dns.site.ok", False, target="p2p.lab.example.net"),
            Fact("dns.site.rcode", "SERVFAIL", target="p2p.lab.example.net"),
            Fact("wan.internet_reachable", True),
            Fact("wan.loss_pct", 15.0, "%"),
            Fact("p2p.reachable", True, target="P2P login"),
            Fact("p2p.reachable", False, target="P2P login"),
            Fact("nat.type", "symmetric"),
        ]
    ),
    max_size=5,
)


@st.composite
def runs(draw: st.DrawFn) -> tuple[Site, list[CheckResult], set[str]]:
    n = draw(st.integers(1, 5))
    devices = [
        device(i, draw(st.sampled_from(ADDED_VIA)), address=draw(st.booleans())) for i in range(n)
    ]
    mode = draw(st.sampled_from(["error", "timeout", "skip", "absent", "per-device"]))
    affected: set[str] = set()
    facts: list[Fact] = []
    targets = tuple(d.name for d in devices)
    if mode == "per-device":
        # The check ran; some devices' own probe, login or credentials broke.
        broken = draw(st.lists(st.sampled_from(devices), min_size=1, unique_by=lambda d: d.name))
        for d in devices:
            if d in broken:
                affected.add(d.name)
                how = draw(st.sampled_from(["probe", "auth", "credentials", "nothing"]))
                if how == "probe":
                    facts.append(Fact("device.error", "timeout", target=d.name))
                    if draw(st.booleans()):
                        facts.extend(f for f in measured(d) if f.key == "device.platform_online")
                elif how == "auth":
                    facts += measured(d)
                    facts.append(Fact("device.auth", "error", target=d.name))
                    facts.append(Fact("device.auth_error", "bad-challenge", target=d.name))
                elif how == "credentials":
                    facts += measured(d)
                    facts.append(Fact("device.credentials_error", "not-utf8", target=d.name))
            else:
                facts += measured(d, reachable=draw(st.booleans()))
        results = [heartbeat("ok", facts, targets)]
    else:
        affected = {d.name for d in devices}
        results = [] if mode == "absent" else [heartbeat(mode, [], targets)]
    results.append(
        CheckResult("others", "ok", msg("ok"), facts=tuple(draw(SITE_FACTS)), targets=())
    )
    return site_of(devices), results, affected


@settings(max_examples=150, deadline=None)
@given(runs())
def test_no_affected_device_is_online_when_the_deciding_check_fails(
    case: tuple[Site, list[CheckResult], set[str]],
) -> None:
    site, results, affected = case
    verdicts, _ = diagnose(site, results, now=NOW)
    for v in verdicts:
        if v.device in affected:
            assert v.state in ("unknown", "offline"), v
            if v.state == "unknown":
                # "?" always says why, naming the check (or the unreadable credentials).
                words = " ".join(m.render() for m in v.unmeasured)
                assert STATE_CHECK in words or "credentials for" in words
    run = Run(site.name, NOW, 1.0, tuple(results), verdicts)
    if affected:
        assert run.worst_state != "online"
    assert rjson.validate(rjson.run_to_dict(run)) == []


def test_the_words_name_the_check_and_the_reason() -> None:
    d = device(1)
    site = site_of([d])
    cases = {
        "timeout": "not measured: the heartbeat check ran out of time",
        "error": "not measured: the heartbeat check failed (TypeError)",
        "skip": "not measured: the heartbeat check was skipped (heartbeat skip)",
    }
    for status, words in cases.items():
        (v,), _ = diagnose(site, [heartbeat(status, [], (d.name,))], now=NOW)
        assert v.state == "unknown" and [m.render() for m in v.unmeasured] == [words]
        assert v.unmeasured[0].render("pl").startswith("niezmierzone: test")
    (v,), _ = diagnose(site, [], now=NOW)
    assert v.unmeasured[0].render() == "not measured: the heartbeat check did not run"
    facts = [*measured(d), Fact("device.auth", "error", target=d.name)]
    facts.append(Fact("device.auth_error", "bad-challenge", target=d.name))
    (v,), _ = diagnose(site, [heartbeat("ok", facts, (d.name,))], now=NOW)
    assert v.state == "unknown"
    assert v.unmeasured[0].render() == (
        "the heartbeat login to cam1 failed: malformed Digest challenge"
    )
    facts = [*measured(d), Fact("device.credentials_error", "missing", target=d.name)]
    (v,), _ = diagnose(site, [heartbeat("ok", facts, (d.name,))], now=NOW)
    assert v.unmeasured[0].render() == "credentials for cam1 cannot be read: file missing"
    assert v.unmeasured[0].render("pl") == (
        "nie można odczytać danych logowania do cam1: brak pliku"
    )


def test_measured_states_are_kept() -> None:
    on, off = device(1), device(2)
    facts = measured(on) + measured(off, reachable=False)
    verdicts, _ = diagnose(site_of([on, off]), [heartbeat("ok", facts, ("cam1", "cam2"))], now=NOW)
    states = {v.device: v.state for v in verdicts}
    assert states == {"cam1": "online", "cam2": "offline"}
    by = {v.device: v for v in verdicts}
    # Nothing is missing for the state; what is listed is the evidence a device cause needs that
    # was not measured (no login was tried on cam1); the silent cam2 has none to give.
    assert [m.render() for m in by["cam1"].unmeasured] == [
        "not measured: no login to cam1 (no login was tried), so a changed password, its own "
        "network settings and its clock cannot be checked"
    ]
    assert by["cam2"].unmeasured == ()
    # A device measured offline stays offline even when something else about it is missing.
    assert with_gaps("offline", [msg("gap")]) == "offline"
    assert with_gaps("degraded", [msg("gap")]) == "unknown"
    assert with_gaps("online", []) == "online"
    assert unmeasured(on, __import__("diag.diagnosis.facts").diagnosis.facts.Facts([]), []) != ()


def _run(*states: str) -> Run:
    verdicts = tuple(
        Verdict(
            f"cam{i}",
            "ipc",
            "p2p",
            s,  # type: ignore[arg-type]
            "grey" if s == "offline" else "colour",
            unmeasured=(msg("not measured: the {check} check ran out of time", check="heartbeat"),)
            if s == "unknown"
            else (),
        )
        for i, s in enumerate(states)
    )
    checks = (heartbeat("timeout", [], ()),) if "unknown" in states else ()
    return Run("Site", NOW, 1.0, checks, verdicts)


def test_worst_state_order_and_exit_codes() -> None:
    from diag import cli
    from diag.monitor import command

    assert _run("online", "unknown", "degraded").worst_state == "unknown"
    assert _run("unknown", "offline").worst_state == "offline"
    assert cli.STATE_EXIT["unknown"] not in (cli.EXIT_OK, cli.EXIT_DEGRADED)
    line, code = command._status(_run("online", "unknown"), "en", [])
    assert code == command.WARNING
    assert line.startswith("DIAG WARNING - Site: 1/2 devices online; cam1 unknown: not measured")
    assert "heartbeat" in line and "unknown=1;0;;0;2" in line
    line, code = command._status(_run("unknown", "unknown"), "en", [])
    assert code == command.UNKNOWN and line.startswith("DIAG UNKNOWN - ")
    line, code = command._status(_run("unknown", "offline"), "en", [])
    assert code == command.CRITICAL and "cam0 unknown" in line and "cam1 offline" in line


def test_json_round_trip_keeps_why_and_validates(tmp_path: Path) -> None:
    run = _run("online", "unknown")
    data = rjson.run_to_dict(run, "pl")
    assert rjson.validate(data) == []
    dev = data["devices"][1]
    assert dev["state"] == "unknown"
    assert dev["unmeasured"] == ["niezmierzone: testowi heartbeat zabrakło czasu"]
    back = rjson.run_from_dict(data)
    assert back.devices[1].unmeasured == run.devices[1].unmeasured
    assert data["site"]["worst_state"] == "unknown"
    bad = dict(data, devices=[dict(dev, state="maybe")])
    assert rjson.validate(bad) != []


def test_terminal_and_html_show_question_mark_and_why() -> None:
    from diag.reports.html import render
    from diag.reports.terminal import summary_table

    run = _run("online", "unknown")
    table = summary_table(run)
    row = next(line for line in table.splitlines() if line.startswith("cam1"))
    assert "unknown" in row and "? not measured: the heartbeat check ran out of time" in row
    page = render(run)
    assert 'class="badge unknown">?</span>' in page
    assert "not measured: the heartbeat check ran out of time" in page


def test_history_and_metrics_carry_unknown(tmp_path: Path) -> None:
    from diag.monitor import exporters
    from diag.monitor.store import Store

    run = _run("online", "unknown")
    with Store(tmp_path / "h.sqlite") as store:
        store.record(run)
        assert store.last_states()["cam1"] == "unknown"
        hist = {h.device: h for h in store.device_history()}
        # Not measured is no outage and no uptime sample.
        assert hist["cam1"].uptime_pct is None and store.outages("cam1") == []
        later = dataclasses.replace(run, started_at=NOW + dt.timedelta(minutes=5))
        store.record(later)
    reg = exporters.registry_for(run)
    get: Any = reg.get_sample_value
    assert get("diag_device_state", {"site": "Site", "device": "cam1", "state": "unknown"}) == 1
    up = {"site": "Site", "device": "cam1"}
    assert get("diag_device_up", up) is None
    assert get("diag_device_up", dict(up, device="cam0")) == 1


@pytest.mark.parametrize("status", ["error", "timeout", "skip"])
def test_runner_result_shapes_are_recognised(status: str) -> None:
    # The runner's own fact names (check.timeout / check.exception) are what the words read.
    d = device(3, "ip")
    (v,), _ = diagnose(site_of([d]), [heartbeat(status, [], (d.name,))], now=NOW)
    assert v.state == "unknown"


def _words(d: Device, facts: list[Fact]) -> list[str]:
    from diag.diagnosis.facts import Facts

    return [m.render() for m in missing_evidence(d, Facts([heartbeat("ok", facts, (d.name,))]))]


def test_missing_evidence_names_what_a_device_cause_needs_and_why() -> None:
    p2p, ip = device(1), device(2, via="ip")
    login = [Fact("device.auth", "ok", target=p2p.name)]
    full = [
        *measured(p2p),
        *login,
        Fact("device.settings", {"gateway": "198.18.0.1"}, target=p2p.name),
        Fact("device.clock_offset_s", 0.4, "s", target=p2p.name),
    ]
    assert _words(p2p, full) == []
    # No credentials: one gap for the login and what stands behind it.
    words = _words(p2p, [*measured(p2p), Fact("device.auth", "no-credentials", target=p2p.name)])
    assert words == [
        "not measured: no login to cam1 (no credentials in the site file), so a changed "
        "password, its own network settings and its clock cannot be checked"
    ]
    # Logged in, but the API gave neither settings nor clock.
    words = _words(p2p, [*measured(p2p), *login])
    assert len(words) == 2
    assert "network settings of cam1" in words[0] and "clock of cam1" in words[1]
    # The platform could not say whether it hears the device (P2P only).
    facts = [f for f in full if f.key != "device.platform_online"]
    facts.append(Fact("device.platform_error", "timeout", target=p2p.name))
    assert _words(p2p, facts) == [
        "not measured: whether the platform hears cam1 (the platform's status API did not answer "
        "in time), so a P2P service turned off on the device cannot be ruled out"
    ]
    ip_full = [Fact("device.reachable", True, target=ip.name)] + [
        dataclasses.replace(f, target=ip.name) for f in full[2:]
    ]
    assert _words(ip, ip_full) == []  # an IP-added device needs no platform
    # A silent device: nothing of it can be read, the causes that need it are moot.
    assert _words(p2p, measured(p2p, reachable=False)) == []
    # Already a state gap (a login that broke, unreadable credentials): not said twice.
    broken = [*measured(p2p), Fact("device.auth", "error", target=p2p.name)]
    assert not any("login" in w for w in _words(p2p, broken))


def test_missing_evidence_never_turns_a_measured_state_unknown_and_reads_in_polish() -> None:
    d = device(1)
    facts = [*measured(d), Fact("device.auth", "no-credentials", target=d.name)]
    (v,), _ = diagnose(site_of([d]), [heartbeat("ok", facts, (d.name,))], now=NOW)
    assert v.state == "online" and len(v.unmeasured) == 1
    assert v.unmeasured[0].render("pl").startswith("niezmierzone: ")
    data = rjson.run_to_dict(Run("s", NOW, 1.0, (), (v,)))
    assert data["devices"][0]["unmeasured"] == [v.unmeasured[0].render()]
    assert rjson.validate(data) == []
