"""The p2p check against loopback fakes: hello, echo, TCP connect, HTTPS with certificate checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fakes import (
    HANG,
    NXDOMAIN,
    FakeDNS,
    HelloResponder,
    HttpsServer,
    TcpListener,
    UdpEcho,
    answer,
    closed_tcp_port,
    closed_udp_port,
    make_ca,
    make_cert,
    make_site,
    run_check,
    wait_until,
)
from hypothesis import given
from hypothesis import strategies as st

from diag.checks.p2p import P2PCheck
from diag.model import CheckResult
from diag.net.udp import parse_welcome

# Short UDP waits keep the unanswered cases fast; the real backoff is in p2p.py.
FAST = (0.1, 0.2)


def srv(name: str, port: int, protocol: str, probe: str, host: str = "127.0.0.1") -> dict[str, Any]:
    return {"name": name, "host": host, "port": port, "protocol": protocol, "probe": probe}


def facts_of(res: CheckResult, target: str) -> dict[str, Any]:
    return {f.key: f.value for f in res.facts if f.target == target}


async def check(servers: list[dict[str, Any]], **kw: Any) -> CheckResult:
    network = kw.pop("network", {})
    site = make_site({"p2p_servers": servers, **kw}, network)
    return await run_check(P2PCheck(FAST, dns_attempts=FAST), site)


async def test_hello_reports_public_address_and_rtt() -> None:
    with HelloResponder() as hello:
        res = await check([srv("login", hello.port, "udp", "hello")])
    f = facts_of(res, "login")
    assert res.status == "ok", res.summary
    assert f["p2p.reachable"] is True
    assert f["p2p.public_address"].startswith("127.0.0.1:")
    assert 0 <= f["p2p.rtt_ms"] < 1000
    assert "p2p.error" not in f
    # A literal IP is not resolved.
    assert "p2p.resolved" not in f
    assert res.metrics["rtt_ms.login"].unit == "ms"


async def test_hello_is_retransmitted_with_backoff() -> None:
    with HelloResponder(drop_first=1) as hello:
        t0 = time.monotonic()
        res = await check([srv("login", hello.port, "udp", "hello")])
        elapsed = time.monotonic() - t0
        assert len(hello.received) == 2
        # A retransmission carries a fresh nonce (diag.net.udp_exchange accepts the answer to
        # any probe it sent, so a late answer to the first is not lost).
        assert all(r.startswith(b"DIAGP2P1 HELLO ") for r in hello.received)
        assert hello.received[0] != hello.received[1]
    assert facts_of(res, "login")["p2p.reachable"] is True
    assert elapsed >= FAST[0]


async def test_hello_with_garbage_reply_is_bad_reply() -> None:
    with HelloResponder(reply=lambda d: b"\x00\xffDIAGP2P1 WELCOME nope") as hello:
        res = await check([srv("login", hello.port, "udp", "hello")])
    f = facts_of(res, "login")
    assert res.status == "fail"
    assert f["p2p.reachable"] is False
    assert f["p2p.error"] == "bad-reply"


async def test_hello_to_closed_port_is_refused() -> None:
    res = await check([srv("login", closed_udp_port(), "udp", "hello")])
    f = facts_of(res, "login")
    assert f["p2p.reachable"] is False
    assert f["p2p.error"] in ("refused", "timeout")


async def test_udp_echo() -> None:
    with UdpEcho() as echo:
        res = await check([srv("echo", echo.port, "udp", "udp-echo")])
    assert facts_of(res, "echo")["p2p.reachable"] is True


async def test_tcp_connect_ok_and_refused_gives_warn() -> None:
    with TcpListener() as tcp:
        res = await check(
            [
                srv("relay", tcp.port, "tcp", "connect"),
                srv("dead", closed_tcp_port(), "tcp", "connect"),
            ]
        )
        assert wait_until(lambda: tcp.accepted == 1)
    assert res.status == "warn"
    assert facts_of(res, "relay")["p2p.reachable"] is True
    assert facts_of(res, "dead") == {"p2p.reachable": False, "p2p.error": "refused"}
    assert res.metrics["reachable"].value == 1 and res.metrics["servers"].value == 2


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d: Path = tmp_path_factory.mktemp("certs")
    ca = make_ca(d)
    return {
        "ca": ca,
        "good": make_cert(d, ("api.platform.test",), ("127.0.0.1",), ca, "good"),
        "self": make_cert(d, ("api.platform.test",), ("127.0.0.1",), None, "self"),
        "wrongname": make_cert(d, ("other.test",), (), ca, "wrong"),
    }


async def test_https_with_ca_signed_cert_through_site_resolver(certs: dict[str, Any]) -> None:
    with (
        HttpsServer(certs["good"]) as https,
        FakeDNS({"api.platform.test": answer("127.0.0.1")}) as dns,
    ):
        res = await check(
            [srv("api", https.port, "https", "https", host="api.platform.test")],
            ca_file=str(certs["ca"].cert),
            network={"site_resolver": dns.address},
        )
        assert https.hits == ["/"]
        assert ("api.platform.test", "A") in dns.queries
    f = facts_of(res, "api")
    assert res.status == "ok", res.summary
    assert f["p2p.tls_valid"] is True
    assert f["p2p.resolved"] == ["127.0.0.1"]


@pytest.mark.parametrize("cert", ["self", "wrongname"])
async def test_https_certificate_errors(certs: dict[str, Any], cert: str) -> None:
    with (
        HttpsServer(certs[cert]) as https,
        FakeDNS({"api.platform.test": answer("127.0.0.1")}) as dns,
    ):
        res = await check(
            [srv("api", https.port, "https", "https", host="api.platform.test")],
            ca_file=str(certs["ca"].cert),
            network={"site_resolver": dns.address},
        )
    f = facts_of(res, "api")
    assert f["p2p.reachable"] is False
    assert f["p2p.error"] == "tls"
    assert f["p2p.tls_valid"] is False


async def test_https_server_error_is_http_code(certs: dict[str, Any]) -> None:
    with HttpsServer(certs["good"], status=503) as https:
        res = await check([srv("api", https.port, "https", "https")], ca_file=str(certs["ca"].cert))
    f = facts_of(res, "api")
    assert f["p2p.reachable"] is False
    assert f["p2p.error"] == "http-503"
    assert f["p2p.tls_valid"] is True


async def test_plain_http_probe() -> None:
    with HttpsServer(None) as http:
        res = await check([srv("status", http.port, "http", "https")])
    f = facts_of(res, "status")
    assert f["p2p.reachable"] is True
    assert "p2p.tls_valid" not in f


@pytest.mark.parametrize("beh", [NXDOMAIN, HANG])
async def test_unresolvable_name_is_dns_error(beh: Any) -> None:
    with FakeDNS({"login.platform.test": beh}) as dns:
        t0 = time.monotonic()
        res = await check(
            [srv("login", 32100, "udp", "hello", host="login.platform.test")],
            network={"site_resolver": dns.address},
        )
        assert time.monotonic() - t0 < 2
    assert res.status == "fail"
    assert facts_of(res, "login") == {
        "p2p.reachable": False,
        "p2p.error": "dns",
        "p2p.resolved": [],
    }


def test_parse_welcome() -> None:
    assert parse_welcome(b"DIAGP2P1 WELCOME ab 203.0.113.5:4000", "ab") == "203.0.113.5:4000"
    assert parse_welcome(b"DIAGP2P1 WELCOME other 203.0.113.5:4000", "ab") is None
    assert parse_welcome(b"DIAGP2P1 WELCOME ab 203.0.113.5", "ab") is None
    assert parse_welcome(b"DIAGP2P1 WELCOME ab :x", "ab") is None
    assert parse_welcome(b"\xff\xfe", "ab") is None
    assert parse_welcome(b"", "ab") is None


async def test_https_to_closed_port_is_refused() -> None:
    res = await check([srv("api", closed_tcp_port(), "https", "https")])
    assert facts_of(res, "api") == {"p2p.reachable": False, "p2p.error": "refused"}


@given(st.binary(max_size=200), st.text(min_size=1, max_size=20))
def test_parse_welcome_never_raises(data: bytes, nonce: str) -> None:
    out = parse_welcome(data, nonce)
    assert out is None or (len(out) <= 64 and ":" in out)


async def test_hostile_hello_replies_are_bad_reply_facts() -> None:
    replies = iter([b"\x00" * 600, b"DIAGP2P1 WELCOME", "DIAGP2P1 WELCOME x ąę:1".encode()])
    with HelloResponder(reply=lambda d: next(replies, b"")) as hello:
        res = await check([srv("login", hello.port, "udp", "hello")])
    assert facts_of(res, "login")["p2p.error"] == "bad-reply"
