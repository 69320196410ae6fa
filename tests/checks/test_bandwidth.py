"""The bandwidth check against a loopback speed-test server with a known throughput."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from netfakes_bpw import LOOPBACK, SpeedServer, context, free_port, make_site

from diag.checks import bandwidth
from diag.model import Device

MB = 1_000_000


def facts(out):  # type: ignore[no-untyped-def]
    return {f.key: f.value for f in out.facts}


def cams(*kbps: int) -> tuple[Device, ...]:
    return tuple(Device(f"cam{i}", "ipc", "p2p", streams_kbps=(k,)) for i, k in enumerate(kbps))


@pytest.fixture(autouse=True)
def _short(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shorter phases keep the unit tests quick; the lab and the benchmark use the real values.
    monkeypatch.setattr(bandwidth, "MEASURE_S", 0.6)
    monkeypatch.setattr(bandwidth, "WARMUP_S", 0.2)
    monkeypatch.setattr(bandwidth, "DOWNLOAD_WARMUP_S", 0.2)


def test_needed_upload_sums_every_stream_with_headroom() -> None:
    site = make_site(
        devices=(
            *cams(2048, 1024),
            Device("nvr", "nvr", "ip", "198.18.0.10", streams_kbps=(4096, 512)),
        )
    )
    assert bandwidth.needed_upload_mbps(site) == pytest.approx(
        (2048 + 1024 + 4096 + 512) * 1.25 / 1000
    )


async def test_known_throughput_and_upload_below_need() -> None:
    # 2 MB/s down = 16 Mbit/s, 0.5 MB/s up = 4 Mbit/s; the streams need 2 × 2048 × 1.25 = 5.12.
    async with SpeedServer(down_bps=2 * MB, up_bps=0.5 * MB) as srv:
        site = make_site(devices=cams(2048, 2048), speedtest_url=f"http://{LOOPBACK}:{srv.port}")
        out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth"))
    f = facts(out)
    assert f["bw.download_mbps"] == pytest.approx(16, rel=0.15)
    assert f["bw.upload_mbps"] == pytest.approx(4, rel=0.15)
    assert f["bw.needed_upload_mbps"] == pytest.approx(5.12)
    assert out.status == "fail"
    assert "upload too slow" in out.summary.render("en")
    assert "wysyłanie zbyt wolne" in out.summary.render("pl")


async def test_bufferbloat_measured_under_load() -> None:
    async with SpeedServer(down_bps=4 * MB, up_bps=4 * MB, loaded_delay_s=0.25) as srv:
        site = make_site(devices=cams(1024), speedtest_url=f"http://{LOOPBACK}:{srv.port}/")
        out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth"))
    f = facts(out)
    assert f["bw.idle_rtt_ms"] < 50
    assert f["bw.loaded_rtt_ms"] >= 240
    assert f["bw.bufferbloat_ms"] == pytest.approx(250, abs=60)
    assert out.status == "warn"  # upload is fine (32 Mbit/s), latency under load is not


async def test_upload_without_server_report_uses_client_count() -> None:
    async with SpeedServer(down_bps=4 * MB, up_bps=1 * MB, json_upload=False) as srv:
        site = make_site(devices=cams(1024), speedtest_url=f"http://{LOOPBACK}:{srv.port}")
        out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth"))
    # The client's count includes socket buffers: an overestimate, but a number, not a crash.
    assert facts(out)["bw.upload_mbps"] >= 8 * 0.85


async def test_dead_endpoint_is_a_fact() -> None:
    site = make_site(devices=cams(1024), speedtest_url=f"http://{LOOPBACK}:{free_port()}")
    out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth"))
    assert out.status == "fail"
    assert facts(out)["bw.error"] == "unreachable"
    assert "bw.upload_mbps" not in facts(out)


async def test_name_resolved_through_site_resolver_not_system() -> None:
    # A closed loopback port as the site resolver: the name must fail there, never reach
    # getaddrinfo (which would ask the host's resolver).
    site = make_site(
        devices=cams(1024),
        speedtest_url="http://speedtest.lab-cloud.test/",
        resolver=f"{LOOPBACK}:{free_port()}",
    )
    out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth", budget_s=5))
    assert facts(out)["bw.error"].startswith("dns: ")


def test_rate_is_the_slope_not_the_endpoints() -> None:
    # 1000 bytes every 10 ms = 100 kB/s; the first read came 30 ms late with a bunch of bytes.
    samples = [(0.03, 0)] + [(0.01 * i, 1000 * (i - 3) + 3000) for i in range(4, 101)]
    rate = bandwidth.rate_bps(samples)
    assert rate == pytest.approx(100_000, rel=0.02)
    naive = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
    assert abs(naive - 100_000) > abs(rate - 100_000)  # type: ignore[operator]
    assert bandwidth.rate_bps(samples[:2]) is None


async def test_slow_uplink_is_measured_not_timed_out() -> None:
    # 64 kbit/s up (8000 B/s, a weak GSM cell): the POST's body cannot drain before the server's
    # answer is due, and the check used to say "the speed test did not complete". What the
    # server's TCP acknowledged in the window is the figure.
    async with SpeedServer(down_bps=2 * MB, up_bps=8000) as srv:
        site = make_site(devices=cams(1024), speedtest_url=f"http://{LOOPBACK}:{srv.port}")
        out = await bandwidth.BandwidthCheck().run(context(site, "bandwidth"))
    f = facts(out)
    assert f["bw.upload_mbps"] == pytest.approx(0.064, rel=0.3)
    assert f["bw.upload_s"] < 4.0
    assert out.status == "fail"
    assert "did not complete" not in out.summary.render("en")
    assert "upload too slow" in out.summary.render("en")
