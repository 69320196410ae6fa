"""The ndt7 client and the lab's ndt7 server on loopback: protocol, measurements, windows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

sys.path.insert(0, str(Path(__file__).parent))
import itertools

from netfakes_bpw import LOOPBACK, context, make_site

from diag.checks import bandwidth, ndt7
from diag.lab.emulators import ndt7 as server
from diag.net import tcpinfo


@contextlib.asynccontextmanager
async def ndt7_server(cc: str | None = None) -> AsyncIterator[int]:
    """The lab's ndt7 server on a free loopback port, in this test's loop."""
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    from websockets.asyncio.server import serve

    async def main() -> None:
        async with serve(
            lambda ws: server.handler(ws, cc),
            LOOPBACK,
            0,
            subprotocols=[server.SUBPROTOCOL],  # type: ignore[list-item]
            process_request=server.check_request,
            max_size=server.MAX_RECEIVE,
            compression=None,
            ping_interval=None,
        ) as srv:
            ready.set_result(next(iter(srv.sockets)).getsockname()[1])
            await stop.wait()

    task = asyncio.create_task(main())
    try:
        yield await ready
    finally:
        stop.set()
        await task


async def direct(host: str) -> str:
    return host


# --- pure parts ----------------------------------------------------------------------------------


def test_window_rate_of_a_steady_counter_and_of_a_staircase() -> None:
    steady = [(t / 50, t / 50 * 1e6) for t in range(100)]
    assert ndt7.window_rate(steady) == pytest.approx(1e6)
    # 64 kbit/s: one 1448-byte segment every 0.181 s, sampled every 20 ms for 2 s.
    seg_t = 1448 / 8000
    stair = [(i * 0.02, 1448.0 * int(i * 0.02 / seg_t)) for i in range(100)]
    assert ndt7.window_rate(stair) == pytest.approx(8000, rel=0.05)
    assert ndt7.window_rate([(0.0, 0.0)]) is None
    # Nothing got through in the window: zero, a measurement, not an error.
    assert ndt7.window_rate([(0.0, 5.0), (1.0, 5.0), (2.0, 5.0)]) == 0


def test_upload_cap_holds_a_slow_link_and_lifts_on_a_fast_one() -> None:
    mss = 1448
    # 64 kbit/s (8000 B/s) after the shaper's 3200-byte burst: the cap is 1.5 s of the rate
    # (12 kB, whole segments), not the burst's fourfold rate.
    slow = ndt7._Counters(mss=mss)
    slow.kernel = [(0.0, 300.0), (0.02, 3500.0)]
    assert ndt7._upload_cap(slow) == ndt7.INITIAL_WINDOW
    slow.kernel += [(0.25 + i * 0.02, 3500.0 + i * 160.0) for i in range(40)]
    cap = ndt7._upload_cap(slow)
    assert cap is not None and cap % mss == 0
    assert 8000 * ndt7.QUEUE_S <= cap < 8000 * ndt7.QUEUE_S + mss
    # A link that delivers the whole initial allowance within 0.1 s is never capped.
    fast = ndt7._Counters(mss=mss)
    fast.kernel = [(0.0, 0.0), (0.02, 9000.0), (0.04, 20000.0)]
    assert ndt7._upload_cap(fast) is None
    # 1 Mbit/s: 1.5 s of it is above SLOW_WINDOW_BYTES, so no cap either.
    mid = ndt7._Counters(mss=mss)
    mid.kernel = [(i * 0.02, i * 2500.0) for i in range(30)]
    assert ndt7._upload_cap(mid) is None


def test_locate_answer_first_usable_server_and_failures() -> None:
    urls = {
        "wss:///ndt/v7/download": "wss://ndt-x.example/ndt/v7/download?access_token=t",
        "wss:///ndt/v7/upload": "wss://ndt-x.example/ndt/v7/upload?access_token=t",
    }
    t = ndt7.locate_urls({"results": [{"machine": "mlab1", "urls": urls}]}, "wss")
    assert t.download_url.startswith("wss://ndt-x.example/ndt/v7/download")
    assert t.machine == "mlab1"
    for bad, why in (
        ({}, "no-capacity"),  # the spec: an empty answer is M-Lab out of capacity
        ({"results": []}, "no-capacity"),
        ([], "not-json-object"),
        ({"results": [{"urls": {"wss:///ndt/v7/download": "ftp://x/"}}]}, "no-urls"),
        ({"results": [None, 3, {"urls": "x"}]}, "no-urls"),
    ):
        with pytest.raises(ndt7.Ndt7Error, match=why):
            ndt7.locate_urls(bad, "wss")


def test_direct_target_names_the_spec_paths() -> None:
    t = ndt7.direct_target("ws://198.51.100.80:8080")
    assert t.download_url.startswith("ws://198.51.100.80:8080/ndt/v7/download?client_name=diag")
    assert t.upload_url.startswith("ws://198.51.100.80:8080/ndt/v7/upload?")


def test_tcp_info_parse_offsets_and_short_structs() -> None:
    raw = bytearray(232)
    struct.pack_into("=I", raw, 16, 1448)  # snd_mss
    struct.pack_into("=I", raw, 28, 3)  # sacked
    struct.pack_into("=I", raw, 68, 25_000)  # rtt (us)
    struct.pack_into("=Q", raw, 120, 1_000_000)  # bytes_acked
    struct.pack_into("=Q", raw, 128, 77)  # bytes_received
    struct.pack_into("=I", raw, 148, 9_000)  # min_rtt
    info = tcpinfo.parse(bytes(raw))
    assert info is not None
    assert (info.snd_mss, info.rtt_us, info.min_rtt_us) == (1448, 25_000, 9_000)
    assert info.bytes_received == 77
    # SACKed segments reached the peer although the cumulative ACK waits for a retransmission.
    assert info.delivered_bytes == 1_000_000 + 3 * 1448
    # No duplicate reported: what the link carried is what was delivered.
    assert info.carried_bytes == info.delivered_bytes
    # Two duplicates the peer reported (D-SACK): spurious copies that crossed the link.
    struct.pack_into("=I", raw, 216, 2)  # dsack_dups
    struct.pack_into("=Q", raw, 208, 2 * 1448)  # bytes_retrans: the two copies
    struct.pack_into("=I", raw, 100, 2)  # total_retrans: both were copies, nothing was lost
    dup = tcpinfo.parse(bytes(raw))
    assert dup is not None and dup.dsack_dups == 2
    assert dup.carried_bytes == 1_000_000 + 3 * 1448 + 2 * 1448
    assert dup.delivered_bytes == info.delivered_bytes
    # A copy is at most what was retransmitted (loopback: 47 kB segments, copies of a part).
    struct.pack_into("=Q", raw, 208, 1000)  # bytes_retrans
    part = tcpinfo.parse(bytes(raw))
    assert part is not None and part.carried_bytes == 1_000_000 + 3 * 1448 + 1000
    # A retransmission that was not a copy: the path lost something; copies are not counted.
    struct.pack_into("=I", raw, 100, 3)  # total_retrans
    lossy = tcpinfo.parse(bytes(raw))
    assert lossy is not None and lossy.carried_bytes == lossy.delivered_bytes
    assert info.to_ndt7(5)["ElapsedTime"] == 5
    # An old kernel's shorter struct: the counters it lacks are unknown, not zero.
    old = tcpinfo.parse(bytes(raw[:104]))
    assert old is not None and old.bytes_acked is None and old.delivered_bytes is None
    assert old.carried_bytes is None and old.dsack_dups is None
    assert tcpinfo.parse(b"\x00" * 20) is None


# --- the lab server, as the spec says ------------------------------------------------------------


async def test_server_refuses_requests_that_are_not_ndt7() -> None:
    async with ndt7_server() as port:
        base = f"ws://{LOOPBACK}:{port}"
        for url, protocols in (
            (f"{base}/ndt/v7/download", None),  # no subprotocol
            (f"{base}/ndt/v7/other", [ndt7.SUBPROTOCOL]),
            (f"{base}/ndt/v7/upload?" + "x" * 5000, [ndt7.SUBPROTOCOL]),
        ):
            with pytest.raises(InvalidStatus) as exc:
                async with connect(url, subprotocols=protocols, proxy=None):  # type: ignore[arg-type]
                    pass
            assert exc.value.response.status_code == 400


async def test_server_download_messages_scale_and_measurements_every_250_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "TRANSFER_S", 1.2)
    sizes: list[int] = []
    measurements: list[dict[str, Any]] = []
    arrivals: list[float] = []
    async with (
        ndt7_server(cc="bbr") as port,
        connect(
            f"ws://{LOOPBACK}:{port}/ndt/v7/download",
            subprotocols=[ndt7.SUBPROTOCOL],  # type: ignore[list-item]
            max_size=1 << 24,
            proxy=None,
        ) as ws,
    ):
        assert ws.subprotocol == ndt7.SUBPROTOCOL
        t0 = time.monotonic()
        async for msg in ws:  # the server closes after its transfer time
            if isinstance(msg, str):
                measurements.append(json.loads(msg))
                arrivals.append(time.monotonic() - t0)
            else:
                sizes.append(len(msg))
        took = time.monotonic() - t0
    assert 1.1 < took < 3.0
    assert sizes[0] == 1 << 13 and max(sizes) > 1 << 13 and max(sizes) <= 1 << 24
    assert 3 <= len(measurements) <= 6
    elapsed = [m["AppInfo"]["ElapsedTime"] for m in measurements]
    assert all(b - a >= 240_000 for a, b in itertools.pairwise(elapsed))
    first = measurements[0]
    assert first["Origin"] == "server" and first["Test"] == "download"
    assert first["ConnectionInfo"]["UUID"]
    assert "ConnectionInfo" not in measurements[-1]
    if sys.platform == "linux":
        tcp = measurements[-1]["TCPInfo"]
        assert tcp["BytesAcked"] > 0 and tcp["MinRTT"] >= 0 and "RTT" in tcp
        assert measurements[-1]["AppInfo"]["NumBytes"] >= tcp["BytesAcked"] * 0.5


async def test_server_upload_counts_and_reports_bytes_received(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "TRANSFER_S", 1.0)
    got: list[dict[str, Any]] = []
    sent = 0
    async with (
        ndt7_server() as port,
        connect(
            f"ws://{LOOPBACK}:{port}/ndt/v7/upload",
            subprotocols=[ndt7.SUBPROTOCOL],  # type: ignore[list-item]
            proxy=None,
        ) as ws,
    ):

        async def read() -> None:
            async for msg in ws:
                assert isinstance(msg, str), "the server sent binary during the upload"
                got.append(json.loads(msg))

        reader = asyncio.create_task(read())
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            await ws.send(b"\x00" * 65536)
            sent += 65536
        await asyncio.wait_for(reader, 5)
    assert got and got[-1]["Test"] == "upload"
    assert 0 < got[-1]["AppInfo"]["NumBytes"] <= sent
    if sys.platform == "linux":
        assert got[-1]["TCPInfo"]["BytesReceived"] > 0


# --- the client against the server ---------------------------------------------------------------


async def test_client_subtests_measure_loopback_with_kernel_counters() -> None:
    async with ndt7_server() as port:
        t = ndt7.direct_target(f"ws://{LOOPBACK}:{port}")
        down = await ndt7.run_subtest("download", t.download_url, direct, None, 0.2, 0.4, 0.4)
        up = await ndt7.run_subtest("upload", t.upload_url, direct, None, 0.2, 0.4, 0.4)
    for st in (down, up):
        assert st.error is None, st.error
        assert st.mbps is not None and st.mbps > 50  # loopback moves Gbit/s
        assert 0.35 <= st.window_s <= 0.8
        assert st.seconds < 2.5
        assert st.bytes_used > 0
        assert st.precision is not None and st.precision < 0.1
        if sys.platform == "linux":
            assert st.source == "kernel"
            assert st.min_rtt_ms is not None
    assert down.server_measurements >= 1


async def test_client_reports_a_dead_server_as_a_connect_error() -> None:
    with socket_closed_port() as port:
        st = await ndt7.run_subtest(
            "download", f"ws://{LOOPBACK}:{port}/ndt/v7/download", direct, None, 0.1, 0.2, 0.2
        )
    assert st.mbps is None and st.error and st.error.startswith("connect")


@contextlib.contextmanager
def socket_closed_port() -> Any:
    import socket

    s = socket.socket()
    s.bind((LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    yield port


async def test_bandwidth_check_uses_ndt7_for_a_ws_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bandwidth, "MEASURE_S", 0.4)
    monkeypatch.setattr(bandwidth, "WARMUP_S", 0.2)
    monkeypatch.setattr(bandwidth, "DOWNLOAD_WARMUP_S", 0.2)
    async with ndt7_server() as port:
        site = make_site(speedtest_url=f"ws://{LOOPBACK}:{port}")
        chk = bandwidth.BandwidthCheck()
        assert chk.unmet_needs(site, False) == []
        out = await chk.run(context(site, "bandwidth"))
    f = {x.key: x.value for x in out.facts}
    assert f["bw.method"] == "ndt7"
    assert f["bw.download_mbps"] > 50 and f["bw.upload_mbps"] > 50
    assert f["bw.bytes_used"] > 0
    assert out.status == "ok", out.summary.render("en")


def test_method_by_profile_and_url() -> None:
    chk = bandwidth.BandwidthCheck()
    assert bandwidth.method_of(make_site(speedtest_url="http://127.0.0.1:9/").profile) == "http"
    assert bandwidth.method_of(make_site(speedtest_url="ws://127.0.0.1:9").profile) == "ndt7"
    # No URL and no locate endpoint: nothing to measure against (the loopback profile).
    assert chk.unmet_needs(make_site(), False) == ["profile.speedtest_locate_url"]
    loc = make_site(speedtest_locate_url="http://127.0.0.1:9/v2/nearest/ndt/ndt7")
    assert chk.unmet_needs(loc, False) == []
    assert chk.targets(loc) == ("http://127.0.0.1:9/v2/nearest/ndt/ndt7",)
    http_no_url = make_site(speedtest_method="http", speedtest_locate_url="http://127.0.0.1:9/")
    assert chk.unmet_needs(http_no_url, False) == ["profile.speedtest_url"]


def test_slow_link_summary_is_a_measurement_in_both_languages() -> None:
    site = make_site()
    status, text = bandwidth._verdict(site, 0.061, 0.061, 12.8, 300.0, coarse=0.35)
    assert status == "fail"
    en, pl = text.render("en"), text.render("pl")
    assert "upload 0.06 Mbit/s" in en and "streams need 12.8" in en
    assert "too slow for a precise figure (±35 %)" in en
    assert "0,06 Mbit/s" in pl and "zbyt wolne na dokładny pomiar (±35 %)" in pl


def test_segment_count_is_trusted_through_a_hole_at_the_end_of_the_window() -> None:
    # Recorded on the lab at 1 Mbit/s (quick download, 1 run in 16): one segment lost 0.2 s before
    # the window's end stalls the in-order count while segments keep arriving.
    from diag.checks.ndt7 import _arrivals_fit, _Counters

    ts = [i * 0.02 for i in range(46)]
    hole = _Counters()
    hole.kernel = [(t, min(t, 0.69) * 123_000) for t in ts]
    hole.arrived = [(t, t * 123_000 + 1686) for t in ts]
    assert _arrivals_fit(hole)
    # An application-limited sender's small segments: the count runs 60 % over all along.
    small = _Counters()
    small.kernel = [(t, t * 50_000) for t in ts]
    small.arrived = [(t, t * 80_000) for t in ts]
    assert not _arrivals_fit(small)
    # Nothing in order yet: nothing to check the count against.
    none = _Counters()
    none.kernel = [(t, 0.0) for t in ts]
    none.arrived = [(t, t * 123_000) for t in ts]
    assert not _arrivals_fit(none)
