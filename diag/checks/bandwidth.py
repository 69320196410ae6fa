"""Bandwidth: download and upload to the profile's speed test, latency under load.

Two methods (``profile.speedtest_method``):

- ``ndt7`` (the default, ``diag/checks/ndt7.py``): M-Lab's open speed test, a server found
  through the Locate API v2 (``speedtest_locate_url``) or named by a ``ws[s]://``
  ``speedtest_url``. What got through is the kernel's count of bytes received or acknowledged
  over a time window that adapts to the rate, so a 64 kbit/s uplink is measured, not timed out.
- ``http``: the plain HTTP endpoint below, at an ``http[s]://`` ``speedtest_url``.

HTTP speed-test endpoint API (the lab's ``diag/lab/emulators/speedtest.py``): ``GET
/download?bytes=N`` streams N bytes, ``POST /upload`` reads the body and answers ``{"bytes": n,
"seconds": t}``, ``GET /ping`` answers 204 at once.

Each direction is one time-bounded transfer instead of a guess at a size: a short warm-up opens the
TCP window and drains any token-bucket burst of a shaped link, then the measured phase runs for a
fixed time (``MEASURE_S``, longer with ``--deep``) and is cut there, however fast the link is. So a
2 Mbit/s LTE uplink and a 100 Mbit/s fibre both take the same ~1-2 s, well inside 5 s per
direction. While each direction is loaded, ``/ping`` on a second connection measures the latency
the load adds (bufferbloat). The name is resolved through the site resolver, never the system's.
The upload is compared with what the site's streams need: the sum of every device's
``streams_kbps`` × ``thresholds.upload_headroom``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from diag.checks import ndt7
from diag.checks.base import Check, Context, profile_need
from diag.i18n import Message, msg
from diag.model import Fact, Metric, Outcome, Profile, Site, Status
from diag.net import tcpinfo
from diag.net.backend import Backend
from diag.net.http import CaFileError, tls_verify
from diag.net.http import client as http_client
from diag.net.resolve import ResolveError, resolve, site_resolver

# Warm-up before each measured phase, s: long enough for TCP slow start to reach the rate of a
# 100 Mbit/s link at lab/LAN RTTs and to drain a shaper's burst bucket, short enough to be cheap.
WARMUP_S = 0.25
# The download's warm-up is longer: a shaper's queue still lets ~2-5% extra through in the first
# ~0.4 s of a flow (measured on the lab's tbf links at 2 and 20 Mbit/s).
DOWNLOAD_WARMUP_S = 0.4
# Measured phase per direction, s: at 2 Mbit/s 0.5 s is ~85 full packets (a bound of ±2.4 %),
# the fitted slope within a few % of iperf3's 5 s figure (docs/bench-bandwidth.md); slower links
# extend it (ndt7: to 20 segments). This check is the longest on the quick run's critical path
# (wan, then both directions): at 0.7 s the healthy 8-device lab's run took 2.7-3.0 s on a loaded
# box, at 0.5 s 0.4 s less.
MEASURE_S = 0.5
# With --deep the measured phase is longer: a fairer number on a jittery radio link.
DEEP_MEASURE_S = 3.0
# A slow link (an LTE modem, the cause this check exists for) is measured longer: the HTTP
# method extends a window holding fewer than ndt7.PRECISE_SEGMENTS segments up to this long, s.
SLOW_MEASURE_S = 1.5
# ndt7 windows, s: quick mode starts with MEASURE_S and extends a window holding too few segments
# for a precise figure up to NDT7_QUICK_MAX_S (a 256 kbit/s uplink needs about 1 s for 20
# segments); --deep measures DEEP_MEASURE_S, extended up to NDT7_DEEP_MAX_S (64 kbit/s: 5 s hold
# ~26 segments, ±8 %), inside the 6 s per direction of docs/bench-bandwidth.md.
NDT7_QUICK_MAX_S = 2.0
NDT7_DEEP_MAX_S = 4.2
NDT7_DEEP_WARMUP_S = 0.5
# --deep extends its window until it holds this many full segments (two segments' quantisation
# over 40: ±5 %, so the figure stays within ±10 % of the link with TCP's own overhead).
NDT7_DEEP_SEGMENTS = 40
# A figure whose bound is wider than this is reported as too coarse for precision (±10 %).
PRECISE_BOUND = 0.1
# Connecting and getting the first byte must not take longer than this, s: a dead endpoint
# must leave the other direction and the run some time.
CONNECT_TIMEOUT_S = 2.0
# One /ping is waited for at most this long, s: beyond it the sample counts as this value.
PING_TIMEOUT_S = 2.0
# Latency samples under load are taken this often, s (10 per second is enough for a median).
PING_INTERVAL_S = 0.1
IDLE_PINGS = 5
# Upload body chunk, bytes: large enough for few syscalls, small enough to stop on time.
UPLOAD_CHUNK = 64 * 1024
# After the body, the server's answer is waited for this long, s: on a slow uplink it comes
# only once everything buffered has drained, and the kernel's count is the figure then.
ANSWER_WAIT_S = 0.5
# Unsent bytes the kernel may hold for the upload socket (TCP_NOTSENT_LOWAT), bytes: without it
# the send buffer grows to megabytes, the client's count runs ahead of the wire and stopping the
# upload on time leaves seconds of data still to drain on a slow uplink (32 KiB: 0.25 s at
# 1 Mbit/s, yet plenty to keep a 100 Mbit/s link busy between two writes).
NOTSENT_LOWAT = 32 * 1024
TCP_NOTSENT_LOWAT: int | None = getattr(
    socket, "TCP_NOTSENT_LOWAT", 25 if sys.platform == "linux" else None
)  # Linux's value where Python does not expose it; Windows has no such option
# Ask for more than any link moves in the measured time (1 GiB, the lab server's limit); the
# transfer is cut by time, not by size.
DOWNLOAD_BYTES = 1 << 30

_PAYLOAD = bytes(range(256)) * (UPLOAD_CHUNK // 256)


@dataclass
class Transfer:
    """Bytes moved in the measured phase and how long it took."""

    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def mbps(self) -> float | None:
        # Zero bytes over a window is a measurement (nothing got through), not a failure.
        if self.error is not None or self.seconds <= 0 or self.bytes < 0:
            return None
        return round(self.bytes * 8 / self.seconds / 1e6, 3)


@dataclass
class Pinger:
    """Samples ``GET /ping`` RTTs (ms) on its own connection until stopped."""

    client: httpx.AsyncClient
    url: str
    samples: list[float] = field(default_factory=list)

    async def once(self) -> float | None:
        t0 = time.monotonic()
        try:
            r = await self.client.get(self.url, timeout=PING_TIMEOUT_S)
        except httpx.TimeoutException:
            return PING_TIMEOUT_S * 1000
        except httpx.HTTPError:
            return None
        if r.status_code >= 400:
            return None
        return round((time.monotonic() - t0) * 1000, 3)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            rtt = await self.once()
            if rtt is not None:
                self.samples.append(rtt)
            left = PING_INTERVAL_S - (time.monotonic() - t0)
            if left > 0:
                try:
                    await asyncio.wait_for(stop.wait(), left)
                except TimeoutError:
                    pass


def needed_upload_mbps(site: Site) -> float:
    """What the streams need: sum of every device's stream bitrates × headroom, Mbit/s."""
    kbps = sum(sum(d.streams_kbps) for d in site.devices)
    return round(kbps * site.thresholds.upload_headroom / 1000, 3)


