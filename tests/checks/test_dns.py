"""The dns check against a fake DNS server on loopback: each answer class becomes its fact."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import pytest
from fakes import (
    HANG,
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    FakeDNS,
    answer,
    make_site,
    raw,
    run_check,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diag.checks.dns import DnsCheck
from diag.model import CheckResult
from diag.net.linux import LinuxBackend
from diag.net.resolve import Resolver, resolve_host, site_resolver_spec, system_resolver

NAME = "p2p.platform.test"
# Short per-attempt waits keep the timeout cases fast; the real values are in dns.py.
FAST = (0.2, 0.3)


def fact(res: CheckResult, key: str, target: str = NAME) -> Any:
    f = res.fact(key, target)
    assert f is not None, f"no fact {key} for {target!r}: {res.facts}"
    return f.value


def site_for(site_dns: FakeDNS, indep: FakeDNS | None, **thresholds: Any) -> Any:
    profile: dict[str, Any] = {"dns_names": [NAME]}
    if indep is not None:
        profile["independent_resolvers"] = [indep.address]
    return make_site(profile, {"site_resolver": site_dns.address}, thresholds=thresholds)


async def run_dns(site_beh: Any, indep_beh: Any = None, **thresholds: Any) -> CheckResult:
    with FakeDNS({NAME: site_beh}) as sdns:
        if indep_beh is None:
            return await run_check(DnsCheck(FAST), site_for(sdns, None, **thresholds))
        with FakeDNS({NAME: indep_beh}) as idns:
            return await run_check(DnsCheck(FAST), site_for(sdns, idns, **thresholds))


async def test_healthy_both_resolvers_agree() -> None:
    res = await run_dns(answer("198.51.100.7", "2001:db8::7"), answer("198.51.100.7"))
    assert res.status == "ok", res.summary
    assert fact(res, "dns.site.rcode") == "NOERROR"
    assert fact(res, "dns.site.answer") == ["198.51.100.7", "2001:db8::7"]
    assert fact(res, "dns.independent.answer") == ["198.51.100.7"]
    assert fact(res, "dns.mismatch") is False
    assert fact(res, "dns.site.slow") is False
    assert isinstance(fact(res, "dns.site.time_ms"), float)
    assert res.fact("dns.site.time_ms", NAME).unit == "ms"  # type: ignore[union-attr]
    assert fact(res, "dns.resolver.site", "").startswith("127.0.0.1:")
    assert res.metrics["site_max_ms"].unit == "ms"


@pytest.mark.parametrize(
    ("beh", "rcode"),
    [(NXDOMAIN, "NXDOMAIN"), (SERVFAIL, "SERVFAIL"), (REFUSED, "REFUSED"), (HANG, "TIMEOUT")],
)
async def test_site_resolver_failure_classified(beh: Any, rcode: str) -> None:
    res = await run_dns(beh, answer("198.51.100.7"))
    assert res.status == "fail"
    assert fact(res, "dns.site.rcode") == rcode
    assert fact(res, "dns.site.answer") == []
    assert fact(res, "dns.independent.rcode") == "NOERROR"
    # Mismatch compares two answers; with one side failing it is not measured.
    assert res.fact("dns.mismatch", NAME) is None
    if rcode == "TIMEOUT":
        assert fact(res, "dns.site.time_ms") is None
        assert res.fact("dns.site.slow", NAME) is None


async def test_lying_resolver_is_a_mismatch() -> None:
    res = await run_dns(answer("203.0.113.66"), answer("198.51.100.7"))
    assert res.status == "warn"
    assert fact(res, "dns.mismatch") is True
    assert fact(res, "dns.site.answer") == ["203.0.113.66"]


async def test_overlapping_answers_are_no_mismatch() -> None:
    res = await run_dns(answer("198.51.100.7", "198.51.100.8"), answer("198.51.100.8"))
    assert fact(res, "dns.mismatch") is False


async def test_lost_query_is_retried() -> None:
    with FakeDNS({NAME: answer("198.51.100.7", drop_first=2)}) as sdns:
        res = await run_check(DnsCheck(FAST), site_for(sdns, None))
        # A and AAAA each lost once (the first two queries), then answered on the retry.
        assert len(sdns.queries) == 4
    assert fact(res, "dns.site.rcode") == "NOERROR"
    assert fact(res, "dns.site.time_ms") >= FAST[0] * 1000


async def test_slow_site_resolver() -> None:
    res = await run_dns(answer("198.51.100.7", delay_s=0.15), answer("198.51.100.7"), dns_ms=50)
    assert res.status == "warn"
    assert fact(res, "dns.site.slow") is True
    assert fact(res, "dns.site.time_ms") >= 150


async def test_without_independent_resolver() -> None:
    res = await run_dns(answer("198.51.100.7"))
    assert res.status == "ok"
    assert fact(res, "dns.resolver.independent", "") is None
    assert res.fact("dns.independent.rcode", NAME) is None
    assert res.fact("dns.mismatch", NAME) is None


async def test_independent_failing_alone_is_a_warning() -> None:
    res = await run_dns(answer("198.51.100.7"), SERVFAIL)
    assert res.status == "warn"
    assert fact(res, "dns.independent.rcode") == "SERVFAIL"


async def test_garbage_answer_is_error_fact() -> None:
    res = await run_dns(raw(lambda q: b"\xff" * 7), answer("198.51.100.7"))
    assert res.status == "fail"
    assert fact(res, "dns.site.rcode") == "ERROR"


async def test_every_name_queried_for_a_and_aaaa() -> None:
    names = {"a.platform.test": answer("198.51.100.1"), "b.platform.test": NXDOMAIN}
    with FakeDNS(names) as sdns:
        site = make_site({"dns_names": list(names)}, {"site_resolver": sdns.address})
        res = await run_check(DnsCheck(FAST), site)
        assert sorted(sdns.queries) == [
            ("a.platform.test", "A"),
            ("a.platform.test", "AAAA"),
            ("b.platform.test", "A"),
            ("b.platform.test", "AAAA"),
        ]
    assert res.status == "fail"
    assert fact(res, "dns.site.rcode", "a.platform.test") == "NOERROR"
    assert fact(res, "dns.site.rcode", "b.platform.test") == "NXDOMAIN"
    assert res.metrics["site_failed"].value == 1


async def test_no_dns_names_is_skipped() -> None:
    res = await run_check(DnsCheck(FAST), make_site({}))
    assert res.status == "skip"


def test_system_resolver_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# c\nsearch lan\nnameserver 198.51.100.53\nnameserver 198.51.100.54\n")
    # dnspython's own system configuration reads the file (the registry on Windows).
    assert system_resolver(LinuxBackend(resolv_conf=str(conf))) == "198.51.100.53"
    conf.write_text("search lan\n")
    assert system_resolver(LinuxBackend(resolv_conf=str(conf))) is None
    # A line dnspython refuses loses the configuration, never raises out.
    conf.write_text("nameserver bogus\n")
    assert system_resolver(LinuxBackend(resolv_conf=str(conf))) is None
    assert system_resolver(LinuxBackend(resolv_conf=str(tmp_path / "missing"))) is None
    site = make_site({}, {"site_resolver": "127.0.0.1:5353"})
    assert site_resolver_spec(site, LinuxBackend(resolv_conf=str(conf))) == "127.0.0.1:5353"


async def test_resolve_host_uses_site_resolver_and_literals_skip_it() -> None:
    with FakeDNS({"relay.platform.test": answer("127.0.0.1", "::1")}) as sdns:
        site = make_site({}, {"site_resolver": sdns.address})
        addrs, ans = await resolve_host(site, "relay.platform.test")
        assert addrs == ("127.0.0.1", "::1")
        assert ans is not None and ans.rcode == "NOERROR"
        addrs, ans = await resolve_host(site, "127.0.0.5")
        assert addrs == ("127.0.0.5",) and ans is None
        assert [q for q in sdns.queries if q[0] == "127.0.0.5"] == []


# --- fuzzing the answer parsing path: whatever comes back, the result is a classification ----


def _with_id(payload: bytes) -> Any:
    # Keep the query's id (and make it a response) so the bytes reach dnspython's parser.
    def build(query: bytes) -> bytes:
        return query[:2] + struct.pack("!H", 0x8180) + payload

    return build


@pytest.fixture(scope="module")
def fuzz_dns() -> Any:
    with FakeDNS({}) as server:
        yield server


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(payload=st.binary(max_size=300), keep_id=st.booleans())
def test_fuzzed_answers_never_crash(fuzz_dns: FakeDNS, payload: bytes, keep_id: bool) -> None:
    fuzz_dns.names[NAME] = raw(_with_id(payload) if keep_id else (lambda q: payload))
    ans = asyncio.run(Resolver(fuzz_dns.address, (0.15,)).lookup(NAME))
    assert ans.rcode in ("NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "TIMEOUT", "ERROR")
    assert all(isinstance(a, str) for a in ans.addresses)
    assert len(ans.error) <= 120


async def test_truncated_answer_goes_to_tcp() -> None:
    def truncated(query: bytes) -> bytes:
        resp = dns.message.make_response(dns.message.from_wire(query))
        resp.flags |= dns.flags.TC
        return resp.to_wire()

    # The fake has no TCP listener: the retry over TCP is refused, which is evidence, not a crash.
    with FakeDNS({NAME: raw(truncated)}) as sdns:
        ans = await Resolver(sdns.address, FAST).query(NAME, "A")
    assert ans.rcode == "ERROR"
    assert "refused" in ans.error.lower()
