"""The lab's emulators: shared wire format, HTTP plumbing, logging and process life cycle.

Each emulator is a standalone program started inside a lab namespace
(``python -m diag.lab.emulators.<name> ...``):

- ``device``    an IP camera or recorder: ISAPI-style HTTP with Digest auth, RTSP, P2P heartbeats
- ``platform``  the P2P platform: UDP hello/login/heartbeat, TCP relay, HTTPS status API
- ``speedtest`` HTTP download/upload of N bytes, ping and a ``/generate_204`` probe URL
- ``portal``    a captive portal: every request is redirected to a "data package used up" page
- ``pki``       the lab CA and server certificates (library and CLI)

The protocols are specified in ``docs/platform-protocol.md``. Everything here is stdlib only so that
an emulator starts in well under 0.3 s; every emulator logs one line per event to stderr, ignores or
answers 400 to malformed input, and exits cleanly (status 0) on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

# --------------------------------------------------------------------------------------------------
# The platform protocol (docs/platform-protocol.md): one ASCII datagram, fields split by one space.

MAGIC = "DIAGP2P1"
# A real datagram of this protocol is well under 200 bytes; anything larger is not ours.
MAX_DATAGRAM = 512
# Serials are printable ASCII tokens; the limit keeps logs and the registry bounded.
MAX_FIELD = 64
VERBS_ARITY = {
    "HELLO": 1,
    "WELCOME": 2,
    "LOGIN": 1,
    "OK": 1,
    "HB": 2,
    "ACK": 3,
    "RELOGIN": 1,
}


@dataclass(frozen=True)
class Datagram:
    """One parsed protocol message: its verb and its fields (all ASCII tokens)."""

    verb: str
    args: tuple[str, ...]

    def encode(self) -> bytes:
        return " ".join((MAGIC, self.verb, *self.args)).encode("ascii")


def _token_ok(tok: str) -> bool:
    return 0 < len(tok) <= MAX_FIELD and all(33 <= ord(c) <= 126 for c in tok)


def parse_datagram(data: bytes) -> Datagram | None:
    """The message in ``data``, or None when it is not a well-formed message of this protocol.

    Never raises: the servers feed it whatever arrives from the network.
    """
    if not isinstance(data, bytes | bytearray) or len(data) > MAX_DATAGRAM:
        return None
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        return None
    text = text.rstrip("\r\n")
    parts = text.split(" ")
    if len(parts) < 2 or parts[0] != MAGIC:
        return None
    verb, args = parts[1], tuple(parts[2:])
    if VERBS_ARITY.get(verb) != len(args) or not all(_token_ok(a) for a in args):
        return None
    if verb in ("HB", "ACK") and not args[1].isdigit():
        return None
    return Datagram(verb, args)


def make(verb: str, *args: str) -> bytes:
    """Encodes one message (the caller passes fields that are valid tokens)."""
    return Datagram(verb, tuple(args)).encode()


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) -> (host, port); ValueError naming the problem."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port_s = text.rpartition(":")
        if not sep:
            host, port_s = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if not port_s:
        if default_port is None:
            raise ValueError(f"no port in {text!r}")
        return host, default_port
    if not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_s)


# --------------------------------------------------------------------------------------------------
# Logging: one line per event on stderr, "time component event key=value ...".


def log(component: str, event: str, **fields: object) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    parts = [now, component, event]
    for key, value in fields.items():
        text = str(value)
        if not text or any(c.isspace() for c in text) or '"' in text:
            text = repr(text)
        parts.append(f"{key}={text}")
    try:
        print(" ".join(parts), file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr closed by whoever started us: logging must never stop the emulator


# --------------------------------------------------------------------------------------------------
# A small HTTP/1.1 server core shared by the device, platform API, speed test and portal.

# A request head larger than this is not a browser or a check: 400 rather than buffering it.
MAX_LINE = 8192
MAX_HEADERS = 100
# How long a client may take to send a request head; bounds idle keep-alive connections and
# slow-loris clients (s). Checks send their request at once; 30 s covers a congested LTE link.
HEAD_TIMEOUT_S = 30.0
# Bodies of requests that do not need one (device API, portal) are read and dropped up to this size.
MAX_DISCARD_BODY = 1 << 20

REASONS = {
    200: "OK",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


class BadRequest(Exception):
    """The client sent something that is not HTTP; answered with 400 and the connection closed."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    peer: tuple[str, int]
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def keep_alive(self) -> bool:
        conn = self.header("connection").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn


async def read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise BadRequest("truncated line") from None
        raise EOFError from None
    except asyncio.LimitOverrunError:
        raise BadRequest("line too long") from None
    if len(line) > MAX_LINE:
        raise BadRequest("line too long")
    return line


async def read_head(
    reader: asyncio.StreamReader, peer: tuple[str, int], versions: tuple[str, ...] = ("HTTP",)
) -> Request:
    """Reads a request line and headers (HTTP or RTSP); EOFError on a clean close before one."""
    line = await read_line(reader)
    while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore empty lines before a request line
        line = await read_line(reader)
    try:
        text = line.decode("ascii").rstrip("\r\n")
    except UnicodeDecodeError:
        raise BadRequest("non-ASCII request line") from None
    parts = text.split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper():
        raise BadRequest("malformed request line")
    method, target, version = parts
    if not any(version in (f"{v}/1.0", f"{v}/1.1") for v in versions) or not target:
        raise BadRequest("unsupported version")
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        hline = await read_line(reader)
        if hline in (b"\r\n", b"\n"):
            break
        try:
            htext = hline.decode("latin-1").rstrip("\r\n")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            raise BadRequest("bad header") from None
        name, sep, value = htext.partition(":")
        if not sep or not name or name != name.strip() or any(c.isspace() for c in name):
            raise BadRequest("malformed header")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    else:
        raise BadRequest("too many headers")
    req = Request(method, target, version, headers, peer)
    try:
        split = urlsplit(target)
        req.path = unquote(split.path) or "/"
        req.query = parse_qs(split.query, keep_blank_values=True)
    except ValueError:
        raise BadRequest("malformed target") from None
    return req


