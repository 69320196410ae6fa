"""The stun check against a fake RFC 5780 server on loopback that emulates NAT behaviours."""

from __future__ import annotations

import asyncio
import time

import pytest

from checks.stun_fake import A2, Behaviour, FakeStunServer
from diag.checks import stun as s
from diag.checks.base import Context
from diag.model import Network, Profile, Site, StunServer


def site_for(*servers: tuple[str, int], heartbeat: float = 30.0) -> Site:
    profile = Profile(
        name="test",
        stun_servers=tuple(StunServer(h, p) for h, p in servers),
        heartbeat_interval_s=heartbeat,
    )
    return Site(name="t", devices=(), profile=profile, network=Network(gateway=None))


def run_check(site: Site, deep: bool = False, budget: float = 20.0) -> s.Observation:
    check = s.StunCheck(discover=False)
    ctx = Context(site, "stun", check.targets(site), time.monotonic() + budget, deep=deep)
    return asyncio.run(check.observe(ctx))


def facts_of(site: Site, obs: s.Observation) -> dict[str, object]:
    return {f.key: f.value for f in s.facts(obs, site)}


CASES = [
    # (mapping, filtering, expected RFC 3489 name)
    ("EIM", "EIF", "Full Cone"),
    ("EIM", "ADF", "Restricted Cone"),
    ("EIM", "APDF", "Port Restricted Cone"),
    ("ADM", "APDF", "Symmetric"),
    ("APDM", "APDF", "Symmetric"),
    ("APDM", "EIF", "Symmetric"),
]


@pytest.mark.parametrize(("mapping", "filtering", "name"), CASES)
def test_classifies_emulated_nat(mapping: str, filtering: str, name: str) -> None:
    with FakeStunServer(Behaviour(mapping=mapping, filtering=filtering)) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
    f = facts_of(site, obs)
    assert f["nat.udp_blocked"] is False
    assert f["nat.present"] is True
    assert f["nat.mapping"] == mapping
    assert f["nat.filtering"] == filtering
    assert f["nat.rfc3489"] == name
    assert str(f["nat.mapped_address"]).startswith("127.0.0.3:")
    assert str(f["nat.local_address"]).startswith("127.0.0.1:")
    assert f["nat.alg"] is False
    assert f["nat.hairpinning"] is False
    # Loopback RTT is tiny: the filtering wait is 7 × the 50 ms RTO floor.
    assert obs.classification_s is not None and obs.classification_s < 1.0


def test_host_scoped_filter_is_not_mistaken_for_full_cone() -> None:
    """A filter that remembers peers per host (the lab's restricted cone) still reads ADF.

    Had the mapping tests (which contact the alternate address) run first, the change-IP answer
    would pass the filter and the NAT would look like a full cone.
    """
    b = Behaviour(mapping="EIM", filtering="ADF", filter_scope="host")
    with FakeStunServer(b) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
        first_to_alt = min(srv.requests_to(A2))
        change = srv.change_requests()
    assert obs.filtering == "ADF" and obs.mapping == "EIM"
    # Ordering: every filtering request was sent before anything went to the alternate address.
    assert change and max(change) < first_to_alt


def test_filtering_tests_use_fresh_sockets() -> None:
    with FakeStunServer(Behaviour()) as srv:
        run_check(site_for(srv.primary))
        change_clients = {client for _, client, _, req in srv.log if req.get(0x0003)}
        mapping_clients = {client for _, client, here, _ in srv.log if here[0] == A2}
    assert len(change_clients) == 2  # one socket per filtering test
    assert len(mapping_clients) == 1  # mapping tests share S1 (they must)
    assert not change_clients & mapping_clients


@pytest.mark.parametrize(
    ("filtering", "name"), [("EIF", "Open Internet"), ("APDF", "Symmetric UDP Firewall")]
)
def test_no_nat(filtering: str, name: str) -> None:
    with FakeStunServer(Behaviour(mapping="none", filtering=filtering)) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
    f = facts_of(site, obs)
    assert f["nat.present"] is False
    assert f["nat.mapped_address"] == f["nat.local_address"]
    assert f["nat.rfc3489"] == name
    assert f["nat.cgnat"] is False  # loopback is not a public address, but no NAT to blame
    assert "nat.hairpinning" not in f  # meaningless without a NAT


