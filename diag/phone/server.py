"""The one-time web server behind ``diag phone``: the page and its result endpoint, nothing else.

It listens on the laptop's site-facing address at a random port. Every URL it answers starts
with a one-time token (128 bits); anything else is a bare 404, the same for a wrong token as for
a wrong path, so a scanner on the LAN learns nothing. It serves exactly two things: ``GET
/<token>/`` (the self-contained page, with the profile's STUN servers and platform endpoints as
data) and ``POST /<token>/result`` (the measurements, parsed strictly by ``diag.phone.result``).
It never serves a file, a directory, the site config or any secret. It stops after the first
valid result or at its deadline (5 minutes by default), whichever comes first.

HTTPS is an option (``tls=True``): a throwaway self-signed certificate for the bound address,
made in memory and never written anywhere but a private temporary file that is deleted as soon
as the TLS context has loaded it. Browsers show a warning for it; the installer accepts it once.
Only a secure context gets the Battery Status API (Chrome 103+), so plain HTTP measures the
rest and reports the battery as not measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import ipaddress
import json
import os
import secrets
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from diag.net.addr import join_host_port
from diag.phone import result as presult
from diag.phone.result import PhoneResult, ResultError

PAGE = Path(__file__).with_name("page.html")
# The phone has this long to open the page and send its result, s (the issue's 5 minutes).
DEFAULT_WAIT_S = 300.0
# One request's headers must arrive within this, s: a phone on Wi-Fi sends them at once; a slow
# client holding a connection open must not hold the server.
REQUEST_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 8 * 1024
# The page's own timeouts, ms: ICE gathering per peer connection (a STUN answer takes one RTT,
# Chromium retransmits from 250 ms on; 3 s is several retransmissions on a slow cell) and one
# endpoint fetch (TCP + TLS over mobile data: three or four RTTs of up to 300 ms, well below
# 4 s). The page waits for both in parallel, so a phone is done in about 4 s even on a network
# that drops everything.
GATHER_MS = 3000
FETCH_MS = 4000
# Connections served at once; more wait. The phone needs two at a time at most.
MAX_CLIENTS = 8


@dataclass(frozen=True)
class PageConfig:
    """What the page is told to measure (never a secret: servers and URLs from the profile)."""

    stun: tuple[str, ...] = ()  # "host:port"
    endpoints: tuple[str, ...] = ()  # https URLs


@dataclass
class Events:
    """Callbacks the command and the dashboard get (called on the server's event loop)."""

    on_connect: Callable[[str, str], None] = lambda _peer, _ua: None
    on_result: Callable[[PhoneResult], None] = lambda _r: None
    on_reject: Callable[[str, ResultError], None] = lambda _peer, _e: None


@dataclass
class PhoneServer:
    host: str
    config: PageConfig
    port: int = 0
    tls: bool = False
    events: Events = field(default_factory=Events)
    clock_ms: Callable[[], float] = lambda: time.time() * 1000.0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # Set once started
    _server: asyncio.Server | None = None
    _done: asyncio.Event = field(default_factory=asyncio.Event)
    _result: PhoneResult | None = None
    _connected: bool = False
    _sem: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CLIENTS))
    rejected: int = 0
    _nonce: str = ""

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{join_host_port(self.host, self.port)}/{self.token}/"

    @property
    def result(self) -> PhoneResult | None:
        return self._result

    async def start(self) -> None:
        ctx = _self_signed_context(self.host) if self.tls else None
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, ssl=ctx, limit=MAX_HEADER_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def wait(self, timeout_s: float = DEFAULT_WAIT_S) -> PhoneResult | None:
        """The first valid result, or None at the deadline; the server is closed either way."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            await self.close()
        return self._result

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    # --- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer_of(writer)
        try:
            async with self._sem:
                await asyncio.wait_for(self._serve_one(reader, writer, peer), REQUEST_TIMEOUT_S)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass
        except ValueError:
            # StreamReader's limit: a header line longer than MAX_HEADER_BYTES.
            with contextlib.suppress(OSError):
                await self._respond(writer, 431, b"")
        except asyncio.CancelledError:
            # The server is closing while a browser holds an idle connection: end it quietly
            # (Python 3.11's stream callback would print the cancellation as an error).
            pass
        finally:
            try:
                writer.close()
            except OSError:
                pass

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADER_BYTES:
            await self._respond(writer, 431, b"")
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._respond(writer, 400, b"")
            return
        method, target = parts[0], parts[1]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        route = self._route(target)
        if route == "page" and method in ("GET", "HEAD"):
            if not self._connected:
                self._connected = True
                self.events.on_connect(peer, headers.get("user-agent", ""))
            body = self.page()
            await self._respond(writer, 200, body if method == "GET" else b"", self._page_headers())
            return
        if route == "result" and method == "POST":
            await self._post(reader, writer, peer, headers)
            return
        if route is not None:
            await self._respond(writer, 405, b"")
            return
        await self._respond(writer, 404, b"")

    def _route(self, target: str) -> str | None:
        path = target.split("?", 1)[0]
        if not path.startswith("/"):
            return None
        token, slash, rest = path[1:].partition("/")
        if not slash or not hmac.compare_digest(token.encode(), self.token.encode()):
            return None
        return {"": "page", "result": "result"}.get(rest)

    async def _post(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        headers: dict[str, str],
    ) -> None:
        if self._result is not None:
            await self._respond(writer, 409, b"")  # one result per token
            return
        length_text = headers.get("content-length", "")
        if not length_text.isascii() or not length_text.isdigit():
            await self._respond(writer, 411, b"")
            return
        length = int(length_text)
        if length > presult.MAX_BODY_BYTES:
            # Refused before reading: a hostile client cannot make us buffer a large body.
            self._reject(peer, ResultError("body", "too large"))
            await self._respond(writer, 413, b"")
            return
        body = await reader.readexactly(length)
        try:
            res = presult.parse(
                body,
                peer=peer,
                received_at_ms=self.clock_ms(),
                stun_servers=self.config.stun,
                endpoint_urls=self.config.endpoints,
            )
        except ResultError as exc:
            self._reject(peer, exc)
            # The field's name only (our own words), never the value that was sent.
            reply = json.dumps({"ok": False, "field": exc.where}).encode()
            await self._respond(writer, 400, reply, {"Content-Type": "application/json"})
            return
        self._result = res
        await self._respond(writer, 200, b'{"ok": true}', {"Content-Type": "application/json"})
        self.events.on_result(res)
        self._done.set()

    def _reject(self, peer: str, exc: ResultError) -> None:
        self.rejected += 1
        self.events.on_reject(peer, exc)

    def page(self) -> bytes:
        """The page with this session's token, servers and a fresh CSP nonce."""
        return self._render(secrets.token_urlsafe(12))

    def _render(self, nonce: str) -> bytes:
        cfg = {
            "result": f"/{self.token}/result",
            "stun": list(self.config.stun),
            "endpoints": list(self.config.endpoints),
            "gather_ms": GATHER_MS,
            "fetch_ms": FETCH_MS,
        }
        # Inside <script type="application/json">: no "<" may appear, or "</script>" ends it.
        data = json.dumps(cfg).replace("<", "\\u003c").replace(">", "\\u003e")
        data = data.replace("&", "\\u0026")
        self._nonce = nonce
        html = PAGE.read_text(encoding="utf-8")
        return html.replace("__CONFIG__", data).replace("__NONCE__", nonce).encode("utf-8")

    def _page_headers(self) -> dict[str, str]:
        origins = sorted({_origin(u) for u in self.config.endpoints})
        csp = (
            "default-src 'none'; "
            f"script-src 'nonce-{self._nonce}'; style-src 'nonce-{self._nonce}'; "
            f"connect-src 'self' {' '.join(origins)}".rstrip()
            + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": csp,
        }

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        extra: dict[str, str] | None = None,
    ) -> None:
        reason = {
            200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 411: "Length Required", 413: "Content Too Large",
            431: "Request Header Fields Too Large",
        }.get(status, "Error")  # fmt: skip
        headers = {
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Connection": "close",
            **(extra or {}),
        }
        if "Content-Type" not in headers:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        await writer.drain()


def _peer_of(writer: asyncio.StreamWriter) -> str:
    info = writer.get_extra_info("peername")
    addr = info[0] if isinstance(info, tuple) and info else ""
    try:
        ip = ipaddress.ip_address(str(addr).split("%")[0])
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def page_config(stun: Sequence[tuple[str, int]], endpoints: Sequence[str]) -> PageConfig:
    return PageConfig(
        tuple(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in stun),
        tuple(dict.fromkeys(u for u in endpoints if u.startswith("https://"))),
    )


def _self_signed_context(host: str) -> ssl.SSLContext:
    """A TLS context with a fresh self-signed certificate (EC P-256, valid one day) for ``host``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "diag phone")])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only: a private file, removed right after loading.
    fd, path = tempfile.mkstemp(prefix="diag-phone-", suffix=".pem")
    try:
        os.write(fd, pem)
        os.close(fd)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)
    return ctx
