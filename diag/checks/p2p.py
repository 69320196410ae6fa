"""P2P platform reachability: every profile server probed the way the platform is used.

Per server (concurrently): the host name is resolved through the site resolver (``dns.py``'s
helper, never the laptop's resolver library; a literal IP skips this), then probed by its kind:
``hello`` (the platform's UDP hello, docs/platform-protocol.md, retransmitted with backoff),
``udp-echo`` (any answer to a datagram), ``connect`` (TCP handshake), ``https`` (TLS + HTTP GET
with certificate checks against the profile's CA file or the system store). Reachability, round
trip, the error class and the public address the platform saw are facts per server label.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from diag.checks.base import Check, Context, profile_need
from diag.i18n import msg
from diag.model import Fact, Metric, Outcome, P2PServer, Site, Status
from diag.net.addr import is_ip, join_host_port
from diag.net.answer import Answer, error_status
from diag.net.http import CaFileError, client
from diag.net.resolve import ATTEMPT_TIMEOUTS_S, resolve_host
from diag.net.tcp import tcp_connect
from diag.net.udp import udp_exchange, udp_probe_for

# Waits between UDP (re)transmissions, s: 0.5 s covers a loaded LTE round trip (typically
# 50-300 ms); doubling twice more rides out a short burst of loss; 3.5 s in all.
UDP_BACKOFF_S: tuple[float, ...] = (0.5, 1.0, 2.0)
# TCP handshake, s: three SYN retransmits would take 7 s; a platform that needs more than 3 s
# to accept is unusable for live view anyway.
CONNECT_TIMEOUT_S = 3.0
# Whole HTTPS exchange (connect + TLS + request), s: TLS adds two round trips to the handshake.
HTTPS_TIMEOUT_S = 5.0
# p2p.error when the profile's ca_file cannot be loaded (the same word as device.platform_error).
CA_FILE_ERROR = "ca-file"


@dataclass
class Probe:
    """What probing one server found."""

    reachable: bool = False
    rtt_ms: float | None = None
    error: str | None = None
    tls_valid: bool | None = None
    public_address: str | None = None
    resolved: list[str] = field(default_factory=list)


def _probe(a: Answer, public: bool = False) -> Probe:
    """A ``diag.net`` answer as this check's probe (an OS error that is not a refusal or a
    timeout counts as unreachable)."""
    if a.ok:
        return Probe(True, a.rtt_ms, public_address=(a.info or None) if public else None)
    return Probe(error="unreachable" if a.status == "error" else a.status)


def _os_error(exc: OSError) -> str:
    status = error_status(exc)
    return "unreachable" if status == "error" else status


async def probe_udp(
    ip: str, port: int, hello: bool, backoff: tuple[float, ...] = UDP_BACKOFF_S
) -> Probe:
    """Hello (``hello=True``) or echo probe; retransmits after each wait in ``backoff``."""
    kind = "hello" if hello else "echo"
    a = await udp_exchange(ip, port, lambda: udp_probe_for(kind), sum(backoff), gaps=backoff)
    return _probe(a, public=hello)


async def probe_connect(ip: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> Probe:
    return _probe(await tcp_connect(ip, port, timeout))


def _chained_os_error(exc: BaseException) -> OSError | None:
    """The OSError with an errno behind httpx/httpcore's wrappers, if any."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None:
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def _is_tls_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLError | ssl.CertificateError):
            return True
        cur = cur.__cause__ or cur.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