def test_udp_blocked() -> None:
    with FakeStunServer(Behaviour(udp_blocked=True)) as srv:
        site = site_for(srv.primary)
        t0 = time.monotonic()
        obs = run_check(site)
        took = time.monotonic() - t0
        sent = len(srv.log)
    f = facts_of(site, obs)
    assert f["nat.udp_blocked"] is True and f["nat.rfc3489"] == "UDP Blocked"
    assert "nat.mapping" not in f and "nat.present" not in f
    assert sent == len(s.FIRST_SCHEDULE_S)  # retransmitted on the schedule, then gave up
    assert s.FIRST_GIVE_UP_S - 0.1 < took < s.FIRST_GIVE_UP_S + 1.0
    out = s.outcome_from(obs, site, False)
    assert out.status == "fail"


def test_retransmission_recovers_lost_requests() -> None:
    with FakeStunServer(Behaviour(mapping="EIM", filtering="EIF", drop_first=2)) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
    assert obs.mapping == "EIM" and obs.filtering == "EIF"


def test_second_server_used_when_first_is_silent() -> None:
    with (
        FakeStunServer(Behaviour(udp_blocked=True)) as dead,
        FakeStunServer(Behaviour(mapping="EIM", filtering="EIF")) as live,
    ):
        site = site_for(dead.primary, live.primary)
        obs = run_check(site)
    assert obs.server == live.primary and obs.filtering == "EIF"


def test_rfc5780_server_preferred() -> None:
    """The first server answers but cannot classify (no OTHER-ADDRESS); the second one can."""
    with (
        FakeStunServer(Behaviour(rfc5780=False)) as plain,
        FakeStunServer(Behaviour(mapping="EIM", filtering="ADF")) as full,
    ):
        site = site_for(plain.primary, full.primary)
        obs = run_check(site)
    assert obs.server == full.primary
    assert (obs.mapping, obs.filtering, obs.rfc5780) == ("EIM", "ADF", True)


def test_hairpinning_detected() -> None:
    with FakeStunServer(Behaviour(hairpin=True)) as srv:
        obs = run_check(site_for(srv.primary))
    assert obs.hairpinning is True


@pytest.mark.parametrize("send_mapped", [True, False])
def test_alg_detected(send_mapped: bool) -> None:
    """MAPPED-ADDRESS rewritten to the private source while XOR-MAPPED shows the public one."""
    with FakeStunServer(Behaviour(alg=True, send_mapped=send_mapped)) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
    assert facts_of(site, obs)["nat.alg"] is True


def test_server_without_rfc5780() -> None:
    with FakeStunServer(Behaviour(rfc5780=False)) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
    f = facts_of(site, obs)
    assert f["stun.rfc5780"] is False
    assert "nat.mapping" not in f and "nat.filtering" not in f and "nat.rfc3489" not in f
    assert f["nat.present"] is True
    assert s.outcome_from(obs, site, False).status == "warn"


def test_hostile_replies_become_evidence() -> None:
    with FakeStunServer(Behaviour(mapping="EIM", filtering="EIF", garbage_first=True)) as srv:
        site = site_for(srv.primary)
        obs = run_check(site)
    f = facts_of(site, obs)
    assert f["nat.mapping"] == "EIM" and f["nat.filtering"] == "EIF"
    assert isinstance(f["stun.malformed_replies"], int) and f["stun.malformed_replies"] >= 2


def test_timeouts_follow_the_rtt() -> None:
    """A 120 ms server RTT stretches the RTO (3 × RTT) past its 50 ms floor."""
    with FakeStunServer(Behaviour(mapping="EIM", filtering="APDF", delay_s=0.12)) as srv:
        obs = run_check(site_for(srv.primary))
    assert obs.rtt_s is not None and obs.rtt_s >= 0.12
    assert obs.rto_s is not None and obs.rto_s == pytest.approx(3 * obs.rtt_s, rel=0.01)
    assert obs.filtering == "APDF"


