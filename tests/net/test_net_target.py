"""The per-target bound: slowness and exceptions become that target's error, with a safe reason;
the others' results are kept; cancellation from outside still cancels."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from diag.lab.emulators import hostile
from diag.net.target import NotingTransport, bounded, reason_of


async def test_value_and_the_others_kept_when_one_hangs_or_raises() -> None:
    async def fine(n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    async def hang() -> int:
        await asyncio.sleep(60)
        return 0

    async def boom() -> int:
        raise ValueError("byte 0xb3 of the password in position 3")

    t0 = time.monotonic()
    out = await asyncio.gather(
        bounded("a", fine(1), 1.0), bounded("b", hang(), 0.2), bounded("c", boom(), 1.0)
    )
    assert time.monotonic() - t0 < 2.0
    assert out[0].ok and out[0].value == 1 and out[0].error_facts() == []
    assert out[1].error == "timeout" and out[1].value is None
    assert out[2].error == "crash" and out[2].error_type == "ValueError"
    facts = out[2].error_facts()
    assert [(f.key, f.value, f.target) for f in facts] == [
        ("device.error", "crash", "c"),
        ("device.error_type", "ValueError", "c"),
    ]
    # Nothing of the exception's text leaves: it may quote the device or a secret.
    assert "0xb3" not in repr(out[2]) and "password" not in repr(out[2])


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ReadTimeout("x"), "timeout"),
        (httpx.ConnectError("x"), "connect"),
        (httpx.RemoteProtocolError("x"), "protocol"),
        (KeyError("FOO"), "crash"),
        (NotImplementedError(), "crash"),
        (UnicodeEncodeError("ascii", "ł", 0, 1, "no"), "crash"),
    ],
)
def test_reasons(exc: BaseException, reason: str) -> None:
    assert reason_of(exc) == reason


async def test_outside_cancellation_goes_on_up() -> None:
    async def slow() -> int:
        await asyncio.sleep(10)
        return 1

    task = asyncio.ensure_future(bounded("a", slow(), 5.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("mode", ["trickle-headers", "trickle-body"])
async def test_a_trickling_device_is_ended_by_the_whole_request_bound(mode: str) -> None:
    # httpx's 3 s timeout is per read: a byte a second never trips it; the bound does.
    async with hostile.serve(mode) as port:
        client = httpx.AsyncClient(timeout=3.0, transport=NotingTransport())
        async with client:
            t0 = time.monotonic()
            out = await bounded("cam", client.get(f"http://127.0.0.1:{port}/"), 1.5)
            took = time.monotonic() - t0
    assert out.error == "timeout" and out.reason() == "timeout"
    assert 1.4 < took < 3.0


async def test_the_transport_notes_a_refused_connection(unused_tcp_port: int) -> None:
    async def get() -> str:
        async with httpx.AsyncClient(transport=NotingTransport()) as client:
            try:
                await client.get(f"http://127.0.0.1:{unused_tcp_port}/")
            except httpx.HTTPError:
                return "error"
        return "ok"

    out = await bounded("cam", get(), 3.0)
    assert out.value == "error" and out.noted == ("connect",) and out.reason() == "connect"