@dataclass(frozen=True)
class Endpoint:
    """Where to connect (an IP) and what to call it (Host header, TLS name)."""

    base: str
    host_header: str
    sni: str | None


async def endpoint(site: Site, url: str, net: Backend | None = None) -> Endpoint:
    """The speed-test URL with its host resolved through the site resolver."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    addrs = await resolve(host, site_resolver(site), backend=net)
    netloc = addrs[0] if ":" not in addrs[0] else f"[{addrs[0]}]"
    if parts.port:
        netloc += f":{parts.port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    host_header = parts.netloc.rpartition("@")[2]
    return Endpoint(base, host_header, host if parts.scheme == "https" else None)


def rate_bps(samples: Sequence[tuple[float, int]]) -> float | None:
    """Bytes/s: least-squares slope of cumulative bytes over arrival time (pure).

    A slope over every read, not (last - first) / time: a read that comes late (the event loop
    was busy, the kernel batched segments) moves one endpoint but hardly the fitted line.
    """
    if len(samples) < 3 or samples[-1][0] - samples[0][0] <= 0:
        return None
    return ndt7.slope([(t, float(b)) for t, b in samples])


async def download(
    client: httpx.AsyncClient,
    ep: Endpoint,
    measure_s: float,
    on_phase: Callable[[], None],
    max_s: float | None = None,
) -> Transfer:
    """One GET of a huge object, read for warm-up + ``measure_s`` and cut there (extended up to
    ``max_s`` while the window holds fewer than ``ndt7.PRECISE_SEGMENTS`` segments)."""
    ext = {"sni_hostname": ep.sni} if ep.sni else {}
    req = client.build_request(
        "GET",
        f"{ep.base}/download",
        params={"bytes": DOWNLOAD_BYTES},
        headers={"Host": ep.host_header},
        extensions=ext,
    )
    try:
        resp = await client.send(req, stream=True)
    except httpx.HTTPError as exc:
        return Transfer(error=f"connect: {type(exc).__name__}")
    try:
        if resp.status_code != 200:
            return Transfer(error=f"http-{resp.status_code}")
        start = time.monotonic()
        warm_end = start + DOWNLOAD_WARMUP_S
        end = warm_end + measure_s
        longest = warm_end + max(measure_s, max_s or measure_s)
        enough = ndt7.PRECISE_SEGMENTS * ndt7.MSS_DEFAULT
        counted = 0
        samples: list[tuple[float, int]] = []
        # Whatever each socket read returns: a fixed chunk size would quantise the clock (64 KiB
        # take 0.26 s to arrive at 2 Mbit/s).
        async for chunk in resp.aiter_raw():
            now = time.monotonic()
            if now >= warm_end:
                if not samples:
                    on_phase()
                else:
                    # The phase starts at the first chunk's arrival; its bytes came before it.
                    counted += len(chunk)
                samples.append((now, counted))
            if now >= end and (counted >= enough or now >= longest):
                break
        rate = rate_bps(samples)
        if rate is None:
            return Transfer(error="short-transfer")
        return Transfer(counted, counted / rate if rate > 0 else 0.0)
    except httpx.HTTPError as exc:
        return Transfer(error=f"read: {type(exc).__name__}")
    finally:
        await resp.aclose()


@dataclass
class _UploadRun:
    """One POST's state: the socket (from httpcore's trace), bytes generated, kernel readings."""

    sock: Any = None
    sent: int = 0
    delivered: list[tuple[float, float]] = field(default_factory=list)

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        # httpcore names the stream it connected; its socket carries the kernel's counters.
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            if stream is not None and self.sock is None:
                self.sock = stream.get_extra_info("socket")

    def read(self) -> None:
        reading = tcpinfo.read(self.sock)
        # Delivered, not carried (ndt7's upload counts D-SACKed copies): this method's tests
        # model a slow link by a server that reads slowly, where a copy crosses loopback, not
        # the bottleneck, and would read +36 %.
        if reading is not None and reading.delivered_bytes is not None:
            self.delivered.append((time.monotonic(), float(reading.delivered_bytes)))

    async def sample(self, stop: asyncio.Event) -> None:
        """Reads the counters every ``ndt7.SAMPLE_S`` until stopped (a slope needs points)."""
        while not stop.is_set():
            if self.sock is not None:
                self.read()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), ndt7.SAMPLE_S)


async def _body(run: _UploadRun, until: Callable[[], bool]) -> AsyncIterator[bytes]:
    while not until():
        run.sent += len(_PAYLOAD)
        yield _PAYLOAD
        # A chunk may be accepted by the socket at once: let the loop breathe between writes.
        await asyncio.sleep(0)


async def upload_once(
    client: httpx.AsyncClient,
    ep: Endpoint,
    seconds: float,
    warmup_s: float = 0.0,
    max_s: float | None = None,
    on_phase: Callable[[], None] | None = None,
) -> Transfer:
    """A chunked POST generated for ``warmup_s`` + ``seconds`` (extended up to ``max_s`` while
    the window holds fewer than ``ndt7.PRECISE_SEGMENTS`` segments).

    What got through is, where the kernel counts it (Linux), the bytes our socket saw the server
    acknowledge during the window: on a 64 kbit/s uplink the server's own answer comes only after
    seconds of buffered data drained, so it is not waited for beyond ``ANSWER_WAIT_S``. Elsewhere
    the server's count and time (the body's), else the client's.
    """
    ext: dict[str, Any] = {"sni_hostname": ep.sni} if ep.sni else {}
    run = _UploadRun()
    ext["trace"] = run.trace
    t0 = time.monotonic()
    warm_end = t0 + warmup_s
    longest = warm_end + max(seconds, max_s or seconds)
    end = [warm_end + seconds]
    told = [False]

    def until() -> bool:
        now = time.monotonic()
        if not told[0] and now >= warm_end:
            told[0] = True
            if on_phase:
                on_phase()
        if now < end[0]:
            return False
        got = _delivered_since(run.delivered, warm_end)
        if got is not None and got < ndt7.PRECISE_SEGMENTS * ndt7.MSS_DEFAULT and now < longest:
            end[0] = min(longest, now + 0.1)
            return False
        return True

    resp: httpx.Response | None = None
    stop = asyncio.Event()
    sampler = asyncio.create_task(run.sample(stop))
    try:
        resp = await asyncio.wait_for(
            client.post(
                f"{ep.base}/upload",
                content=_body(run, until),
                headers={"Host": ep.host_header, "Content-Type": "application/octet-stream"},
                extensions=ext,
            ),
            timeout=max(0.1, longest - time.monotonic()) + ANSWER_WAIT_S,
        )
    except TimeoutError:
        resp = None  # the body is still draining through a slow link: the kernel's count stands
    except httpx.HTTPError as exc:
        if not run.delivered:
            return Transfer(error=f"upload: {type(exc).__name__}")
    finally:
        stop.set()
        await sampler
    kernel = _window_transfer(run.delivered, warm_end)
    if kernel is not None:
        return kernel
    if resp is None:
        return Transfer(error="upload: timeout")
    elapsed = time.monotonic() - t0
    if resp.status_code != 200:
        return Transfer(error=f"http-{resp.status_code}")
    try:
        data = json.loads(resp.content)
        n, secs = int(data["bytes"]), float(data["seconds"])
        if n > 0 and secs > 0:
            return Transfer(n, secs)
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        # A server without the JSON answer (or with a hostile one: 1e400 bytes, nesting deep
        # enough to exhaust the stack): the client's own count and time.
        pass
    return Transfer(run.sent, elapsed)


def _delivered_since(readings: list[tuple[float, float]], start: float) -> float | None:
    """Bytes acknowledged since ``start`` (None without kernel readings; pure)."""
    win = [b for t, b in readings if t >= start]
    return win[-1] - win[0] if win else None


def _window_transfer(readings: list[tuple[float, float]], start: float) -> Transfer | None:
    """The window's bytes and the seconds they took at the fitted rate (pure); None if too few."""
    win = [(t, b) for t, b in readings if t >= start]
    if len(win) < 2 or win[-1][0] <= win[0][0]:
        return None
    rate = ndt7.window_rate(win)
    counted = int(win[-1][1] - win[0][1])
    if rate is None:
        return None
    if rate <= 0 or counted <= 0:
        # Nothing acknowledged in the window: zero through, a measurement all the same.
        return Transfer(0, win[-1][0] - win[0][0], error=None)
    return Transfer(counted, counted / rate)


