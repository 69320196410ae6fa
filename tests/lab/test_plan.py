"""The lab's scenario table and blueprint, without root: coverage, composition, site config."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from pathlib import Path

import pytest

from diag.config import parse_site
from diag.lab import plan as P
from diag.lab.scenarios import (
    BY_NAME,
    SCENARIOS,
    ScenarioError,
    compose,
    devices_needed,
    parse_names,
)

# SPEC section 2 causes a network can show; the rest come from the site config or the phone.
# unexplained is the engine's verdict when no cause fits, not a fault a scenario can inject.
NOT_NETWORK = {
    "share-expired",
    "share-not-possible",
    "p2p-relogin-delay",
    "phone-side",
    "unexplained",
}
ALLOWED = [
    ipaddress.ip_network(n)
    for n in (
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "0.0.0.0/8",  # "any" in rules and masks
        "255.0.0.0/8",  # netmasks
    )
]
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/\d+)?(?![\d.])")


def _plan(names: str, n: int = P.DEFAULT_DEVICES) -> P.Plan:
    return P.build(
        "t1",
        parse_names(names),
        n,
        passwords={},
        today=dt.date(2026, 1, 1),
        state_root=Path("/run/diag-lab"),
    )


def _texts(p: P.Plan) -> list[str]:
    out = list(p.files.values())
    out += ["\n".join(lines) for lines in p.scripts.values()]
    out += [" ".join(d.argv) for d in p.daemons]
    return out


def test_every_network_cause_has_a_scenario() -> None:
    from diag.diagnosis.catalog import CATALOG

    network_causes = set(CATALOG) - NOT_NETWORK
    covered = {s.cause for s in SCENARIOS if s.cause}
    assert network_causes <= covered, network_causes - covered
    assert covered <= set(CATALOG)
    # ... and each cause has a scenario named after it (the brief's list).
    for cause in network_causes:
        assert BY_NAME[cause].cause == cause


def test_nat_behaviours_and_healthy() -> None:
    assert BY_NAME["healthy"].cause is None and not BY_NAME["healthy"].overrides
    nat = {compose([n]).nat for n in BY_NAME if n.startswith("nat-")}
    assert {"none", "full-cone", "restricted", "port-restricted", "symmetric", "udp-blocked"} <= nat
    assert compose(["nat-cgnat"]).cgnat
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


def test_compose_applies_both_and_later_wins() -> None:
    f = compose(["device-no-power", "dns-failure", "radio-link-interference"])
    assert f.dns_isp_lies
    assert f.device_faults("ipc2") == {"no-power"}
    assert f.device_faults("ipc3") == {"radio"}
    assert compose(["nat-symmetric", "nat-full-cone"]).nat == "full-cone"
    assert devices_needed(["ip-access-broken", "device-no-power"]) == {"ipc1", "ipc2"}


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ScenarioError, match="nat-bogus"):
        parse_names("healthy,nat-bogus")
    assert parse_names("") == ["healthy"]
    assert parse_names(" dns-failure , cgnat ") == ["dns-failure", "cgnat"]


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_site_config_of_every_scenario_parses(name: str) -> None:
    p = _plan(name)
    site = parse_site(__import__("tomllib").loads(p.files["site.toml"]), str(p.site_path))
    assert [d.name for d in site.devices] == ["nvr", "ipc1", "ipc2", "ipc3"]
    assert {d.added_via for d in site.devices} == {"ip", "p2p", "p2p-account", "shared"}
    assert site.device("nvr") is not None and site.device("nvr").channels > 1  # type: ignore[union-attr]
    assert site.network.site_resolver == P.DNS_ISP
    assert site.profile.independent_resolvers == (P.DNS_PUBLIC,)
    assert [(s.host, s.port) for s in site.profile.stun_servers] == [
        (P.STUN_A, 3478),
        (P.STUN_B, 3480),
    ]
    probes = {s.probe for s in site.profile.p2p_servers}
    assert probes == {"hello", "connect", "https"}
    assert all(h.endswith(".test") for h in site.profile.dns_names)
    for dev in site.devices:
        # Credentials are file references into the lab's state, never the password.
        assert dev.credentials is not None
        assert dev.credentials.password.ref.startswith(f"file:{p.state_dir}/secrets/")
    assert site.network.wan_address == ("100.64.0.2" if compose([name]).cgnat else "203.0.113.2")


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_no_address_outside_the_plan(name: str) -> None:
    p = _plan(name)
    for text in _texts(p):
        for m in IPV4.finditer(text):
            ip = ipaddress.ip_address(m.group(1))
            assert any(ip in n for n in ALLOWED), (name, m.group(0), text[:200])


def test_fifty_devices_fit_the_plan() -> None:
    p = _plan("healthy", 50)
    addrs = [d.address for d in p.devices]
    assert len(set(addrs)) == 50 and len({d.mac for d in p.devices}) == 50
    assert all(ipaddress.ip_address(a) in P.LAN for a in addrs)
    assert p.lan_host(P.LAPTOP_OFF) not in addrs and p.lan_host(P.ROUTER_OFF) not in addrs
    assert len(p.expect_online) == 50
    for text in _texts(p):
        for m in IPV4.finditer(text):
            assert any(ipaddress.ip_address(m.group(1)) in n for n in ALLOWED)


def test_nat_none_uses_public_lan_and_no_masquerade() -> None:
    p = _plan("nat-none")
    assert p.lan == P.PUBLIC_LAN
    assert "masquerade" not in p.files["router.nft"]
    assert any(f"ip route add {P.PUBLIC_LAN}" in line for line in p.scripts["isp"])


def test_shaped_queue_holds_slow_start_at_any_rate() -> None:
    # At 64 kbit/s a six-frame queue halved TCP's goodput (tail drops of the initial window and
    # spurious time-outs): the queue holds at least 32 frames, and 50 ms where that is more.
    for kbit, limit in ((64, 32 * 1514 + 3200), (1000, 32 * 1514 + 3200), (50_000, 375_000)):
        assert P.tbf_args(kbit).endswith(f"limit {limit}")


def test_faults_reach_the_right_places() -> None:
    assert "random,fully-random" in _plan("nat-symmetric").files["router.nft"]
    assert (
        f"ip daddr {P.PLATFORM} udp dport 32100 drop"
        in _plan("router-port-blocking").files["router.nft"]
    )
    assert "udp dport 32100 drop" in _plan("isp-p2p-blocking").files["isp.nft"]
    assert "udp dport 32100" not in _plan("isp-p2p-blocking").files["router.nft"]
    assert "ip link set down0 down" in _plan("link-outage").scripts["isp"]
    assert any("tbf rate 1000kbit" in c for c in _plan("low-bandwidth").scripts["router"])
    assert "numgen random" in _plan("wan-loss-latency").files["router.nft"]
    assert "numgen random" in _plan("radio-link-interference").files["switch.nft"]
    assert "dnat to 198.51.100.90:80" in _plan("data-plan-exhausted").files["isp.nft"]
    assert "platform" not in {d.role for d in _plan("p2p-server-unavailable").daemons}
    lying = " ".join(next(d for d in _plan("dns-failure").daemons if d.name == "dnsmasq-isp").argv)
    assert "--host-record=p2p.lab-cloud.test,198.51.100.66" in lying
    assert any("udp_timeout=4" in c for c in _plan("nat-mapping-expiry").scripts["router"])
    assert "8080" not in _plan("ip-access-broken").files["router.nft"]
    assert "8080" in _plan("healthy").files["router.nft"]
    assert "conflict" in _plan("ip-conflict").roles
    assert any(d.name.startswith("vlan-tagger") for d in _plan("vlan-misconfig").daemons)
    assert not any(d.name == "device-ipc2" for d in _plan("device-no-power").daemons)


def test_vlantag_tags_and_untags() -> None:
    from diag.lab.vlantag import frame_vid, tag, untag

    frame = bytes(range(12)) + b"\x08\x06" + b"payload"
    tagged = tag(frame, 20)
    assert tagged[12:16] == b"\x81\x00\x00\x14"
    assert frame_vid(tagged, []) == 20
    assert untag(tagged) == frame
    assert frame_vid(frame, []) is None


def test_every_lab_message_has_polish() -> None:
    """Every msg()/N_() template of the lab is in lab.po, with its placeholders intact."""
    import ast

    from diag.i18n import gettext

    lab_dir = Path(P.__file__).parent
    templates: set[str] = set()
    for name in ("scenarios.py", "runtime.py", "command.py", "demo_command.py"):
        tree = ast.parse((lab_dir / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("msg", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                templates.add(str(node.args[0].value))
    assert len(templates) > 30
    for t in templates:
        pl = gettext(t, "pl")
        assert pl != t, f"no Polish for {t!r}"
        assert set(re.findall(r"\{\w+\}", pl)) == set(re.findall(r"\{\w+\}", t)), t
