"""An ndt7 client (M-Lab's speed-test protocol, spec/ndt7-protocol.md of m-lab/ndt-server).

Server discovery: the M-Lab Locate API v2 (``GET <locate>`` answers ``{"results": [{"machine",
"urls": {"wss:///ndt/v7/download": URL, ...}}]}``; an empty ``results`` means M-Lab is out of
capacity), or a server named directly by the profile (``ws[s]://host[:port]``).

Each subtest is one WebSocket (subprotocol ``net.measurementlab.ndt.v7``) cut by *time*: a
warm-up drains a shaper's burst and TCP's slow start, then the measured window runs. What got
through is counted where it is certain: the kernel's ``bytes_received`` (download) and
``bytes_acked`` (upload) of our own socket, sampled every 20 ms, the rate being the least-squares
slope of those counters over the window. So a 64 kbit/s uplink still yields a figure (bytes the
server acknowledged), never a time-out, and a client buffer full of unsent data does not count.
Where the kernel has no counters (not Linux) the server's measurement messages (``TCPInfo``
``BytesAcked``/``BytesReceived`` over ``ElapsedTime``) give the rate, and the application's own
byte count is the last resort. Latency under load is the sender's smoothed RTT during the window
(the server's ``TCPInfo.RTT`` for the download, our kernel's for the upload); idle latency is the
connection's MinRTT.

The window adapts to the rate: when the measured window holds fewer than ``PRECISE_SEGMENTS``
full segments it is extended up to ``max_s``; if it still holds too few, ``precision`` says how
coarse the figure is (two segments' quantisation over what was counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import socket
import ssl
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from diag import __version__
from diag.net import tcpinfo

SUBPROTOCOL = "net.measurementlab.ndt.v7"
DOWNLOAD_PATH, UPLOAD_PATH = "/ndt/v7/download", "/ndt/v7/upload"
USER_AGENT = f"diag/{__version__} (camera site diagnostics)"
# The spec: messages up to 1 << 24 bytes must be accepted.
MAX_MESSAGE = 1 << 24
# Upload messages: 8 KiB at first (the spec's initial size), doubled while a message is at most
# 1/16 of what was sent, up to 1 MiB (larger messages only add delay before a stop on a slow link).
UPLOAD_INITIAL = 1 << 13
UPLOAD_MAX = 1 << 20
# The smallest message a capped upload sends, bytes (smaller ones cost framing for nothing).
MIN_MESSAGE = 1024
SCALING_FRACTION = 16
# Kernel counters are read this often, s: 50 readings a second give the slope enough points.
SAMPLE_S = 0.02
# A window holding fewer full segments than this is extended (two segments' quantisation over
# 20 segments: ±10 %).
PRECISE_SEGMENTS = 20
MSS_DEFAULT = 1448
CONNECT_TIMEOUT_S = 3.0
# Closing: the spec asks for a Close frame; waited for this long, s, before the socket is
# dropped (on a slow link the Close queues behind data already sent).
CLOSE_TIMEOUT_S = 0.3
# Unsent bytes the kernel may hold for our socket (TCP_NOTSENT_LOWAT), bytes.
NOTSENT_LOWAT = 16 * 1024
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
# On a slow link the upload keeps unacknowledged at most this long of its rate, s, and at least
# this many segments (a sender needs a few in flight to keep the link busy): 1.5 s, as with 1 s
# (five segments at 64 kbit/s) the sender fell a little short of keeping the link busy.
QUEUE_S = 1.5
QUEUE_MIN_SEGMENTS = 4
# The cap from a rate from this long into the upload, s, the rate read from RATE_SKIP_S on;
# before, INITIAL_WINDOW, unless FAST_PROOF_S delivered all of it.
RATE_BASE_S = 0.5
RATE_SKIP_S = 0.25
FAST_PROOF_S = 0.1
# Unacknowledged bytes before RATE_BASE_S: at 30 ms RTT a link delivers it in 0.03 s and is
# never capped; at 64 kbit/s it is 2 s of queue.
INITIAL_WINDOW = 16 * 1024
# Only a cap below this is kept, bytes (64 kB: 0.35 Mbit/s over 1.5 s): faster links are left
# alone.
SLOW_WINDOW_BYTES = 64 * 1024
# The Locate API answer is small; anything above this is not one, bytes.
MAX_LOCATE_BYTES = 256 * 1024

_PAYLOAD = bytes(range(256)) * (UPLOAD_MAX // 256)


class Ndt7Error(Exception):
    """A subtest or the discovery failed; the message is a short fact (``locate: http-503``)."""


@dataclass(frozen=True)
class Target:
    """Where each subtest goes, and how the name is reached (resolved address, TLS name)."""

    download_url: str
    upload_url: str
    machine: str = ""


@dataclass
class Subtest:
    """What one subtest measured."""

    test: str
    mbps: float | None = None
    # The counters the rate came from: "kernel", "server" or "app".
    source: str = ""
    window_s: float = 0.0
    counted_bytes: int = 0
    # Relative bound of the figure (0.05 = ±5 %); above 0.1 the link is too slow for precision.
    precision: float | None = None
    server_mbps: float | None = None
    min_rtt_ms: float | None = None
    loaded_rtt_ms: float | None = None
    bbr_mbps: float | None = None
    bytes_used: int = 0
    # Seconds from the end of the handshake to the socket's close, and of the handshake.
    seconds: float = 0.0
    connect_s: float = 0.0
    error: str | None = None
    server_measurements: int = 0
    last_server: dict[str, Any] = field(default_factory=dict)


def slope(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over t (pure); None with fewer than 3 distinct points."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    my = sum(y for _, y in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    if var <= 0:
        return None
    return sum((t - mt) * (y - my) for t, y in samples) / var


def window_rate(samples: list[tuple[float, float]]) -> float | None:
    """Bytes/s over a window of (time, cumulative bytes) samples.

    The slope of the counter, except when it moved in few steps (a slow link delivers a segment
    every 0.2 s at 64 kbit/s): then (last step - first step) over the time between them, which a
    staircase does not bias.
    """
    if len(samples) < 2:
        return None
    steps = [samples[0]] + [b for a, b in itertools.pairwise(samples) if b[1] != a[1]]
    if len(steps) < 12:
        if len(steps) < 3:
            # Zero or one step in the window: the bytes over the whole window (an upper bound
            # of what one segment means here, but a measurement all the same).
            t = samples[-1][0] - samples[0][0]
            return (samples[-1][1] - samples[0][1]) / t if t > 0 else None
        t = steps[-1][0] - steps[0][0]
        return (steps[-1][1] - steps[0][1]) / t if t > 0 else None
    return slope(samples)


def locate_urls(data: Any, scheme: str) -> Target:
    """The first server of a Locate API v2 answer (pure); raises ``Ndt7Error`` if none."""
    if not isinstance(data, dict):
        raise Ndt7Error("locate: not-json-object")
    results = data.get("results")
    if not isinstance(results, list) or not results:
        # The spec: an empty answer is M-Lab being out of capacity.
        raise Ndt7Error("locate: no-capacity")
    for choice in results:
        if not isinstance(choice, dict) or not isinstance(choice.get("urls"), dict):
            continue
        urls = choice["urls"]
        for sch in (scheme, "wss", "ws"):
            down, up = urls.get(f"{sch}://{DOWNLOAD_PATH}"), urls.get(f"{sch}://{UPLOAD_PATH}")
            if isinstance(down, str) and isinstance(up, str) and _ws_url(down) and _ws_url(up):
                machine = choice.get("machine")
                return Target(down, up, machine if isinstance(machine, str) else "")
    raise Ndt7Error("locate: no-urls")


def _ws_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("ws", "wss") and bool(parts.hostname) and len(url) < 8192


def direct_target(base: str) -> Target:
    """A server named by the profile: ``ws[s]://host[:port]`` (pure)."""
    parts = urlsplit(base)
    query = urlencode({"client_name": "diag", "client_version": __version__})
    down = urlunsplit((parts.scheme, parts.netloc, DOWNLOAD_PATH, query, ""))
    up = urlunsplit((parts.scheme, parts.netloc, UPLOAD_PATH, query, ""))
    return Target(down, up, parts.hostname or "")