async def _loaded(
    pinger: Pinger, work: Callable[[Callable[[], None]], Awaitable[Transfer]]
) -> tuple[Transfer, list[float]]:
    """Runs a transfer and samples latency during its measured phase only."""
    stop = asyncio.Event()
    start_idx: list[int] = []

    def on_phase() -> None:
        start_idx.append(len(pinger.samples))

    task = asyncio.create_task(pinger.run(stop))
    try:
        result = await work(on_phase)
    finally:
        stop.set()
        await task
    return result, pinger.samples[start_idx[0] if start_idx else 0 :]


class BandwidthCheck(Check):
    id = "bandwidth"
    title = msg("Bandwidth and latency under load")
    # speedtest_url for the http method; for ndt7 a ws[s]:// speedtest_url or a locate URL.
    needs = (profile_need("speedtest_url"),)
    # Measured after the internet path and the ports: a loaded link would distort their RTT
    # and loss numbers, and a dead path (wan) is known before minutes are spent here. The mtu
    # check starts beside it: its 32 KiB burst falls in this check's download warm-up.
    depends_on = ("wan", "ports")
    timeout_s = 15.0

    def unmet_needs(self, site: Site, root: bool) -> list[str]:
        p = site.profile
        if method_of(p) == "http":
            return [] if _http_url(p.speedtest_url) else ["profile.speedtest_url"]
        if _ws_url(p.speedtest_url) or p.speedtest_locate_url:
            return []
        return ["profile.speedtest_locate_url"]

    def targets(self, site: Site) -> tuple[str, ...]:
        p = site.profile
        if method_of(p) == "http":
            return (p.speedtest_url,) if p.speedtest_url and _http_url(p.speedtest_url) else ()
        url = p.speedtest_url if _ws_url(p.speedtest_url) else p.speedtest_locate_url
        return (url,) if url else ()

    async def run(self, ctx: Context) -> Outcome:
        if method_of(ctx.site.profile) == "http":
            return await self.run_http(ctx)
        return await run_ndt7(ctx)

    async def run_http(self, ctx: Context) -> Outcome:
        site = ctx.site
        url = site.profile.speedtest_url or ""
        need = needed_upload_mbps(site)
        facts: list[Fact] = [
            Fact("bw.needed_upload_mbps", need, "Mbit/s"),
            Fact("bw.method", "http"),
        ]
        measure = DEEP_MEASURE_S if ctx.deep else MEASURE_S
        # Two directions, each warm-up + measured phase, plus idle pings must fit the budget.
        measure = max(0.3, min(measure, (ctx.remaining() - 1.5) / 2 - DOWNLOAD_WARMUP_S))
        try:
            ep = await endpoint(site, url, ctx.world.net)
        except ResolveError as exc:
            facts.append(Fact("bw.error", f"dns: {exc.reason}"))
            return Outcome("fail", msg("speed-test server name did not resolve"), {}, tuple(facts))
        timeout = httpx.Timeout(CONNECT_TIMEOUT_S, read=CONNECT_TIMEOUT_S)
        # Linux and macOS have TCP_NOTSENT_LOWAT; Windows does not (setting it would fail the
        # connect), and measures with the kernel's default send buffer.
        lowat = (
            [(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)]
            if TCP_NOTSENT_LOWAT is not None
            else []
        )
        try:
            bulk_client = http_client(
                timeout=timeout, ca_file=site.profile.ca_file, socket_options=lowat
            )
            pings_client = http_client(timeout=timeout, ca_file=site.profile.ca_file)
        except CaFileError:
            # The profile's ca_file is missing or not PEM: a local problem, nothing measured.
            facts.append(Fact("bw.error", "ca-file"))
            return Outcome("error", msg("the profile's CA bundle cannot be read"), {}, tuple(facts))
        async with bulk_client as bulk, pings_client as pings:
            pinger = Pinger(pings, f"{ep.base}/ping")
            pinger.client.headers["Host"] = ep.host_header
            idle: list[float] = []
            for _ in range(IDLE_PINGS):
                rtt = await pinger.once()
                if rtt is None:
                    break
                idle.append(rtt)
            if not idle:
                facts.append(Fact("bw.error", "unreachable"))
                return Outcome("fail", msg("speed-test server does not answer"), {}, tuple(facts))
            # The first ping paid for the TCP handshake; the median ignores it.
            idle_rtt = round(statistics.median(idle[1:] or idle), 3)
            facts.append(Fact("bw.idle_rtt_ms", idle_rtt, "ms"))
            ctx.progress(0.1, msg("measuring download"))
            t0 = time.monotonic()
            slow_s = max(measure, min(SLOW_MEASURE_S, (ctx.remaining() - 1.5) / 2 - WARMUP_S))
            down, down_rtts = await _loaded(
                pinger, lambda ph: download(bulk, ep, measure, ph, slow_s)
            )
            t1 = time.monotonic()
            ctx.progress(0.5, msg("measuring upload"))

            async def up(on_phase: Callable[[], None]) -> Transfer:
                # One POST: a warm-up, then the window, longer on a slow link.
                longest = max(measure, min(SLOW_MEASURE_S, ctx.remaining() - 1.5 - WARMUP_S))
                return await upload_once(bulk, ep, measure, WARMUP_S, longest, on_phase)

            upl, up_rtts = await _loaded(pinger, up)
            t2 = time.monotonic()
        metrics: dict[str, Metric] = {"needed_upload": Metric(need, "Mbit/s")}
        for name, t in (("download", down), ("upload", upl)):
            if t.mbps is not None:
                facts.append(Fact(f"bw.{name}_mbps", t.mbps, "Mbit/s"))
                metrics[name] = Metric(t.mbps, "Mbit/s")
            else:
                facts.append(Fact(f"bw.{name}_error", t.error or "no-data"))
        loaded = [statistics.median(r) for r in (down_rtts, up_rtts) if r]
        bloat = _latency(facts, metrics, idle_rtt, loaded, idle_fact=False)
        facts.append(Fact("bw.measure_s", round(measure, 3), "s"))
        facts.append(Fact("bw.download_s", round(t1 - t0, 3), "s"))
        facts.append(Fact("bw.upload_s", round(t2 - t1, 3), "s"))
        status, summary = _verdict(site, down.mbps, upl.mbps, need, bloat)
        return Outcome(status, summary, metrics, tuple(facts))


