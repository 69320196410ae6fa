"""Loopback fakes for unit tests: a DNS server, a P2P hello responder, TCP and HTTPS servers.

Every fake binds to 127.0.0.1 on a free port, runs in a daemon thread (so checks under test, the
CLI in a subprocess and asyncio code can all use it) and is a context manager that stops it. They
never send anything anywhere but back to the loopback peer that asked. Other helpers may reuse them.

- ``FakeDNS``: answers per name: addresses, NXDOMAIN, SERVFAIL, REFUSED, silence (hang), a delay,
  or raw bytes (hostile/malformed answers).
- ``HelloResponder``: the platform's UDP hello (docs/platform-protocol.md), can drop the first
  datagrams (to test retransmission) or answer garbage.
- ``UdpEcho``: echoes any datagram.
- ``TcpListener``: accepts and (optionally) sends a banner.
- ``HttpsServer`` with ``make_ca``/``make_cert``: TLS with a CA-signed or self-signed certificate
  (made with the ``openssl`` command, no extra Python dependency).
"""

from __future__ import annotations

import contextlib
import http.server
import select
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

LOOPBACK = "127.0.0.1"


class _Thread:
    """A serve loop in a daemon thread with a stop flag; subclasses implement ``_serve_once``."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name=type(self).__name__)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve_once()
            except OSError:
                if self._stop.is_set():
                    return

    def _serve_once(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._close()

    def _close(self) -> None:
        pass

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- DNS -------------------------------------------------------------------------------------


@dataclass
class Behaviour:
    """How ``FakeDNS`` answers one name.

    ``kind``: "answer" (``addresses``; A or AAAA picked by address family), "nxdomain", "servfail",
    "refused", "hang" (never answers), "raw" (``raw(query_wire) -> bytes`` sent as the answer).
    """

    kind: str = "answer"
    addresses: tuple[str, ...] = ()
    delay_s: float = 0.0
    raw: Callable[[bytes], bytes] | None = None
    # Ignore this many queries for the name first (a lost datagram: the client must retry).
    drop_first: int = 0
    seen: int = 0


def answer(*addresses: str, delay_s: float = 0.0, drop_first: int = 0) -> Behaviour:
    return Behaviour("answer", tuple(addresses), delay_s, drop_first=drop_first)


NXDOMAIN = Behaviour("nxdomain")
SERVFAIL = Behaviour("servfail")
REFUSED = Behaviour("refused")
HANG = Behaviour("hang")


def raw(fn: Callable[[bytes], bytes]) -> Behaviour:
    return Behaviour("raw", raw=fn)


class FakeDNS(_Thread):
    """A tiny authoritative-looking DNS server on 127.0.0.1 (UDP) built with dnspython.

    Names not in ``names`` get NXDOMAIN. ``queries`` records (name, type) of every query seen.
    """

    def __init__(self, names: Mapping[str, Behaviour] | None = None) -> None:
        super().__init__()
        self.names: dict[str, Behaviour] = {
            k.rstrip(".").lower(): v for k, v in (names or {}).items()
        }
        self.queries: list[tuple[str, str]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port: int = self.sock.getsockname()[1]
        self._timers: list[threading.Timer] = []

    @property
    def address(self) -> str:
        """``ip:port``, the form a site file's ``site_resolver`` takes."""
        return f"{LOOPBACK}:{self.port}"

    def _serve_once(self) -> None:
        ready, _, _ = select.select([self.sock], [], [], 0.1)
        if not ready:
            return
        wire, peer = self.sock.recvfrom(65535)
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return  # a real server ignores what it cannot parse
        q = query.question[0]
        name = q.name.to_text().rstrip(".").lower()
        self.queries.append((name, dns.rdatatype.to_text(q.rdtype)))
        beh = self.names.get(name, NXDOMAIN)
        beh.seen += 1
        if beh.kind == "hang" or beh.seen <= beh.drop_first:
            return
        if beh.kind == "raw":
            assert beh.raw is not None
            out = beh.raw(wire)
        else:
            resp = dns.message.make_response(query)
            if beh.kind == "nxdomain":
                resp.set_rcode(dns.rcode.NXDOMAIN)
            elif beh.kind == "servfail":
                resp.set_rcode(dns.rcode.SERVFAIL)
            elif beh.kind == "refused":
                resp.set_rcode(dns.rcode.REFUSED)
            else:
                want = dns.rdatatype.to_text(q.rdtype)
                addrs = [a for a in beh.addresses if (":" in a) == (want == "AAAA")]
                if addrs and want in ("A", "AAAA"):
                    resp.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", want, addrs))
            out = resp.to_wire()
        if beh.delay_s > 0:
            t = threading.Timer(beh.delay_s, self._send_late, (out, peer))
            t.daemon = True
            self._timers.append(t)
            t.start()
        else:
            self.sock.sendto(out, peer)

    def _send_late(self, out: bytes, peer: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(out, peer)

    def _close(self) -> None:
        for t in self._timers:
            t.cancel()
        self.sock.close()


# --- P2P platform: UDP hello and echo ----------------------------------------------------------


class HelloResponder(_Thread):
    """Answers ``DIAGP2P1 HELLO <nonce>`` with ``DIAGP2P1 WELCOME <nonce> <ip>:<port>``.

    ``drop_first``: ignore this many hellos first (the client must retransmit).
    ``reply``: replaces the answer (e.g. garbage) when set.
    """

    def __init__(self, drop_first: int = 0, reply: Callable[[bytes], bytes] | None = None) -> None:
        super().__init__()
        self.drop_first = drop_first
        self.reply = reply
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port: int = self.sock.getsockname()[1]

    def _serve_once(self) -> None:
        ready, _, _ = select.select([self.sock], [], [], 0.1)
        if not ready:
            return
        data, peer = self.sock.recvfrom(2048)
        self.received.append(data)
        if len(self.received) <= self.drop_first:
            return
        if self.reply is not None:
            self.sock.sendto(self.reply(data), peer)
            return
        parts = data.decode("ascii", "replace").split()
        if len(parts) == 3 and parts[0] == "DIAGP2P1" and parts[1] == "HELLO":
            out = f"DIAGP2P1 WELCOME {parts[2]} {peer[0]}:{peer[1]}"
            self.sock.sendto(out.encode(), peer)

    def _close(self) -> None:
        self.sock.close()


class UdpEcho(HelloResponder):
    """Echoes every datagram back (``probe = "udp-echo"``)."""

    def __init__(self, drop_first: int = 0) -> None:
        super().__init__(drop_first=drop_first, reply=lambda d: d)


def closed_udp_port() -> int:
    """A loopback UDP port nothing listens on (the kernel answers ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


def closed_tcp_port() -> int:
    """A loopback TCP port nothing listens on (connect is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


# --- TCP -------------------------------------------------------------------------------------


class TcpListener(_Thread):
    """Accepts connections, sends ``banner`` if any, then closes them."""

    def __init__(self, banner: bytes = b"") -> None:
        super().__init__()
        self.banner = banner
        self.accepted = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOOPBACK, 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]

    def _serve_once(self) -> None:
        ready, _, _ = select.select([self.sock], [], [], 0.1)
        if not ready:
            return
        conn, _ = self.sock.accept()
        self.accepted += 1
        with conn:
            if self.banner:
                with contextlib.suppress(OSError):
                    conn.sendall(self.banner)

    def _close(self) -> None:
        self.sock.close()


# --- TLS certificates and HTTPS --------------------------------------------------------------


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str = "diag test CA") -> CertFiles:
    """A self-signed CA certificate and key in ``directory``."""
    cert, key = directory / "ca.pem", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign",
    )  # fmt: skip
    return CertFiles(cert, key)