async def probe_https(
    server: P2PServer,
    ip: str,
    ca_file: str | None,
    timeout: float = HTTPS_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> Probe:
    """GET / over TLS (plain HTTP for ``protocol = "http"``) to ``ip`` with the server's name.

    The URL carries the resolved address and the name goes in as SNI and Host, so the
    certificate is checked against the name while the site resolver's answer is what we dial.
    """
    tls = server.protocol != "http"
    scheme = "https" if tls else "http"
    url = f"{scheme}://{join_host_port(ip, server.port)}/"
    try:
        http = client(timeout=timeout, ca_file=ca_file, tls=tls)
    except CaFileError:
        # The profile's CA bundle is missing or not PEM: a local problem, nothing was
        # measured (it raised out of gather() and lost every other server's result too).
        return Probe(error=CA_FILE_ERROR)
    headers = {"Host": server.host, "User-Agent": "diag"}
    ext = {"sni_hostname": server.host} if tls else {}
    t0 = clock()
    try:
        async with (
            http as conn,
            # Streamed and never read: the status line is the answer, and a body (a captive
            # portal's, an endless one) must not be buffered; the timeout is per read only.
            conn.stream("GET", url, headers=headers, extensions=ext) as resp,
        ):
            pass
    except httpx.TimeoutException:
        return Probe(error="timeout")
    except httpx.ConnectError as exc:
        if tls and _is_tls_error(exc):
            return Probe(error="tls", tls_valid=False)
        os_err = _chained_os_error(exc)
        return Probe(error=_os_error(os_err) if os_err is not None else "unreachable")
    except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
        if tls and _is_tls_error(exc):
            return Probe(error="tls", tls_valid=False)
        return Probe(error="bad-reply", tls_valid=True if tls else None)
    rtt = round((clock() - t0) * 1000, 2)
    tls_valid = True if tls else None
    if resp.status_code >= 500:
        # The platform answers but says it cannot serve (maintenance): not reachable for use.
        return Probe(False, rtt, f"http-{resp.status_code}", tls_valid)
    return Probe(True, rtt, tls_valid=tls_valid)


class P2PCheck(Check):
    id = "p2p"
    names_platform = True
    title = msg("P2P platform: servers reachable by hello, TCP and HTTPS")
    needs = (profile_need("p2p_servers"),)
    # Resolution (up to 4 s) + the longest probe (UDP 3.5 s, HTTPS 5 s) run per server in
    # parallel: 10 s covers the worst case with some slack.
    timeout_s = 10.0

    def __init__(
        self,
        udp_backoff: tuple[float, ...] = UDP_BACKOFF_S,
        dns_attempts: tuple[float, ...] = ATTEMPT_TIMEOUTS_S,
    ) -> None:
        self.udp_backoff = udp_backoff
        self.dns_attempts = dns_attempts

    def targets(self, site: Site) -> tuple[str, ...]:
        return tuple(s.label for s in site.profile.p2p_servers)

    async def probe(self, ctx: Context, server: P2PServer, deadline: float) -> Probe:
        site = ctx.site
        addrs, lookup = await resolve_host(
            site, server.host, deadline, self.dns_attempts, ctx.world.net
        )
        if not addrs:
            return Probe(error="dns")
        ip = addrs[0]
        if server.probe in ("hello", "udp-echo"):
            found = await probe_udp(ip, server.port, server.probe == "hello", self.udp_backoff)
        elif server.probe == "connect":
            found = await probe_connect(ip, server.port)
        else:
            found = await probe_https(server, ip, site.profile.ca_file, clock=ctx.world.monotonic)
        if lookup is not None:
            found.resolved = list(addrs)
        return found

    async def run(self, ctx: Context) -> Outcome:
        servers = [s for s in ctx.site.profile.p2p_servers if s.label in ctx.targets]
        deadline = ctx.world.monotonic() + max(0.1, ctx.remaining() - 0.2)
        done = 0

        async def one(server: P2PServer) -> Probe:
            nonlocal done
            try:
                return await self.probe(ctx, server, deadline)
            finally:
                done += 1
                ctx.progress(done / len(servers), msg("{server} probed", server=server.label))

        probes = await asyncio.gather(*(one(s) for s in servers))
        facts: list[Fact] = []
        metrics: dict[str, Metric] = {}
        for server, p in zip(servers, probes, strict=True):
            t = server.label
            if p.error != CA_FILE_ERROR:  # unreadable CA bundle: reachability not measured
                facts.append(Fact("p2p.reachable", p.reachable, target=t))
            if p.rtt_ms is not None:
                facts.append(Fact("p2p.rtt_ms", p.rtt_ms, "ms", t))
                metrics[f"rtt_ms.{t}"] = Metric(p.rtt_ms, "ms")
            if p.error is not None:
                facts.append(Fact("p2p.error", p.error, target=t))
            if p.tls_valid is not None:
                facts.append(Fact("p2p.tls_valid", p.tls_valid, target=t))
            if p.public_address is not None:
                facts.append(Fact("p2p.public_address", p.public_address, target=t))
            if not _is_literal(server.host):
                facts.append(Fact("p2p.resolved", list(p.resolved), target=t))
        ok = sum(p.reachable for p in probes)
        metrics["servers"] = Metric(len(servers))
        metrics["reachable"] = Metric(ok)
        rtts = [p.rtt_ms for p in probes if p.reachable and p.rtt_ms is not None]
        if rtts:
            metrics["rtt_max_ms"] = Metric(max(rtts), "ms")
        status: Status
        if ok == len(servers):
            status = "ok"
            summary = msg(
                "all {n} platform servers reachable (slowest {ms} ms)",
                n=len(servers),
                ms=max(rtts) if rtts else 0.0,
            )
        else:
            status = "warn" if ok else "fail"
            down = [f"{s.label} ({p.error})" for s, p in zip(servers, probes, strict=True)]
            down = [d for d, p in zip(down, probes, strict=True) if not p.reachable]
            summary = msg(
                "{ok} of {n} platform servers reachable; not: {down}",
                ok=ok,
                n=len(servers),
                down=", ".join(down),
            )
        return Outcome(status, summary, metrics, tuple(facts))


_is_literal = is_ip
