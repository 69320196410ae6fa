"""The SNTP client (diag.net.sntp) against the lab's NTP server on loopback, in every mode: a good
answer's offset, and each broken or hostile answer as a status, never a crash."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from diag.lab.emulators.ntp import MODES, NtpServer, answer
from diag.net import sntp


async def start(mode: str = "ok", offset_s: float = 0.0) -> tuple[asyncio.BaseTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: NtpServer(mode, offset_s), local_addr=("127.0.0.1", 0)
    )
    return transport, transport.get_extra_info("sockname")[1]


@pytest.fixture
async def server() -> AsyncIterator[Callable[..., object]]:
    started: list[asyncio.BaseTransport] = []

    async def up(mode: str = "ok", offset_s: float = 0.0) -> int:
        transport, port = await start(mode, offset_s)
        started.append(transport)
        return port

    yield up
    for t in started:
        t.close()


async def test_a_good_server_answers_with_its_offset(server: Callable[..., object]) -> None:
    port = await server("ok", -3600.0)  # type: ignore[misc]
    ans = await sntp.sntp_query("127.0.0.1", port, timeout_s=1.0)
    assert ans.ok and ans.stratum == 2
    assert ans.offset_s is not None and abs(ans.offset_s + 3600.0) < 0.5
    assert ans.rtt_ms is not None and ans.rtt_ms < 500


async def test_a_synchronized_server_on_time_is_near_zero(server: Callable[..., object]) -> None:
    port = await server()  # type: ignore[misc]
    ans = await sntp.sntp_query("127.0.0.1", port, timeout_s=1.0)
    assert ans.ok and ans.offset_s is not None and abs(ans.offset_s) < 0.5


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("kiss", "kiss"),
        ("unsynchronized", "unsynchronized"),
        ("wrong-origin", "bad-reply"),
        ("short", "bad-reply"),
        ("garbage", "bad-reply"),
        ("silent", "timeout"),
    ],
)
async def test_broken_and_hostile_servers_are_statuses(
    server: Callable[..., object], mode: str, status: str
) -> None:
    port = await server(mode)  # type: ignore[misc]
    ans = await sntp.sntp_query("127.0.0.1", port, timeout_s=0.6, tries=2)
    assert ans.status == status and not ans.ok and ans.offset_s is None
    if mode == "kiss":
        assert ans.info == "RATE"


def test_every_mode_is_tested() -> None:
    assert set(MODES) == {"ok", "kiss", "unsynchronized", "wrong-origin", "short", "garbage",
                          "silent"}  # fmt: skip


async def test_nothing_listening_is_refused_or_timeout() -> None:
    transport, port = await start()
    transport.close()
    await asyncio.sleep(0.05)
    ans = await sntp.sntp_query("127.0.0.1", port, timeout_s=0.5, tries=1)
    assert ans.status in ("refused", "timeout")


def test_offset_is_rfc_4330s_formula_and_eras_wrap() -> None:
    t1 = 2_000_000_000.0  # 2033: the NTP seconds field wraps in 2036
    payload, tx = sntp.request(t1)
    assert len(payload) == 48 and payload[0] == 0x23 and payload[40:48] == tx
    reply = answer(payload, "ok", 10.0, now=lambda: t1 + 0.002)
    assert reply is not None
    info = sntp.parse_response(reply, tx, t1, t1 + 0.004)
    assert info is not None
    status, stratum, offset, _ = sntp.parse_info(info)
    assert status == "ok" and stratum == 2 and offset == pytest.approx(10.0, abs=1e-3)
    after_wrap = 2_200_000_000.0  # 2039: seconds field has wrapped
    assert sntp.from_ntp(sntp.to_ntp(after_wrap), after_wrap) == pytest.approx(after_wrap, abs=1e-6)
    # A zero transmit time or a client-mode echo is not an answer.
    zero = reply[:40] + bytes(8)
    assert sntp.parse_response(zero, tx, t1, t1) is None
    echo = bytes([(reply[0] & ~7) | 3]) + reply[1:]
    assert sntp.parse_response(echo, tx, t1, t1) is None
    assert struct.unpack("!I", reply[4:8])[0] == 0x100
