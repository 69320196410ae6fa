"""One hostile device never takes the others down: the heartbeat check against the real device
emulator on loopback, one device healthy and one in each hostile mode (malformed Digest,
trickle, bad XML, control characters). The hostile one is that device's own error fact with a
safe reason, the healthy one keeps its results, the diagnosis calls the hostile one unknown (never
online), and the password is nowhere in what comes out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from device_emulator import PASSWORD, free_port
from fakes import FakeDNS, answer, make_site

from diag.checks import heartbeat as hb
from diag.checks.base import World, registry_from
from diag.diagnosis import diagnose
from diag.lab.emulators import hostile
from diag.model import CheckResult, Run
from diag.reports import json as rjson
from diag.reports.terminal import summary_table
from diag.runner import Runner, plan


@pytest.fixture(autouse=True)
def no_icmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hb, "icmp_available", lambda *a, **k: None)

    async def no_ping(*a: Any, **k: Any) -> None:
        return None

    monkeypatch.setattr(hb, "ping", no_ping)


@pytest.fixture(autouse=True)
def dns_fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDNS]:
    # The emulated device names 127.0.0.1 as its resolver: a fake answers there.
    with FakeDNS({"p2p.lab-cloud.test": answer("198.51.100.10")}) as dns:
        monkeypatch.setattr(hb, "DNS_PORT", dns.port)
        yield dns


def site_of(*devices: dict[str, Any]) -> Any:
    return make_site(
        devices=list(devices),
        network={"gateway": "127.0.0.254"},
        profile={"dns_names": ["p2p.lab-cloud.test"]},
    )


def entry(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "ipc",
        "added_via": "ip",
        "address": "127.0.0.1",
        "ports": {"http": port, "rtsp": free_port()},
        "credentials": {"username": "admin", "password": "env:DIAG_TEST_CAM_PW"},
        "api": "isapi",
    }


async def run_heartbeat(site: Any, deadline_s: float = 15.0) -> CheckResult:
    reg = registry_from(hb.HeartbeatCheck())
    the_plan = plan(site, reg, ["heartbeat"], root=False)
    runner = Runner(reg, world=World(is_root=lambda: False), deadline_s=deadline_s)
    return (await runner.run(site, the_plan))[0]


REASON = {
    **{m: "bad-challenge" for m in hostile.DIGEST_CHALLENGES},
    "trickle-headers": "timeout",
    "trickle-body": "timeout",
}


@pytest.mark.parametrize("mode", sorted(REASON))
async def test_one_hostile_device_is_its_own_error_and_unknown(
    mode: str, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    # A short whole-request bound keeps the trickle cases quick; the mechanism is the same.
    monkeypatch.setattr(hb, "DEVICE_API_BOUND_S", 1.5)
    good = emulator()
    odd = emulator(hostile=mode)
    site = site_of(entry("good", good.port), entry("odd", odd.port))
    res = await run_heartbeat(site)
    f = {(x.key, x.target): x.value for x in res.facts}
    assert res.status != "error", res.summary
    assert f[("device.auth", "good")] == "ok" and f[("device.reachable", "good")] is True
    assert f[("device.auth", "odd")] == "error"
    assert f[("device.auth_error", "odd")] == REASON[mode]
    assert f[("device.reachable", "odd")] is True
    verdicts, causes = diagnose(site, [res])
    states = {v.device: v for v in verdicts}
    assert states["good"].state == "online", states["good"]
    assert states["odd"].state == "unknown"
    why = states["odd"].unmeasured[0].render()
    assert why.startswith("the heartbeat login to odd failed: ")
    run = Run(site.name, dt.datetime.now(dt.UTC), 1.0, (res,), verdicts, causes)
    outputs = [summary_table(run), summary_table(run, "pl"), rjson.dumps(run), repr(res)]
    outputs += [json.dumps([[x.key, x.value] for x in res.facts], default=str)]
    for text in outputs:
        assert PASSWORD not in text
        for i in range(len(PASSWORD) - 3):
            assert PASSWORD[i : i + 4] not in text, PASSWORD[i : i + 4]
    assert PASSWORD not in good.stop() + odd.stop()


@pytest.mark.parametrize("mode", ["malformed-xml", "control-chars"])
async def test_bad_xml_and_control_characters_are_data_not_a_crash(
    mode: str, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIAG_TEST_CAM_PW", PASSWORD)
    odd = emulator(hostile=mode)
    site = site_of(entry("odd", odd.port))
    res = await run_heartbeat(site)
    f = {(x.key, x.target): x.value for x in res.facts}
    assert res.status != "error", res.summary
    assert f[("device.auth", "odd")] == "ok"
    info = f.get(("device.info", "odd"))
    if mode == "malformed-xml":
        assert info is None  # not XML we accept: nothing parsed, nothing made up
    else:
        assert isinstance(info, dict) and "\x9b" in str(info["name"])
    odd.stop()
