"""The wan check on loopback fakes: gateway, platform series, captive portal, DDNS."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from fakes import FakeDNS, answer
from netfakes_bpw import LOOPBACK, HelloServer, context, make_site, udp_server

from diag.checks import wan
from diag.model import Device, P2PServer

PUBLIC = "203.0.113.2"
NAMES = {
    "p2p.lab-cloud.test": answer(LOOPBACK),
    "portal-probe.lab-cloud.test": answer(LOOPBACK),
    "ipc1.ddns.lab-cloud.test": answer(PUBLIC),
    "stale.ddns.lab-cloud.test": answer("203.0.113.99"),
}


def facts(out, target: str = ""):  # type: ignore[no-untyped-def]
    return {f.key: f.value for f in out.facts if f.target == target}


@contextlib.asynccontextmanager
async def http_server(head: bytes, body: bytes = b"") -> AsyncIterator[int]:
    """Answers every request with ``head`` (status line + headers) and ``body``."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (await r.readline()) not in (b"\r\n", b""):
            pass
        w.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, LOOPBACK, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def site_for(dns: FakeDNS, hello_port: int, http_port: int, *devices: Device, **kw: object):  # type: ignore[no-untyped-def]
    return make_site(
        servers=(P2PServer("p2p.lab-cloud.test", hello_port, "udp", "hello"),),
        devices=devices,
        resolver=dns.address,
        # Another loopback address: the resolvers (127.0.0.1) are "beyond the gateway".
        gateway="127.0.0.2",
        dns_names=("p2p.lab-cloud.test",),
        independent_resolvers=(dns.address,),
        captive_probe_url=f"http://portal-probe.lab-cloud.test:{http_port}/generate_204",
        **kw,
    )


IPC = Device("ipc1", "ipc", "ip", "198.18.0.21", public_host="ipc1.ddns.lab-cloud.test")
STALE = Device("ipc2", "ipc", "ip", "198.18.0.22", public_host="stale.ddns.lab-cloud.test")


async def test_healthy_path_public_address_and_ddns() -> None:
    with FakeDNS(NAMES) as dns:
        async with (
            udp_server(HelloServer(seen_as=f"{PUBLIC}:40000")) as hp,
            http_server(b"HTTP/1.1 204 No Content\r\n") as web,
        ):
            out = await wan.WanCheck().run(context(site_for(dns, hp, web, IPC), "wan"))
    f = facts(out)
    assert f["wan.gateway_reachable"] is True
    assert f["wan.internet_reachable"] is True
    assert f["wan.loss_pct"] == 0
    assert 0 <= f["wan.rtt_ms"] < 100 and f["wan.jitter_ms"] >= 0
    assert f["wan.captive_portal"] is False
    assert f["wan.only_dns_passes"] is False
    assert f["wan.public_ip"] == PUBLIC
    assert facts(out, "ipc1")["ddns.resolved"] == [PUBLIC]
    assert facts(out, "ipc1")["ddns.matches_public"] is True
    assert out.status == "ok"


async def test_captive_portal_redirect_and_only_dns_passes() -> None:
    redirect = b"HTTP/1.1 302 Found\r\nLocation: http://portal.lab-cloud.test/buy\r\n"
    with FakeDNS(NAMES) as dns:
        async with (
            udp_server(HelloServer(answer=False)) as hp,
            http_server(redirect) as web,
        ):
            out = await wan.WanCheck().run(context(site_for(dns, hp, web), "wan"))
    f = facts(out)
    assert f["wan.captive_portal"] is True
    assert f["wan.http_redirect"] == "http://portal.lab-cloud.test/buy"
    assert f["wan.internet_reachable"] is False
    assert f["wan.only_dns_passes"] is True
    assert f["wan.loss_pct"] == 100
    assert "wan.public_ip" not in f
    assert out.status == "fail"
    assert "portal" in out.summary.render("en")


async def test_ddns_pointing_elsewhere() -> None:
    with FakeDNS(NAMES) as dns:
        async with (
            udp_server(HelloServer(seen_as=f"{PUBLIC}:40000")) as hp,
            http_server(b"HTTP/1.1 204 No Content\r\n") as web,
        ):
            out = await wan.WanCheck().run(context(site_for(dns, hp, web, IPC, STALE), "wan"))
    assert facts(out, "ipc2")["ddns.resolved"] == ["203.0.113.99"]
    assert facts(out, "ipc2")["ddns.matches_public"] is False
    assert facts(out, "ipc1")["ddns.matches_public"] is True
    assert out.status == "warn"
    assert "ipc2" in out.summary.render("pl")


