"""The one-time server on loopback: token, routes, size cap, one result, no echo, TLS option."""

from __future__ import annotations

import asyncio
import json
import re
import ssl

import pytest

from diag.phone.result import MAX_BODY_BYTES, PhoneResult
from diag.phone.server import Events, PageConfig, PhoneServer, page_config
from phone.samples import ENDPOINTS, STUN, raw

CFG = PageConfig(STUN, ENDPOINTS)


async def request(
    server: PhoneServer, data: bytes, tls: bool = False
) -> tuple[int, dict[str, str], bytes]:
    ctx = None
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx)
    writer.write(data)
    await writer.drain()
    resp = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return status, headers, body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n".encode()


def post(path: str, body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n\r\n".encode()
    return head + body


@pytest.fixture
async def server() -> PhoneServer:
    s = PhoneServer("127.0.0.1", CFG)
    await s.start()
    yield s  # type: ignore[misc]
    await s.close()


async def test_page_is_served_only_behind_the_token(server: PhoneServer) -> None:
    status, headers, body = await request(server, get(f"/{server.token}/"))
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    page = body.decode()
    assert "198.51.100.20:3478" in page and server.token in page
    # Self-contained: no external script, style, font or image.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "https://api.lab-cloud.test:8443" in csp
    assert headers["cache-control"] == "no-store"
    for path in ("/", "/x/", f"/{server.token[:-1]}/", f"/{server.token}/../etc/passwd",
                 f"/{server.token}/page.html", "/favicon.ico", f"/{server.token}"):  # fmt: skip
        status, _, body = await request(server, get(path))
        assert status == 404 and body == b"", path


async def test_connect_is_announced_once(server: PhoneServer) -> None:
    seen: list[str] = []
    server.events = Events(on_connect=lambda peer, _ua: seen.append(peer))
    await request(server, get(f"/{server.token}/"))
    await request(server, get(f"/{server.token}/"))
    assert seen == ["127.0.0.1"]


async def test_first_valid_result_ends_the_wait(server: PhoneServer) -> None:
    got: list[PhoneResult] = []
    server.events = Events(on_result=got.append)
    waiter = asyncio.create_task(server.wait(10))
    status, _, body = await request(server, post(f"/{server.token}/result", raw()))
    assert status == 200 and json.loads(body) == {"ok": True}
    res = await asyncio.wait_for(waiter, 5)
    assert res is not None and res is got[0] and res.peer == "127.0.0.1"


async def test_hostile_results_are_refused_without_echo(server: PhoneServer) -> None:
    evil = b'{"v": 1, "sent_at_ms": 1, "ua": "<script>alert(1)</script>\\u202e"}'
    status, _headers, body = await request(server, post(f"/{server.token}/result", evil))
    assert status == 400
    assert b"script" not in body and json.loads(body) == {"ok": False, "field": "ua"}
    assert server.result is None and server.rejected == 1
    status, _, _ = await request(server, post(f"/{server.token}/result", b"x", MAX_BODY_BYTES + 1))
    assert status == 413
    status, _, _ = await request(server, post("/wrong/result", raw()))
    assert status == 404
    status, _, _ = await request(server, get(f"/{server.token}/result"))
    assert status == 405
    # Still waiting for a real one; a second valid result after the first is refused.
    assert (await request(server, post(f"/{server.token}/result", raw())))[0] == 200
    assert (await request(server, post(f"/{server.token}/result", raw())))[0] == 409


async def test_garbage_requests_do_not_kill_the_server(server: PhoneServer) -> None:
    for data in (b"\r\n\r\n", b"GARBAGE\r\n\r\n", b"GET / HTTP/9\r\n\r\n", b"A" * 20000,
                 post(f"/{server.token}/result", b"", 0)[:-4] + b"\r\n\r\n"):  # fmt: skip
        try:
            await request(server, data)
        except (ConnectionError, IndexError, ValueError):
            pass
    assert (await request(server, get(f"/{server.token}/")))[0] == 200


async def test_wait_times_out_and_closes() -> None:
    s = PhoneServer("127.0.0.1", CFG)
    await s.start()
    assert await s.wait(0.2) is None
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", s.port)


async def test_https_option_serves_with_a_throwaway_certificate() -> None:
    s = PhoneServer("127.0.0.1", CFG, tls=True)
    await s.start()
    try:
        assert s.url.startswith("https://127.0.0.1:")
        status, _, body = await request(s, get(f"/{s.token}/"), tls=True)
        assert status == 200 and b"Phone check" in body
    finally:
        await s.close()


def test_page_config_keeps_only_https_endpoints() -> None:
    cfg = page_config([("198.51.100.20", 3478)], ["http://x/", "https://a/", "https://a/"])
    assert cfg.stun == ("198.51.100.20:3478",) and cfg.endpoints == ("https://a/",)


def test_config_cannot_break_out_of_its_script_element() -> None:
    s = PhoneServer("127.0.0.1", PageConfig((), ("https://a/</script><script>alert(1)//",)))
    page = s.page().decode()
    assert "</script><script>alert" not in page