@pytest.mark.parametrize(
    ("lifetime", "heartbeat", "proven"),
    [(0.6, 2.0, False), (None, 1.2, True)],
)
def test_lifetime_deep_mode(lifetime: float | None, heartbeat: float, proven: bool) -> None:
    with FakeStunServer(Behaviour(lifetime_s=lifetime)) as srv:
        site = site_for(srv.primary, heartbeat=heartbeat)
        obs = run_check(site, deep=True, budget=8.0)
    f = facts_of(site, obs)
    assert obs.lifetime_proven is proven
    assert f["nat.heartbeat_interval_s"] == heartbeat
    lower = f["nat.mapping_lifetime_s"]
    assert isinstance(lower, float)
    if lifetime is None:
        assert lower >= heartbeat
    else:
        assert lower <= lifetime
        assert obs.lifetime_upper_s is not None and obs.lifetime_upper_s > lifetime
        # The bracket was refined below the first round's coarse step.
        assert obs.lifetime_upper_s - lower <= max(s.LIFETIME_RESOLUTION_S, heartbeat / 2)
        assert s.outcome_from(obs, site, True).status == "warn"


def test_lifetime_not_measured_without_deep() -> None:
    with FakeStunServer(Behaviour(lifetime_s=0.5)) as srv:
        site = site_for(srv.primary, heartbeat=1.0)
        obs = run_check(site)
    assert "nat.mapping_lifetime_s" not in facts_of(site, obs)


# --- pure functions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m1", "m2", "m3", "want"),
    [
        (("a", 1), ("a", 1), None, "EIM"),
        (("a", 1), ("a", 2), ("a", 2), "ADM"),
        (("a", 1), ("a", 2), ("a", 3), "APDM"),
        (("a", 1), None, None, None),
        (("a", 1), ("a", 2), None, None),
    ],
)
def test_classify_mapping(m1, m2, m3, want) -> None:  # type: ignore[no-untyped-def]
    assert s.classify_mapping(m1, m2, m3) == want


@pytest.mark.parametrize(
    ("both", "port", "want"),
    [
        (True, False, "EIF"),
        (True, True, "EIF"),
        (False, True, "ADF"),
        (False, False, "APDF"),
        (None, None, None),
    ],
)
def test_classify_filtering(both, port, want) -> None:  # type: ignore[no-untyped-def]
    assert s.classify_filtering(both, port) == want


@pytest.mark.parametrize(
    ("ip", "cls"),
    [
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("100.128.0.1", "public"),
        ("203.0.113.9", "public"),
        ("198.51.100.20", "public"),
        ("198.18.0.5", "private"),
        ("127.0.0.1", "private"),
        ("169.254.1.1", "private"),
        ("garbage", "private"),
    ],
)
def test_address_class(ip: str, cls: str) -> None:
    assert s.address_class(ip) == cls


@pytest.mark.parametrize(
    ("present", "mapped", "wan", "want"),
    [
        (True, "203.0.113.5", "203.0.113.5", (False, False)),  # one NAT, public WAN
        (True, "203.0.113.5", "100.64.3.4", (True, True)),  # router behind carrier NAT
        (True, "203.0.113.5", "198.51.100.7", (True, True)),  # double NAT, public-looking WAN
        (True, "100.64.0.9", None, (True, None)),  # the server sees a shared address
        (True, "203.0.113.5", None, (False, None)),  # no WAN address known
        (False, "203.0.113.5", "203.0.113.5", (False, None)),
        (None, None, None, (None, None)),
    ],
)
def test_nat_layers(present, mapped, wan, want) -> None:  # type: ignore[no-untyped-def]
    assert s.nat_layers(present, mapped, wan) == want


def test_wan_address_from_config_makes_double_nat_fact() -> None:
    obs = s.Observation(nat_present=True, mapped=("203.0.113.5", 4000))
    site = site_for(("127.0.0.1", 1))
    site = Site(site.name, (), site.profile, network=Network(wan_address="100.64.1.2"))
    f = facts_of(site, obs)
    assert f["nat.cgnat"] is True and f["nat.double_nat"] is True


def test_rfc3489_names() -> None:
    assert s.rfc3489_name(True, None, None, None) == "UDP Blocked"
    assert s.rfc3489_name(False, False, "EIM", "EIF") == "Open Internet"
    assert s.rfc3489_name(False, False, "EIM", "ADF") == "Symmetric UDP Firewall"
    assert s.rfc3489_name(False, True, "EIM", None) is None