Resolver = Callable[[str], Awaitable[str]]


async def locate(
    url: str, resolve: Resolver, ssl_ctx: ssl.SSLContext | None, timeout_s: float = 3.0
) -> Target:
    """Asks a Locate API v2 endpoint for the nearest ndt7 server."""
    import httpx

    parts = urlsplit(url)
    host = parts.hostname or ""
    ip = await resolve(host)
    netloc = (ip if ":" not in ip else f"[{ip}]") + (f":{parts.port}" if parts.port else "")
    query = parts.query or urlencode({"client_name": "diag", "client_version": __version__})
    target = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    ext = {"sni_hostname": host} if parts.scheme == "https" else {}
    headers = {"Host": parts.netloc.rpartition("@")[2], "User-Agent": USER_AGENT}
    headers["Accept"] = "application/json"
    verify: ssl.SSLContext | bool = ssl_ctx if ssl_ctx is not None else True
    try:
        async with httpx.AsyncClient(
            timeout=timeout_s, verify=verify, trust_env=False, follow_redirects=False
        ) as client:
            resp = await client.get(target, headers=headers, extensions=ext)
    except httpx.HTTPError as exc:
        raise Ndt7Error(f"locate: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise Ndt7Error(f"locate: http-{resp.status_code}")
    if len(resp.content) > MAX_LOCATE_BYTES:
        raise Ndt7Error("locate: too-large")
    try:
        data = json.loads(resp.content)
    except (ValueError, RecursionError):
        raise Ndt7Error("locate: not-json") from None
    return locate_urls(data, "wss" if parts.scheme == "https" else "ws")


@dataclass
class _Counters:
    """Samples of one subtest: kernel counters, app bytes, server measurements."""

    kernel: list[tuple[float, float]] = field(default_factory=list)
    arrived: list[tuple[float, float]] = field(default_factory=list)
    app: list[tuple[float, float]] = field(default_factory=list)
    server: list[tuple[float, float]] = field(default_factory=list)
    server_rtt_ms: list[tuple[float, float]] = field(default_factory=list)
    kernel_rtt_ms: list[tuple[float, float]] = field(default_factory=list)
    bbr_bps: list[float] = field(default_factory=list)
    min_rtt_ms: float | None = None
    mss: int = MSS_DEFAULT
    app_bytes: int = 0
    used: int = 0
    last_server: dict[str, Any] = field(default_factory=dict)
    server_count: int = 0
    # Bytes the upload may have unacknowledged (_upload_cap); None: no cap.
    cap: int | None = None


def _server_measurement(c: _Counters, test: str, text: str) -> None:
    """Records one textual message from the server; anything malformed is ignored."""
    try:
        m = json.loads(text)
    except (ValueError, RecursionError):
        return
    if not isinstance(m, dict):
        return
    info = m.get("TCPInfo")
    if not isinstance(info, dict):
        return
    c.server_count += 1
    c.last_server = {k: v for k, v in info.items() if isinstance(v, int | float)}
    el = info.get("ElapsedTime")
    key = "BytesAcked" if test == "download" else "BytesReceived"
    count = info.get(key)
    if isinstance(el, int | float) and isinstance(count, int | float) and el >= 0:
        c.server.append((el / 1e6, float(count)))
        rtt = info.get("RTT")
        if isinstance(rtt, int | float) and rtt > 0:
            c.server_rtt_ms.append((el / 1e6, rtt / 1000))
    bbr = m.get("BBRInfo")
    if test == "download" and isinstance(bbr, dict) and isinstance(bbr.get("BW"), int | float):
        c.bbr_bps.append(float(bbr["BW"]) * 8)


def _in_window(xs: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    return [(t, v) for t, v in xs if t0 <= t <= t1]


async def run_subtest(
    test: str,
    url: str,
    resolve: Resolver,
    ssl_ctx: ssl.SSLContext | None,
    warmup_s: float,
    window_s: float,
    max_s: float,
    on_phase: Callable[[], None] | None = None,
    segments: int = PRECISE_SEGMENTS,
) -> Subtest:
    """One ndt7 download or upload: warm-up, then a window of ``window_s`` extended up to
    ``max_s`` while it holds fewer than ``segments`` full segments."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

    res = Subtest(test)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ip = await resolve(host)
    except Ndt7Error as exc:
        res.error = str(exc)
        return res
    tls = parts.scheme == "wss"
    kwargs: dict[str, Any] = {"host": ip, "port": parts.port or (443 if tls else 80)}
    if tls:
        kwargs["ssl"] = ssl_ctx or ssl.create_default_context()
        kwargs["server_hostname"] = host
    c = _Counters()
    t_start = time.monotonic()
    try:
        ws = await asyncio.wait_for(
            connect(
                url,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                max_size=MAX_MESSAGE,
                compression=None,
                ping_interval=None,
                close_timeout=CLOSE_TIMEOUT_S,
                user_agent_header=USER_AGENT,
                proxy=None,
                open_timeout=CONNECT_TIMEOUT_S,
                **kwargs,
            ),
            CONNECT_TIMEOUT_S + 0.5,
        )
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ssl.SSLError) as exc:
        res.error = f"connect: {type(exc).__name__}"
        return res
    if ws.subprotocol != SUBPROTOCOL:
        await ws.close()
        res.error = "connect: no-subprotocol"
        return res
    sock: Any = ws.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)
        if test == "upload":
            # Nagle back on (asyncio turns it off): a capped upload on a slow link writes a
            # message as the cap opens, and without Nagle each one left as a full segment plus
            # a runt holding the rest and the next message's 8-byte header, 74 bytes on the
            # wire each: at 64 kbit/s 91 % of the link's payload rate instead of 95.6 %. A bulk
            # sender always has data unacknowledged, so Nagle only ever joins segments here.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    first = tcpinfo.read(sock)
    if first is not None:
        c.mss = first.snd_mss or MSS_DEFAULT
    t0 = time.monotonic()
    warm_end = t0 + warmup_s
    stop = asyncio.Event()

    # The cap needs the kernel's counters (Linux); elsewhere the upload runs as the spec's.
    capped = test == "upload" and first is not None

    async def sampler() -> None:
        nonlocal capped
        while not stop.is_set():
            now = time.monotonic()
            info = tcpinfo.read(sock)
            if info is not None:
                value = info.bytes_received if test == "download" else info.carried_bytes
                if value is not None:
                    c.kernel.append((now - t0, float(value)))
                if test == "download" and info.arrived_bytes is not None:
                    c.arrived.append((now - t0, float(info.arrived_bytes)))
                if test == "upload" and info.rtt_us:
                    c.kernel_rtt_ms.append((now - t0, info.rtt_us / 1000))
                if info.min_rtt_us:
                    c.min_rtt_ms = info.min_rtt_us / 1000
                c.used = max(c.used, (info.bytes_received or 0) + (info.bytes_sent or 0))
            c.app.append((now - t0, float(c.app_bytes)))
            if capped:
                # Once set from a rate the cap only grows: a cap a little short of the link
                # would lower the rate, and the rate the cap in turn.
                cap = _upload_cap(c)
                if cap is not None and c.cap is not None and c.cap != INITIAL_WINDOW:
                    cap = max(cap, c.cap)
                c.cap = cap
                capped = cap is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)

    async def receiver() -> None:
        async for msg in ws:
            if isinstance(msg, str):
                _server_measurement(c, test, msg)
            elif test == "download":
                c.app_bytes += len(msg)
            else:
                raise Ndt7Error("protocol: binary-during-upload")

    async def sender() -> None:
        size = UPLOAD_INITIAL
        while True:
            # On a slow link: no more than the cap unacknowledged (what sits in our buffers and
            # the kernel's included), in messages that fit what is left of it.
            n = size
            while c.cap is not None:
                room = c.cap - (c.app_bytes - (c.kernel[-1][1] if c.kernel else 0.0))
                if room >= MIN_MESSAGE:
                    n = min(size, int(room))
                    break
                await asyncio.sleep(SAMPLE_S)
            await ws.send(_PAYLOAD[:n])
            c.app_bytes += n
            if size < UPLOAD_MAX and size <= c.app_bytes // SCALING_FRACTION:
                size *= 2

    tasks = [asyncio.create_task(sampler()), asyncio.create_task(receiver())]
    if test == "upload":
        tasks.append(asyncio.create_task(sender()))
    end = warm_end + window_s
    limit = warm_end + max(window_s, max_s)
    phase_told = False
    try:
        while True:
            now = time.monotonic()
            if not phase_told and now >= warm_end:
                phase_told = True
                if on_phase:
                    on_phase()
            done = [t for t in tasks[1:] if t.done()]
            if done:
                break  # the server closed (its 10 s are over) or the connection broke
            if now >= end:
                counted = _counted(c, warm_end - t0, now - t0)
                if counted >= segments * c.mss or now >= limit:
                    break
                end = min(limit, now + 0.1)
            await asyncio.sleep(min(0.05, max(0.0, end - now)))
    finally:
        stop.set()
        for t in tasks[1:]:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, Ndt7Error):
                await t
    t_stop = time.monotonic()
    err = next(
        (f"protocol: {type(t.exception()).__name__}" for t in tasks[1:]
         if not t.cancelled() and t.exception() is not None
         and not isinstance(t.exception(), ConnectionClosed)),
        None,
    )  # fmt: skip
    # The spec: a Close frame, and the server closes the TCP connection first. On a slow link the
    # server's answer queues behind data in flight: after CLOSE_TIMEOUT_S the socket is dropped.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
    ws.transport.abort()
    # From the start of the transfer: a handshake waiting behind data still queued on a slow
    # link (the other direction's, another program's) is the link's, reported apart.
    res.seconds = round(time.monotonic() - t0, 3)
    res.connect_s = round(t0 - t_start, 3)
    w0, w1 = warm_end - t0, t_stop - t0
    if w1 <= w0:
        # The server ended the subtest during the warm-up: the window is what there was.
        w0 = 0.0
    res.window_s = round(w1 - w0, 3)
    res.min_rtt_ms = round(c.min_rtt_ms, 3) if c.min_rtt_ms is not None else None
    res.server_measurements = c.server_count
    res.last_server = c.last_server
    res.bytes_used = c.used or int(c.app_bytes)
    # Server counters run on the server's clock (seconds since its subtest began, which is
    # about when our connection opened): the same window, in its time.
    s_win = _in_window(c.server, w0, w1)
    s_rate = window_rate(s_win)
    res.server_mbps = round(max(0.0, s_rate) * 8 / 1e6, 3) if s_rate is not None else None
    if _arrivals_fit(c):
        # Segments that arrived, in order or not (a retransmission's hole does not stall them).
        c.kernel = c.arrived
    for source, samples in (("kernel", c.kernel), ("app", c.app)):
        win = _in_window(samples, w0, w1)
        rate = window_rate(win)
        if rate is not None and (source == "kernel" or not c.kernel):
            res.source = source
            res.counted_bytes = int(win[-1][1] - win[0][1])
            res.mbps = round(max(0.0, rate) * 8 / 1e6, 3)
            break
    if res.mbps is None and res.server_mbps is not None:
        res.source, res.mbps = "server", res.server_mbps
        res.counted_bytes = int(s_win[-1][1] - s_win[0][1])
    if res.mbps is None:
        res.error = err or "no-data"
    elif res.counted_bytes > 0:
        res.precision = round(min(1.0, 2 * c.mss / res.counted_bytes), 3)
    else:
        res.precision = 1.0
    # Latency under load is the sender's view: the server's for the download, ours for the upload.
    rtts = c.server_rtt_ms if test == "download" else c.kernel_rtt_ms
    loaded = [v for t, v in rtts if w0 <= t <= w1]
    if loaded:
        res.loaded_rtt_ms = round(statistics.median(loaded), 3)
    if c.bbr_bps:
        res.bbr_mbps = round(c.bbr_bps[-1] / 1e6, 3)
    return res


def _upload_cap(c: _Counters) -> int | None:
    """Bytes the upload may have unacknowledged (None: no cap, the link is fast).

    A sender in slow start fills a slow link's queue: at 64 kbit/s our own upload had up to 48 kB
    (6 s) in the modem's queue when its window ended, and the download's handshake after it (or
    the next run's first request) waited behind it for longer than a connect time-out. So the
    upload holds what the link carries in ``QUEUE_S``, never under ``QUEUE_MIN_SEGMENTS``
    segments: the link stays busy, and what is left queued at the end drains in about
    ``QUEUE_S``. ``INITIAL_WINDOW`` until ``RATE_BASE_S``; no cap once ``QUEUE_S`` of the rate
    reaches ``SLOW_WINDOW_BYTES``. (The download is not capped through
    the receive window: on the lab's 64 kbit/s link the server's BBR then kept the queue empty
    and the link idle between segments, -14 %.)
    """
    if not c.kernel:
        return INITIAL_WINDOW
    now, delivered = c.kernel[-1]
    recent = [b for t, b in c.kernel if t >= now - FAST_PROOF_S]
    if delivered - recent[0] >= INITIAL_WINDOW:
        # The whole initial allowance delivered within FAST_PROOF_S: the round trip, not the
        # link, limits it; a fast link is never capped.
        return None
    if now < RATE_BASE_S:
        return INITIAL_WINDOW
    # The rate after the first RATE_SKIP_S: the handshake and a shaper's burst pass at line
    # rate (at 64 kbit/s the first 0.1 s read four times the link).
    base = [(t, b) for t, b in c.kernel if t >= RATE_SKIP_S]
    (t_first, b_first) = base[0]
    if now - t_first <= 0:
        return INITIAL_WINDOW
    segments = math.ceil((delivered - b_first) / (now - t_first) * QUEUE_S / c.mss)
    cap = max(segments, QUEUE_MIN_SEGMENTS) * c.mss
    return cap if cap < SLOW_WINDOW_BYTES else None


def _arrivals_fit(c: _Counters) -> bool:
    """Whether the segment count agrees with the in-order byte count (within 3 % under and 20 %
    over): full segments, so it counts bytes, not small writes.

    Compared up to the in-order count's last step: after it a hole may hold back everything that
    arrived, the very stall the segment count is for. Compared to the end, one segment lost
    0.2 s before the end of a 1 Mbit/s quick window put the count 29 % over, the stalled in-order
    count was taken, and the download read 0.58 Mbit/s (1 run in 16).
    """
    if len(c.arrived) != len(c.kernel) or not c.arrived:
        return False
    final = c.kernel[-1][1]
    last = next(i for i, (_t, v) in enumerate(c.kernel) if v == final)
    got, est = final - c.kernel[0][1], c.arrived[last][1] - c.arrived[0][1]
    return got > 0 and 0.97 * got <= est <= 1.2 * got


def _counted(c: _Counters, w0: float, now: float) -> float:
    samples = c.kernel or c.app
    win = [v for t, v in samples if t >= w0]
    if not win:
        return 0.0
    return win[-1] - win[0]