def _verdict(
    site: Site,
    down: float | None,
    up: float | None,
    need: float,
    bloat: float | None,
    coarse: float | None = None,
) -> tuple[Status, Message]:
    if up is None and down is None:
        return "fail", msg("the speed test did not complete")
    if up is None or down is None:
        text = msg(
            "{direction} {rate} Mbit/s, the other direction failed (streams need {need} Mbit/s)",
            direction=msg("download") if up is None else msg("upload"),
            rate=_shown((down if up is None else up) or 0.0),
            need=_shown(need),
        )
        if up is not None and need > 0 and up < need:
            return "fail", msg("upload too slow for the streams: {detail}", detail=text)
        return "fail", text
    text = msg(
        "download {down} Mbit/s, upload {up} Mbit/s (streams need {need} Mbit/s)",
        down=_shown(down),
        up=_shown(up),
        need=_shown(need),
    )
    if coarse is not None:
        text = msg(
            "{detail}; the link is too slow for a precise figure (±{pct} %)",
            detail=text,
            pct=round(coarse * 100),
        )
    if need > 0 and up < need:
        return "fail", msg("upload too slow for the streams: {detail}", detail=text)
    if bloat is not None and bloat > site.thresholds.bufferbloat_ms:
        return "warn", msg(
            "latency grows by {bloat} ms under load: {detail}", bloat=bloat, detail=text
        )
    return "ok", text