async def test_loss_measured_per_probe() -> None:
    class EveryOther(HelloServer):
        seen = 0

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
            self.seen += 1
            if self.seen % 2:
                super().datagram_received(data, addr)

    srv = EveryOther(seen_as=f"{PUBLIC}:1")
    with FakeDNS(NAMES) as dns:
        async with udp_server(srv) as hp, http_server(b"HTTP/1.1 204 No Content\r\n") as web:
            out = await wan.WanCheck().run(context(site_for(dns, hp, web), "wan"))
    f = facts(out)
    assert srv.seen == wan.SERIES_COUNT
    assert f["wan.loss_pct"] == 50
    assert out.status == "warn"  # 50% > thresholds.loss_pct


async def test_udp_blocked_is_not_link_loss() -> None:
    # The platform's UDP is silent but its TCP relay answers: no loss figure for the link.
    sys.path.insert(0, str(Path(__file__).parent))
    from netfakes_bpw import tcp_server

    with FakeDNS(NAMES) as dns:
        async with (
            udp_server(HelloServer(answer=False)) as hp,
            tcp_server() as relay,
            http_server(b"HTTP/1.1 204 No Content\r\n") as web,
        ):
            site = site_for(dns, hp, web)
            servers = (*site.profile.p2p_servers, P2PServer(LOOPBACK, relay, "tcp", "connect"))
            site = make_site(
                servers=servers,
                resolver=dns.address,
                gateway="127.0.0.2",
                captive_probe_url=site.profile.captive_probe_url,
            )
            out = await wan.WanCheck().run(context(site, "wan"))
    f = facts(out)
    assert f["wan.internet_reachable"] is True
    assert f["wan.series_blocked"] is True
    assert "wan.loss_pct" not in f
    assert out.status == "ok"


async def test_dead_link_is_quick_and_says_so() -> None:
    # The site resolver and the platform are silent: only the gateway answers.
    with FakeDNS({}) as dns:
        async with udp_server(HelloServer(answer=False)) as hp:
            site = site_for(dns, hp, 9)
            site = make_site(
                servers=(P2PServer(LOOPBACK, hp, "udp", "hello"),),
                resolver=dns.address,
                gateway=LOOPBACK,
            )
            ctx = context(site, "wan")
            t0 = asyncio.get_running_loop().time()
            out = await wan.WanCheck().run(ctx)
            took = asyncio.get_running_loop().time() - t0
    f = facts(out)
    assert f["wan.gateway_reachable"] is True
    assert f["wan.internet_reachable"] is False
    assert f["wan.only_dns_passes"] is False
    assert out.status == "fail"
    assert took < 3.0


@pytest.mark.parametrize(
    ("status", "location", "body", "expect", "captive"),
    [
        (204, None, b"", None, False),
        (200, None, b"success\n", "success", False),
        (200, None, b"<html>Buy more data</html>", "success", True),
        (302, "http://portal/", b"", None, True),
        (200, None, b"<html>portal</html>", None, True),
        (500, None, b"", None, True),
    ],
)
def test_judge_captive(
    status: int, location: str | None, body: bytes, expect: str | None, captive: bool
) -> None:
    assert wan.judge_captive(status, location, body, expect).captive is captive


def test_resolver_on_the_gateway_or_a_local_stub_proves_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert wan.resolver_beyond_gateway("198.51.100.53", "198.18.0.1") is True
    assert wan.resolver_beyond_gateway("198.18.0.1", "198.18.0.1") is False
    assert wan.resolver_beyond_gateway("198.18.0.1:5353", "198.18.0.1") is False
    from diag.net.linux import LinuxBackend

    class Stub(LinuxBackend):
        def __init__(self, servers: list[str]) -> None:
            super().__init__()
            self.servers = servers

        def nameservers(self) -> list[str]:
            return self.servers

    assert wan.resolver_beyond_gateway("system", "198.18.0.1", Stub(["127.0.0.53"])) is False
    assert wan.resolver_beyond_gateway("system", "198.18.0.1", Stub(["198.51.100.53"])) is True
