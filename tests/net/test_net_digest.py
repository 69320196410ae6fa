"""Digest auth that never raises anything but a clean error: the RFC vectors, every malformed
challenge of the campaign, and random headers (hypothesis)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.lab.emulators import hostile
from diag.net import digest, target

PASSWORD = "Circle Of Life"


def test_rfc2617_vector() -> None:
    ch = digest.parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert ch.qop == "auth" and ch.algorithm == "MD5"
    header = digest.answer(ch, "GET", "/dir/index.html", "Mufasa", PASSWORD, "0a4f113b", 1)
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header
    assert PASSWORD not in header


def test_rfc7616_sha256_vector() -> None:
    ch = digest.parse_challenge(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    # RFC 7616 section 3.9.1 spells the password with a lower-case "of".
    header = digest.answer(ch, "GET", "/dir/index.html", "Mufasa", "Circle of Life", cnonce, 1)
    assert 'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"' in header


@pytest.mark.parametrize("mode", sorted(hostile.DIGEST_CHALLENGES))
def test_every_hostile_challenge_is_a_clean_error(mode: str) -> None:
    with pytest.raises(digest.DigestChallengeError) as err:
        digest.parse_challenge(hostile.DIGEST_CHALLENGES[mode])
    assert isinstance(err.value, httpx.HTTPError)
    assert "hostile" not in str(err.value) and "abc123" not in str(err.value)


@pytest.mark.parametrize(
    "header",
    [
        "Basic realm=x",
        "Digest",
        'Digest realm="x"',
        'Digest nonce="n"',
        'Digest realm="x", nonce="n", realm="y"',
        'Digest realm="x", nonce="n", =v',
        'Digest realm="x\x1b[2J", nonce="n"',
        'Digest realm="x", nonce="n", algorithm=SHA-512-256',
        'Digest realm="x", nonce="n", qop=""',
        "Digest " + "a=b, " * 2000,
    ],
)
def test_more_malformed_challenges(header: str) -> None:
    with pytest.raises(digest.DigestChallengeError):
        digest.parse_challenge(header)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_no_header_raises_anything_else(text: str) -> None:
    for header in (text, "Digest " + text, f'Digest realm="r", nonce="n", {text}'):
        try:
            ch = digest.parse_challenge(header)
        except digest.DigestChallengeError:
            continue
        try:
            digest.answer(ch, "GET", "/x", "admin", "pw")
        except digest.DigestChallengeError:
            pass


@pytest.mark.parametrize("mode", sorted(hostile.DIGEST_CHALLENGES))
async def test_against_a_hostile_server_only_an_http_error_comes_out(mode: str) -> None:
    async with hostile.serve(mode) as port, httpx.AsyncClient() as client:
        auth = digest.DigestAuth("admin", "S3cr3t-Pa55!word")
        with pytest.raises(httpx.HTTPError) as err:
            await client.get(f"http://127.0.0.1:{port}/ISAPI/System/deviceInfo", auth=auth)
        assert isinstance(err.value, digest.DigestChallengeError)
        assert "S3cr3t" not in repr(err.value) and "S3cr3t" not in repr(auth)


async def test_the_reason_is_noted_for_the_target() -> None:
    async def login(port: int) -> int:
        async with httpx.AsyncClient() as client:
            auth = digest.DigestAuth("admin", "pw")
            try:
                r = await client.get(f"http://127.0.0.1:{port}/", auth=auth)
            except httpx.HTTPError:
                return -1  # what the device adapters do: "error"
            return r.status_code

    async with hostile.serve("digest-bare-token") as port:
        out = await target.bounded("cam", login(port), 5.0)
    assert out.ok and out.value == -1 and out.reason() == "bad-challenge"


async def test_a_good_challenge_is_answered_once(unused_tcp_port: int) -> None:
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.split("\r\n")
            seen.append(next((ln for ln in lines if ln.lower().startswith("authorization")), ""))
            # Always 401: the second is the device's verdict on the password, not a new round.
            ch = 'Digest realm="cam", nonce="n1", qop="auth", algorithm=MD5'
            body = f"HTTP/1.1 401 No\r\nWWW-Authenticate: {ch}\r\nContent-Length: 0\r\n\r\n"
            writer.write(body.encode())
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", unused_tcp_port)
    async with server, httpx.AsyncClient() as client:
        r = await client.get(
            f"http://127.0.0.1:{unused_tcp_port}/a", auth=digest.DigestAuth("admin", "pw")
        )
    assert r.status_code == 401
    assert len(seen) == 2 and seen[0] == "" and 'username="admin"' in seen[1]