def _latency(
    facts: list[Fact],
    metrics: dict[str, Metric],
    idle: float,
    loaded: list[float],
    idle_fact: bool = True,
) -> float | None:
    """Idle and loaded latency facts; returns the bufferbloat (ms), None without a loaded RTT."""
    if idle_fact:
        facts.append(Fact("bw.idle_rtt_ms", idle, "ms"))
    metrics["idle_rtt"] = Metric(idle, "ms")
    if not loaded:
        return None
    loaded_rtt = round(max(loaded), 3)
    bloat = round(max(0.0, loaded_rtt - idle), 3)
    facts.append(Fact("bw.loaded_rtt_ms", loaded_rtt, "ms"))
    facts.append(Fact("bw.bufferbloat_ms", bloat, "ms"))
    metrics["loaded_rtt"] = Metric(loaded_rtt, "ms")
    metrics["bufferbloat"] = Metric(bloat, "ms")
    return bloat


def _shown(mbps: float) -> float:
    """A rate as a person reads it: 0.06 at 64 kbit/s, 19.1 at 20 Mbit/s (facts keep 3 decimals)."""
    if mbps >= 10:
        return round(mbps, 1)
    return round(mbps, 2)


def method_of(profile: Profile) -> str:
    """The speed-test method: the profile's choice, else by its URL (http[s]:// is http)."""
    if profile.speedtest_method:
        return profile.speedtest_method
    return "http" if _http_url(profile.speedtest_url) else "ndt7"