def make_cert(
    directory: Path,
    names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = (LOOPBACK,),
    ca: CertFiles | None = None,
    stem: str = "server",
) -> CertFiles:
    """A server certificate for ``names``/``ips``, signed by ``ca`` (self-signed without one)."""
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    san = ",".join([*(f"DNS:{n}" for n in names), *(f"IP:{i}" for i in ips)])
    cn = names[0] if names else ips[0]
    if ca is None:
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={cn}",
            "-addext", f"subjectAltName={san}",
        )  # fmt: skip
        return CertFiles(cert, key)
    csr = directory / f"{stem}.csr"
    ext = directory / f"{stem}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n", encoding="ascii")
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    return CertFiles(cert, key)


@dataclass
class _Routes:
    status: int = 200
    body: bytes = b'{"status": "ok"}'
    hits: list[str] = field(default_factory=list)


class HttpsServer:
    """An HTTPS (or plain HTTP when ``cert`` is None) server on 127.0.0.1 answering every GET."""

    def __init__(self, cert: CertFiles | None, status: int = 200, body: bytes = b"{}") -> None:
        routes = _Routes(status, body)
        self.routes = routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                routes.hits.append(self.path)
                self.send_response(routes.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(routes.body)))
                self.end_headers()
                self.wfile.write(routes.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.httpd.daemon_threads = True
        if cert is not None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(cert.cert), str(cert.key))
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.1,), daemon=True)

    @property
    def hits(self) -> list[str]:
        return self.routes.hits

    def __enter__(self) -> HttpsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def running(*fakes: Any) -> Iterator[tuple[Any, ...]]:
    """Starts several fakes and stops them all at the end."""
    with contextlib.ExitStack() as stack:
        yield tuple(stack.enter_context(f) for f in fakes)


def wait_until(pred: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


def make_site(
    profile: Mapping[str, Any] | None = None,
    network: Mapping[str, Any] | None = None,
    devices: list[dict[str, Any]] | None = None,
    thresholds: Mapping[str, Any] | None = None,
) -> Any:
    """A ``Site`` on the empty ``loopback`` profile with the given overrides (no real hosts)."""
    from diag.config import parse_site

    data: dict[str, Any] = {
        "site": {"name": "loopback test", "profile": "loopback"},
        "network": {"site_resolver": "127.0.0.1:9", **(network or {})},
        "profile": dict(profile or {}),
        "devices": devices or [],
    }
    if thresholds:
        data["thresholds"] = dict(thresholds)
    return parse_site(data, None)


async def run_check(check: Any, site: Any, deadline_s: float = 10.0) -> Any:
    """Runs one check through the real runner (plan + run) and returns its ``CheckResult``."""
    from diag.checks.base import registry_from
    from diag.runner import Runner, plan

    reg = registry_from(check)
    the_plan = plan(site, reg, [check.id])
    results = await Runner(reg, deadline_s=deadline_s).run(site, the_plan)
    return next(r for r in results if r.check_id == check.id)
