"""Endless or huge HTTP answers from the router (UPnP) and a platform server: read at most a cap.

httpx's timeout is per read, so a server that streams without pause never times out; a check that
buffers the whole body would eat memory until the run's deadline. Loopback servers only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from diag.checks import nat_discovery as nd
from diag.checks import p2p
from diag.model import P2PServer
from diag.net.http import read_capped

CHUNK = b"<x>" + b"A" * 65536 + b"</x>"


@pytest.fixture
def endless() -> Iterator[tuple[int, list[int]]]:
    """An HTTP server on 127.0.0.1 that answers 200 and streams a body forever."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    sent = [0]
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                piece = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
                while not stop.is_set() and sent[0] < 2_000_000_000:
                    conn.sendall(piece)
                    sent[0] += len(CHUNK)
            except OSError:
                pass

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield srv.getsockname()[1], sent
    finally:
        stop.set()
        srv.close()


async def test_upnp_answers_are_read_up_to_the_cap(endless: tuple[int, list[int]]) -> None:
    port, sent = endless
    async with httpx.AsyncClient(timeout=1.5, trust_env=False) as client:
        r = await asyncio.wait_for(
            read_capped(client, "GET", f"http://127.0.0.1:{port}/desc.xml", nd.MAX_BODY), 10
        )
    assert r.status_code == 200 and r.complete is None
    # Was: client.get() buffered the whole endless body (no per-read timeout ever fired).
    assert sent[0] < 50 * nd.MAX_BODY


async def test_upnp_answer_within_the_cap_is_returned() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=httpx.ByteStream(b"<ok/>"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        r = await read_capped(client, "POST", "http://198.18.0.1/ctl", nd.MAX_BODY)
        assert (r.status_code, r.complete) == (200, b"<ok/>")


async def test_platform_http_probe_does_not_read_an_endless_body(
    endless: tuple[int, list[int]],
) -> None:
    port, sent = endless
    server = P2PServer("127.0.0.1", port, "http", "https")
    found = await asyncio.wait_for(p2p.probe_https(server, "127.0.0.1", None, timeout=2.0), 10)
    assert found.reachable is True and found.error is None
    assert sent[0] < 100 * len(CHUNK)


@pytest.mark.parametrize("ca", ["missing", "not-pem"])
async def test_unreadable_ca_bundle_loses_only_the_https_servers(tmp_path: Path, ca: str) -> None:
    """A broken ``ca_file`` is a local problem: the UDP server's result survives, the HTTPS
    server says ``ca-file`` and has no reachability fact (not measured, so no platform verdict).
    Was: create_default_context raised out of gather() and the whole p2p check crashed."""
    from fakes import HelloResponder, make_site, run_check

    from diag.checks.p2p import P2PCheck

    path = tmp_path / "ca.pem"
    if ca == "not-pem":
        path.write_text("this is not a certificate\n")
    with HelloResponder() as hello:
        servers = [
            {"name": "login", "host": "127.0.0.1", "port": hello.port, "protocol": "udp"},
            {"name": "api", "host": "127.0.0.1", "port": 9, "protocol": "https"},
        ]
        site = make_site({"p2p_servers": servers, "ca_file": str(path)})
        res = await run_check(P2PCheck((0.1, 0.2), dns_attempts=(0.1, 0.2)), site)
    by = {(f.key, f.target): f.value for f in res.facts}
    assert res.status != "error", res.summary
    assert by[("p2p.reachable", "login")] is True
    assert by[("p2p.error", "api")] == "ca-file"
    assert ("p2p.reachable", "api") not in by


async def test_captive_portal_page_is_read_up_to_its_cap(endless: tuple[int, list[int]]) -> None:
    # A captive portal is hostile by definition: an endless page must not be buffered whole.
    from fakes import make_site

    from diag.checks import wan

    port, sent = endless
    site = make_site()
    result = await asyncio.wait_for(
        wan.fetch_captive(site, f"http://127.0.0.1:{port}/generate_204"), 10
    )
    assert result is not None
    assert sent[0] < 200 * len(CHUNK)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 50_000 + b"]" * 50_000,
        b'{"bytes": 1e400, "seconds": 1}',
        b'{"bytes": 5, "seconds": 1e400}',
    ],
    ids=["deep", "inf bytes", "inf seconds"],
)
async def test_speedtest_upload_answer_that_is_not_a_count(body: bytes) -> None:
    """The speed-test server's JSON answer: deep nesting, a count of infinity."""
    from diag.checks import bandwidth

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    ep = bandwidth.Endpoint(base="http://198.18.0.1", host_header="speed", sni=None)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        t = await bandwidth.upload_once(client, ep, 0.0005)
    # Falls back to the client's own count and time, never raises.
    assert t.error is None


@pytest.mark.parametrize("ca", ["missing", "not-pem"])
async def test_captive_probe_with_an_unreadable_ca_bundle(tmp_path: Path, ca: str) -> None:
    # Was: FileNotFoundError/SSLError while building the client took the whole wan check down.
    from fakes import make_site

    from diag.checks import wan

    path = tmp_path / "ca.pem"
    if ca == "not-pem":
        path.write_text("not a certificate\n")
    site = make_site({"ca_file": str(path)})
    result = await asyncio.wait_for(wan.fetch_captive(site, "https://127.0.0.1:9/generate_204"), 10)
    assert result.captive is None and result.error == "ca-file"


async def test_speed_test_with_an_unreadable_ca_bundle(tmp_path: Path) -> None:
    # Was: FileNotFoundError from building the HTTPS transport: "check crashed".
    from fakes import make_site, run_check

    from diag.checks.bandwidth import BandwidthCheck

    site = make_site(
        {"speedtest_url": "https://127.0.0.1:9/", "ca_file": str(tmp_path / "missing.pem")}
    )
    res = await run_check(BandwidthCheck(), site)
    assert res.status == "error"
    assert {f.key: f.value for f in res.facts}["bw.error"] == "ca-file"
    assert "CA bundle" in res.summary.render("en")
    assert "CA" in res.summary.render("pl") and "nie można" in res.summary.render("pl")