def _http_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme in ("http", "https")


def _ws_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme in ("ws", "wss")


async def run_ndt7(ctx: Context) -> Outcome:
    """The ndt7 method: locate (or the named server), download, upload."""
    site = ctx.site
    prof = site.profile
    need = needed_upload_mbps(site)
    facts: list[Fact] = [Fact("bw.needed_upload_mbps", need, "Mbit/s"), Fact("bw.method", "ndt7")]
    resolver = site_resolver(site)

    async def resolve_name(host: str) -> str:
        try:
            return (await resolve(host, resolver, backend=ctx.world.net))[0]
        except ResolveError as exc:
            raise ndt7.Ndt7Error(f"dns: {exc.reason}") from None

    ssl_ctx: ssl.SSLContext | None = None
    if prof.ca_file:
        try:
            verify = tls_verify(prof.ca_file)
            ssl_ctx = verify if isinstance(verify, ssl.SSLContext) else None
        except CaFileError:
            facts.append(Fact("bw.error", "ca-file"))
            return Outcome("error", msg("the profile's CA bundle cannot be read"), {}, tuple(facts))
    try:
        if _ws_url(prof.speedtest_url):
            target = ndt7.direct_target(prof.speedtest_url or "")
        else:
            target = await ndt7.locate(prof.speedtest_locate_url or "", resolve_name, ssl_ctx)
    except ndt7.Ndt7Error as exc:
        facts.append(Fact("bw.error", str(exc)))
        if str(exc).startswith("locate: dns") or str(exc).startswith("dns"):
            summary = msg("speed-test server name did not resolve")
        else:
            summary = msg("no speed-test server found ({reason})", reason=str(exc))
        return Outcome("fail", summary, {}, tuple(facts))
    if target.machine:
        facts.append(Fact("bw.server", target.machine[:200]))
    if ctx.deep:
        warm, window, longest = NDT7_DEEP_WARMUP_S, DEEP_MEASURE_S, NDT7_DEEP_MAX_S
        segments = NDT7_DEEP_SEGMENTS
    else:
        warm, window, longest = DOWNLOAD_WARMUP_S, MEASURE_S, NDT7_QUICK_MAX_S
        segments = ndt7.PRECISE_SEGMENTS
    # Two directions (connect, warm-up, window, close) must fit the check's time.
    per_dir = max(0.5, (ctx.remaining() - 1.0) / 2 - warm - 0.6)
    longest = max(0.3, min(longest, per_dir))
    window = min(window, longest)
    # The upload first: it caps what it leaves queued on a slow link (ndt7._upload_cap), so the
    # download's handshake does not wait behind it; a download's queue is the server's to fill
    # (at 64 kbit/s 5 s of it), and nothing of this check comes after it.
    ctx.progress(0.1, msg("measuring upload"))
    upl = await ndt7.run_subtest(
        "upload", target.upload_url, resolve_name, ssl_ctx, min(warm, WARMUP_S), window, longest,
        segments=segments,
    )  # fmt: skip
    ctx.progress(0.5, msg("measuring download"))
    per_dir = max(0.5, ctx.remaining() - 1.0 - warm - 0.6)
    down_longest = max(0.3, min(longest, per_dir))
    down = await ndt7.run_subtest(
        "download", target.download_url, resolve_name, ssl_ctx, warm,
        min(window, down_longest), down_longest, segments=segments,
    )  # fmt: skip
    metrics: dict[str, Metric] = {"needed_upload": Metric(need, "Mbit/s")}
    coarse: float | None = None
    for name, st in (("download", down), ("upload", upl)):
        if st.mbps is not None:
            facts.append(Fact(f"bw.{name}_mbps", st.mbps, "Mbit/s"))
            metrics[name] = Metric(st.mbps, "Mbit/s")
            facts.append(Fact(f"bw.{name}_source", st.source))
            facts.append(Fact(f"bw.{name}_window_s", st.window_s, "s"))
            if st.precision is not None:
                facts.append(Fact(f"bw.{name}_precision_pct", round(st.precision * 100, 1), "%"))
                if st.precision > PRECISE_BOUND:
                    coarse = max(coarse or 0.0, st.precision)
        else:
            facts.append(Fact(f"bw.{name}_error", st.error or "no-data"))
        if st.server_mbps is not None:
            facts.append(Fact(f"bw.{name}_server_mbps", st.server_mbps, "Mbit/s"))
        if st.bbr_mbps is not None:
            facts.append(Fact(f"bw.{name}_bbr_mbps", st.bbr_mbps, "Mbit/s"))
        facts.append(Fact(f"bw.{name}_s", st.seconds, "s"))
        facts.append(Fact(f"bw.{name}_connect_s", st.connect_s, "s"))
    if coarse is not None:
        facts.append(Fact("bw.coarse", True))
    facts.append(Fact("bw.bytes_used", down.bytes_used + upl.bytes_used, "B"))
    mins = [r for r in (down.min_rtt_ms, upl.min_rtt_ms) if r is not None]
    bloat: float | None = None
    if mins:
        loaded = [r for r in (down.loaded_rtt_ms, upl.loaded_rtt_ms) if r is not None]
        bloat = _latency(facts, metrics, round(min(mins), 3), loaded)
    facts.append(Fact("bw.measure_s", round(window, 3), "s"))
    if down.mbps is None and upl.mbps is None:
        err = down.error or upl.error or ""
        if err.startswith("connect"):
            return Outcome("fail", msg("speed-test server does not answer"), metrics, tuple(facts))
    status, summary = _verdict(site, down.mbps, upl.mbps, need, bloat, coarse)
    return Outcome(status, summary, metrics, tuple(facts))