def test_default_gateway_parses_proc_route(tmp_path) -> None:  # type: ignore[no-untyped-def]
    route = tmp_path / "route"
    route.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "lan0\t001212C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        "lan0\t00000000\t011212C6\t0003\t0\t0\t0\t00000000\n"
    )
    from diag.net.linux import LinuxBackend

    assert s.default_gateway(LinuxBackend(str(route))) == "198.18.18.1"
    assert s.default_gateway(LinuxBackend(str(tmp_path / "missing"))) is None


def test_every_message_has_polish() -> None:
    import re
    from pathlib import Path

    from diag.i18n import catalog

    src = Path(s.__file__).read_text(encoding="utf-8")
    ids = set(re.findall(r'(?:N_|msg)\(\s*"([^"]+)"', src))
    assert len(ids) >= 10
    assert sorted(i for i in ids if i not in catalog("pl")) == []


def test_summary_renders_in_polish() -> None:
    obs = s.Observation(
        nat_present=True,
        mapped=("203.0.113.2", 4000),
        local=("198.18.0.100", 4000),
        mapping="EIM",
        filtering="APDF",
        rfc5780=True,
    )
    out = s.outcome_from(obs, site_for(("127.0.0.1", 1)), False)
    assert out.status == "ok"
    assert out.summary.render("pl") == (
        "NAT Port Restricted Cone: mapowanie EIM, filtrowanie APDF; "
        "adres publiczny 203.0.113.2:4000"
    )


PYSTUN_NAMES = {
    "Full Cone": "Full Cone",
    "Restric NAT": "Restricted Cone",
    "Restric Port NAT": "Port Restricted Cone",
    "Symmetric NAT": "Symmetric",
}


@pytest.mark.parametrize(("mapping", "filtering", "name"), CASES)
def test_rfc3489_name_agrees_with_pystun3(mapping: str, filtering: str, name: str) -> None:
    """Cross-check: pystun3's RFC 3489 algorithm on the same emulated NAT gives the same name.

    The fake has no conntrack, so pystun3's ordering problem (it makes Linux NATs look
    symmetric, see docs/bench-nat.md) does not arise here and the two must agree.
    """
    import socket

    import stun  # pystun3

    with FakeStunServer(Behaviour(mapping=mapping, filtering=filtering)) as srv:
        obs = run_check(site_for(srv.primary))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.05)  # pystun3's own 2 s per try would make this test take minutes
        sock.bind(("127.0.0.1", 0))
        try:
            theirs, _ = stun.get_nat_type(
                sock, "0.0.0.0", 0, stun_host=srv.primary[0], stun_port=srv.primary[1]
            )
        finally:
            sock.close()
    ours = s.rfc3489_name(obs.udp_blocked, obs.nat_present, obs.mapping, obs.filtering)
    assert ours == name
    if (mapping, filtering) == ("APDM", "EIF"):
        # RFC 3489's flowchart stops at test II when the changed-address answer arrives and
        # never looks at the mapping; by 3489's own definitions a NAT that maps per destination
        # is symmetric, which is what we derive from the RFC 4787 answer.
        assert theirs == "Full Cone"
    else:
        assert PYSTUN_NAMES.get(theirs) == ours


def test_runner_deadline_cuts_a_silent_server_cleanly() -> None:
    """Under the runner, a deadline shorter than the first-binding wait is no UDP-blocked verdict.

    The check stops just before the deadline and says it had no time; no nat.* fact claims UDP is
    blocked on the strength of 0.1 s of silence.
    """
    from diag.checks.base import registry_from
    from diag.runner import Runner, plan

    with FakeStunServer(Behaviour(udp_blocked=True)) as srv:
        site = Site(
            "t",
            (),
            Profile("p", stun_servers=(StunServer(*srv.primary),)),
            network=Network(gateway="127.0.0.1"),
        )
        reg = registry_from(s.StunCheck())
        runner = Runner(reg, deadline_s=0.6)
        t0 = time.monotonic()
        (res,) = asyncio.run(runner.run(site, plan(site, reg)))
        took = time.monotonic() - t0
    assert res.status == "error"
    assert res.fact("nat.udp_blocked") is None
    assert took < 1.5