def content_length(req: Request) -> int:
    """The declared body length (0 when none); BadRequest when it is not a number."""
    raw = req.header("content-length")
    if not raw:
        return 0
    if not raw.isdigit():
        raise BadRequest("bad Content-Length")
    return int(raw)


async def discard_body(reader: asyncio.StreamReader, req: Request) -> None:
    """Reads and drops a small request body so the connection can serve the next request."""
    if req.header("transfer-encoding"):
        raise BadRequest("chunked bodies are not accepted here")
    n = content_length(req)
    if n > MAX_DISCARD_BODY:
        raise BadRequest("body too large")
    if n:
        try:
            await reader.readexactly(n)
        except asyncio.IncompleteReadError:
            raise EOFError from None


def response_head(
    status: int,
    headers: Mapping[str, str] | None = None,
    length: int | None = 0,
    version: str = "HTTP/1.1",
    close: bool = False,
) -> bytes:
    lines = [f"{version} {status} {REASONS.get(status, 'Status')}"]
    hdrs = dict(headers or {})
    if length is not None:
        hdrs.setdefault("Content-Length", str(length))
    if close:
        hdrs["Connection"] = "close"
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    close: bool = False,
    head_only: bool = False,
) -> None:
    writer.write(response_head(status, headers, len(body), close=close))
    if body and not head_only:
        writer.write(body)
    await writer.drain()


# A handler answers one request and says whether the connection may serve another.
Handler = Callable[[Request, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


Connection = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def connection(inner: Connection) -> Connection:
    """Wraps a ``start_server`` callback so that shutting down aborts its connection at once.

    On SIGTERM the loop cancels connection tasks; a cancelled task would wait for a slow client
    to take the rest of a download, and Python 3.11's stream callback logs an error for every
    cancelled one. Aborting the transport and returning normally ends both.
    """

    async def wrapper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await inner(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()

    return wrapper


def http_connection(component: str, handler: Handler) -> Connection:
    """A ``start_server`` callback serving keep-alive HTTP/1.1 with ``handler``; never raises."""

    @connection
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        try:
            while True:
                try:
                    req = await asyncio.wait_for(read_head(reader, peer), HEAD_TIMEOUT_S)
                except BadRequest as exc:
                    log(component, "bad-request", peer=_fmt_peer(peer), why=str(exc))
                    await send(writer, 400, b"bad request\n", close=True)
                    break
                if not await handler(req, reader, writer):
                    break
        except (EOFError, TimeoutError, ConnectionError, OSError):
            pass
        except BadRequest as exc:
            log(component, "bad-request", peer=_fmt_peer(peer), why=str(exc))
            with contextlib.suppress(Exception):
                await send(writer, 400, b"bad request\n", close=True)
        except Exception as exc:  # a bug must cost one connection, never the emulator
            log(component, "handler-error", peer=_fmt_peer(peer), error=repr(exc))
            with contextlib.suppress(Exception):
                await send(writer, 500, b"internal error\n", close=True)
        finally:
            await close_writer(writer)

    return serve


async def close_writer(writer: asyncio.StreamWriter) -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        # Shutting down: a graceful close would wait for a slow client to take buffered data.
        writer.transport.abort()
        return
    with contextlib.suppress(Exception):
        writer.close()
        # A TLS close_notify or a peer that stopped reading must not hold the task forever.
        await asyncio.wait_for(writer.wait_closed(), 2.0)


def _peer(writer: asyncio.StreamWriter) -> tuple[str, int]:
    info = writer.get_extra_info("peername")
    if isinstance(info, tuple) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return ("?", 0)


def _fmt_peer(peer: tuple[str, int]) -> str:
    return f"{peer[0]}:{peer[1]}"


# --------------------------------------------------------------------------------------------------
# Process life cycle.


def run(component: str, main: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Runs ``main(stop)`` until SIGTERM/SIGINT sets ``stop``; returns the exit status.

    ``main`` sets everything up, logs ``ready`` and awaits ``stop``; startup errors (a port in use,
    a missing file) are logged on one line and give exit status 1.
    """

    async def runner() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def on_error(_loop: asyncio.AbstractEventLoop, ctx: dict[str, object]) -> None:
            # asyncio reports failed TLS handshakes and the like here: one line, not a traceback.
            log(component, "asyncio-error", message=ctx.get("message"), error=ctx.get("exception"))

        loop.set_exception_handler(on_error)
        try:
            await main(stop)
        except OSError as exc:
            log(component, "startup-failed", error=str(exc))
            return 1
        log(component, "stopped")
        return 0

    try:
        return asyncio.run(runner())
    except KeyboardInterrupt:  # pragma: no cover - SIGINT before the handler was installed
        return 0


def fmt_addr(addr: object) -> str:
    """``ip:port`` of a socket address tuple (``[ip]:port`` for IPv6)."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return "?"
