"""The lab's device emulator: a camera or recorder with ISAPI-style HTTP, RTSP and P2P heartbeats.

CLI::

    python -m diag.lab.emulators.device --config FILE.json

The config is a JSON object: ``name``, ``serial`` (required), ``kind`` (``ipc`` | ``nvr``),
``channels``, ``model``, ``mac``, ``firmware``, ``bind`` (default ``0.0.0.0``), ``http_port`` (80),
``rtsp_port`` (554; 0 turns RTSP off), ``username`` and ``password_file`` (required; the password is
the file's content without surrounding white space), ``platform`` (``host:port`` of the platform's
UDP port), ``heartbeat_interval_s`` (30), ``p2p_enabled`` (true), ``reported`` (``ip``, ``mask``,
``gateway``, ``dns`` list: what the device's network settings page shows), ``lockout_s`` (60),
``vendor`` (what ONVIF/Dahua report as the manufacturer), ``apis`` (which of ``onvif``, ``isapi``,
``dahua`` it speaks; default all three), ``clock_offset_s`` (its clock minus true UTC, s),
``ntp`` (``enabled``, ``servers``), ``dhcp`` (false), ``discovery`` (WS-Discovery on; true),
``hostile`` (a broken web server instead: a mode of ``diag.lab.emulators.hostile``).
SIGHUP re-reads the config and the password file (to turn P2P off or change the password while
running); SIGTERM stops it. The HTTP API, RTSP and the heartbeat protocol are specified in
``docs/platform-protocol.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import hmac
import json
import secrets
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from diag.lab.emulators import (
    BadRequest,
    Request,
    close_writer,
    connection,
    content_length,
    discard_body,
    fmt_addr,
    hostile,
    http_connection,
    log,
    make,
    parse_datagram,
    parse_hostport,
    read_head,
    run,
    send,
)
from diag.lab.emulators.device_apis import (
    API_NAMES,
    Onvif,
    api_of,
    clock_is_wrong,
    dahua_route,
    device_now,
    start_discovery,
)

COMPONENT = "device"
# Failed logins that lock a client out, and the window they are counted in (s): the usual
# behaviour of OEM cameras ("5 wrong passwords in a minute").
LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW_S = 60.0
# How long the lockout lasts unless the config says otherwise (s).
DEFAULT_LOCKOUT_S = 60.0
# A nonce older than this is answered with stale=true so the client retries without asking the
# user again (s); 5 minutes is what common camera firmware uses.
NONCE_LIFETIME_S = 300.0
# Bound on remembered nonces: a scan of unauthenticated requests must not grow memory without end.
MAX_NONCES = 1024
# Heartbeats that may go unanswered before the device logs in again (the protocol's rule).
MISSED_BEFORE_RELOGIN = 3
# Default heartbeat interval of camera P2P clients (s).
DEFAULT_HB_INTERVAL_S = 30.0
# A SOAP request to the device service is a few kB; bigger is refused unread (bytes).
MAX_SOAP_BODY = 64 * 1024
# An RTSP client may idle between requests this long before the connection is dropped (s).
RTSP_IDLE_S = 60.0


class ConfigError(ValueError):
    """The config file is unusable; the message names the field."""


@dataclass(frozen=True)
class Config:
    serial: str
    username: str
    password_file: str
    name: str = ""
    kind: str = "ipc"
    channels: int = 1
    model: str = "DS-2CD2143G2-I"
    mac: str = "00:00:5e:00:53:01"
    firmware: str = "V5.7.3 build 230101"
    bind: str = "0.0.0.0"
    http_port: int = 80
    rtsp_port: int = 554
    platform: str = ""
    heartbeat_interval_s: float = DEFAULT_HB_INTERVAL_S
    p2p_enabled: bool = True
    reported: dict[str, Any] = field(default_factory=dict)
    lockout_s: float = DEFAULT_LOCKOUT_S
    vendor: str = "DIAG Lab"
    apis: tuple[str, ...] = API_NAMES
    clock_offset_s: float = 0.0
    ntp: dict[str, Any] = field(default_factory=lambda: {"enabled": True, "servers": []})
    dhcp: bool = False
    discovery: bool = True
    # A hostile web server instead of the normal one (diag.lab.emulators.hostile.MODES); "": none.
    hostile: str = ""

    @property
    def realm(self) -> str:
        return "NVR" if self.kind == "nvr" else "IP Camera"


def _get(data: dict[str, Any], key: str, typ: type | tuple[type, ...], default: Any) -> Any:
    if key not in data:
        if default is _REQUIRED:
            raise ConfigError(f"{key}: missing")
        return default
    value = data[key]
    typs = typ if isinstance(typ, tuple) else (typ,)
    # JSON true/false are ints to Python: a boolean where a number belongs is a mistake.
    if not isinstance(value, typs) or (isinstance(value, bool) and bool not in typs):
        raise ConfigError(f"{key}: expected {_typename(typ)}, got {type(value).__name__}")
    return value


def _typename(typ: type | tuple[type, ...]) -> str:
    if isinstance(typ, tuple):
        return " or ".join(t.__name__ for t in typ)
    return typ.__name__


_REQUIRED = object()


def load_config(path: str | Path) -> Config:
    """Reads and validates the device config; ConfigError names the bad field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    serial = _get(data, "serial", str, _REQUIRED)
    if not serial or len(serial) > 64 or not all(33 <= ord(c) <= 126 for c in serial):
        raise ConfigError("serial: must be 1-64 printable ASCII characters without spaces")
    kind = _get(data, "kind", str, "ipc")
    if kind not in ("ipc", "nvr"):
        raise ConfigError("kind: must be 'ipc' or 'nvr'")
    channels = _get(data, "channels", int, 1)
    if not 1 <= channels <= 256:
        raise ConfigError("channels: must be 1..256")
    ports = {}
    for key, default in (("http_port", 80), ("rtsp_port", 554)):
        port = _get(data, key, int, default)
        if not 0 <= port <= 65535 or (key == "http_port" and port == 0):
            raise ConfigError(f"{key}: not a port number")
        ports[key] = port
    interval = float(_get(data, "heartbeat_interval_s", (int, float), DEFAULT_HB_INTERVAL_S))
    if not interval > 0:
        raise ConfigError("heartbeat_interval_s: must be > 0")
    p2p = _get(data, "p2p_enabled", bool, True)
    platform = _get(data, "platform", str, "")
    if platform:
        try:
            parse_hostport(platform)
        except ValueError as exc:
            raise ConfigError(f"platform: {exc}") from None
    elif p2p:
        raise ConfigError("platform: needed when p2p_enabled is true")
    reported = _get(data, "reported", dict, {})
    for key in ("ip", "mask", "gateway"):
        if not isinstance(reported.get(key, ""), str):
            raise ConfigError(f"reported.{key}: expected a string")
    dns = reported.get("dns", [])
    if not isinstance(dns, list) or not all(isinstance(d, str) for d in dns):
        raise ConfigError("reported.dns: expected a list of strings")
    lockout_s = float(_get(data, "lockout_s", (int, float), DEFAULT_LOCKOUT_S))
    if lockout_s < 0:
        raise ConfigError("lockout_s: must be >= 0")
    apis = _get(data, "apis", list, list(API_NAMES))
    if not apis or not all(isinstance(a, str) and a in API_NAMES for a in apis):
        raise ConfigError(f"apis: a non-empty list of {', '.join(API_NAMES)}")
    offset = float(_get(data, "clock_offset_s", (int, float), 0.0))
    if not -1e9 < offset < 1e9:
        raise ConfigError("clock_offset_s: out of range")
    ntp = _get(data, "ntp", dict, {"enabled": True, "servers": []})
    if not isinstance(ntp.get("enabled", True), bool):
        raise ConfigError("ntp.enabled: expected true or false")
    servers = ntp.get("servers", [])
    if not isinstance(servers, list) or not all(isinstance(x, str) for x in servers):
        raise ConfigError("ntp.servers: expected a list of strings")
    hostile_mode = _get(data, "hostile", str, "")
    if hostile_mode and hostile_mode not in hostile.MODES:
        raise ConfigError(f"hostile: {hostile_mode!r} is not one of {', '.join(hostile.MODES)}")
    return Config(
        hostile=hostile_mode,
        vendor=_get(data, "vendor", str, Config.vendor),
        apis=tuple(dict.fromkeys(apis)),
        clock_offset_s=offset,
        ntp={"enabled": ntp.get("enabled", True), "servers": list(servers)},
        dhcp=_get(data, "dhcp", bool, False),
        discovery=_get(data, "discovery", bool, True),
        serial=serial,
        username=_get(data, "username", str, _REQUIRED),
        password_file=_get(data, "password_file", str, _REQUIRED),
        name=_get(data, "name", str, serial),
        kind=kind,
        channels=channels,
        model=_get(data, "model", str, Config.model),
        mac=_get(data, "mac", str, Config.mac),
        firmware=_get(data, "firmware", str, Config.firmware),
        bind=_get(data, "bind", str, "0.0.0.0"),
        http_port=ports["http_port"],
        rtsp_port=ports["rtsp_port"],
        platform=platform,
        heartbeat_interval_s=interval,
        p2p_enabled=p2p,
        reported=dict(reported),
        lockout_s=lockout_s,
    )


def read_password(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"password_file: cannot read {path}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# HTTP Digest authentication (RFC 7616, MD5, qop=auth), shared by HTTP and RTSP.


def parse_auth_params(text: str) -> dict[str, str]:
    """``key=value, key="quoted \\"value\\""`` -> dict (keys lower-case); tolerant, never raises."""
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in "= \t,":
            i += 1
        key = text[start:i].lower()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != "=":
            # a bare token: skip to the next comma
            while i < n and text[i] != ",":
                i += 1
            continue
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            buf = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            i += 1
            value = "".join(buf)
        else:
            start = i
            while i < n and text[i] != ",":
                i += 1
            value = text[start:i].strip()
        if key:
            out[key] = value
    return out


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@dataclass
class AuthResult:
    ok: bool
    stale: bool = False
    locked: bool = False


class DigestAuth:
    """Nonces, verification and per-client lockout for one device."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.opaque = secrets.token_hex(16)
        self.nonces: collections.OrderedDict[str, tuple[float, set[str]]] = (
            collections.OrderedDict()
        )
        self.failures: dict[str, collections.deque[float]] = {}
        self.locked_until: dict[str, float] = {}

    def challenge(self, stale: bool = False) -> str:
        nonce = secrets.token_hex(16)
        self.nonces[nonce] = (time.monotonic(), set())
        while len(self.nonces) > MAX_NONCES:
            self.nonces.popitem(last=False)
        cfg = self.device.cfg
        parts = [
            f'Digest realm="{cfg.realm}"',
            'qop="auth"',
            f'nonce="{nonce}"',
            f'opaque="{self.opaque}"',
            "algorithm=MD5",
            f"stale={'TRUE' if stale else 'FALSE'}",
        ]
        return ", ".join(parts)

    def is_locked(self, client: str) -> bool:
        until = self.locked_until.get(client)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self.locked_until[client]
        self.failures.pop(client, None)
        return False

    def _fail(self, client: str, why: str) -> AuthResult:
        now = time.monotonic()
        window = self.failures.setdefault(client, collections.deque())
        window.append(now)
        while window and now - window[0] > LOCKOUT_WINDOW_S:
            window.popleft()
        if len(self.failures) > MAX_NONCES:  # bound the table under a scan from many addresses
            self.failures.pop(next(iter(self.failures)))
        locked = len(window) >= LOCKOUT_FAILURES and self.device.cfg.lockout_s > 0
        if locked:
            self.locked_until[client] = now + self.device.cfg.lockout_s
        log(COMPONENT, "auth-failed", client=client, why=why, failures=len(window), locked=locked)
        return AuthResult(False, locked=locked)

    def verify(self, method: str, target: str, header: str, client: str) -> AuthResult:
        if self.is_locked(client):
            return AuthResult(False, locked=True)
        if not header:
            return AuthResult(False)
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return self._fail(client, "not digest")
        p = parse_auth_params(rest)
        cfg = self.device.cfg
        nonce = p.get("nonce", "")
        entry = self.nonces.get(nonce)
        if entry is None or time.monotonic() - entry[0] > NONCE_LIFETIME_S:
            # Not a wrong password: the client only needs a fresh nonce.
            return AuthResult(False, stale=True)
        if p.get("algorithm", "MD5").upper() != "MD5" or p.get("realm") != cfg.realm:
            return self._fail(client, "bad realm or algorithm")
        uri = p.get("uri", "")
        if uri != target and urlsplit(uri).path != urlsplit(target).path:
            return self._fail(client, "uri mismatch")
        qop = p.get("qop", "")
        ha1 = _md5(f"{p.get('username', '')}:{cfg.realm}:{self.device.password}")
        ha2 = _md5(f"{method}:{uri}")
        if qop == "auth":
            nc, cnonce = p.get("nc", ""), p.get("cnonce", "")
            if not nc or not cnonce:
                return self._fail(client, "qop without nc/cnonce")
            if nc in entry[1]:
                return AuthResult(False, stale=True)  # a replayed nc: make the client start over
            expected = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        elif not qop:
            expected = _md5(f"{ha1}:{nonce}:{ha2}")  # RFC 2069 clients
        else:
            return self._fail(client, "unsupported qop")
        user_ok = hmac.compare_digest(p.get("username", ""), cfg.username)
        if not (hmac.compare_digest(p.get("response", "").lower(), expected) and user_ok):
            return self._fail(client, "wrong credentials")
        if qop:
            entry[1].add(p.get("nc", ""))
        self.failures.pop(client, None)
        return AuthResult(True)


# --------------------------------------------------------------------------------------------------
# P2P heartbeats.


class HeartbeatProto(asyncio.DatagramProtocol):
    def __init__(self, hb: Heartbeat) -> None:
        self.hb = hb

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.hb.on_reply(data)

    def error_received(self, exc: Exception) -> None:
        self.hb.on_error(exc)


class Heartbeat:
    """LOGIN, then HB every interval; logs in again after 3 unanswered; reports its state."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.phase = "login"  # "login" until OK, then "hb"
        self.seq = 0
        self.pending = False  # the last datagram sent has not been answered
        self.missed = 0
        self.acked = False  # an ACK arrived since the last login
        self.wake = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None
        self.logins = 0
        self._last_error = ""
        # Set by the device: its clock is too far off for the cloud's TLS.
        self.clock_wrong = False

    @property
    def status(self) -> str:
        if not self.cfg.p2p_enabled:
            return "disabled"
        if self.missed >= MISSED_BEFORE_RELOGIN:
            return "offline"
        if self.phase == "hb" and self.acked:
            return "online"
        return "connecting"

    def on_reply(self, data: bytes) -> None:
        msg = parse_datagram(data)
        if msg is None or msg.args[0] != self.cfg.serial:
            return
        self._last_error = ""  # the path works again: log the next error when it comes
        if msg.verb == "OK" and self.phase == "login":
            self.phase, self.pending, self.missed, self.acked = "hb", False, 0, False
            self.logins += 1
            log(COMPONENT, "p2p-login-ok", serial=self.cfg.serial, logins=self.logins)
            self.wake.set()  # first heartbeat right away
        elif msg.verb == "ACK" and self.phase == "hb" and msg.args[1] == str(self.seq):
            was = self.status
            self.pending, self.missed, self.acked = False, 0, True
            if was != "online":
                log(COMPONENT, "p2p-online", serial=self.cfg.serial, public=msg.args[2])
        elif msg.verb == "RELOGIN" and self.phase == "hb":
            log(COMPONENT, "p2p-relogin-requested", serial=self.cfg.serial)
            self.phase, self.pending, self.acked = "login", False, False
            self.wake.set()

    def on_error(self, exc: Exception) -> None:
        text = str(exc)
        if text != self._last_error:  # one line per new error, not one per heartbeat
            log(COMPONENT, "p2p-send-error", serial=self.cfg.serial, error=text)
            self._last_error = text

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data)

    async def run(self) -> None:
        cfg = self.cfg
        if not cfg.p2p_enabled:
            log(COMPONENT, "p2p-disabled", serial=cfg.serial)
            return
        host, port = parse_hostport(cfg.platform)
        loop = asyncio.get_running_loop()
        local = None if cfg.bind in ("", "0.0.0.0", "::") else (cfg.bind, 0)
        try:
            while True:
                if self.transport is None:
                    try:
                        # One socket for the session: the device keeps its source port, so the
                        # site's NAT keeps one mapping (what the mapping-expiry scenario tests).
                        transport, _ = await loop.create_datagram_endpoint(
                            lambda: HeartbeatProto(self), remote_addr=(host, port), local_addr=local
                        )
                        self.transport = transport
                    except OSError as exc:
                        self.on_error(exc)
                        self.missed += 1
                if self.transport is not None:
                    self.tick()
                try:
                    await asyncio.wait_for(self.wake.wait(), cfg.heartbeat_interval_s)
                except TimeoutError:
                    pass
                self.wake.clear()
        finally:
            if self.transport is not None:
                self.transport.close()

    def tick(self) -> None:
        if self.pending:
            self.missed += 1
            if self.missed == MISSED_BEFORE_RELOGIN:
                log(COMPONENT, "p2p-offline", serial=self.cfg.serial, missed=self.missed)
        if self.phase == "hb" and self.missed >= MISSED_BEFORE_RELOGIN:
            log(COMPONENT, "p2p-relogin", serial=self.cfg.serial, why="heartbeats unanswered")
            self.phase, self.acked = "login", False
        if self.phase == "login" and self.clock_wrong:
            # The cloud's TLS certificate is not valid at the device's idea of "now": the login
            # never leaves the device (what a real one's P2P client does with a clock far off).
            if self.missed == 0 or self.missed == MISSED_BEFORE_RELOGIN:
                log(COMPONENT, "p2p-tls-failed", serial=self.cfg.serial, why="clock")
            self.pending = True
            return
        if self.phase == "login":
            self.send(make("LOGIN", self.cfg.serial))
            log(COMPONENT, "p2p-login-sent", serial=self.cfg.serial, platform=self.cfg.platform)
        else:
            self.seq += 1
            self.send(make("HB", self.cfg.serial, str(self.seq)))
        self.pending = True


# --------------------------------------------------------------------------------------------------
# The device: HTTP API, RTSP and the heartbeat task, reloadable on SIGHUP.


def _xml(tag: str, body: str) -> str:
    return f"<{tag}>{body}</{tag}>"


def _x(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


RTSP_STATUS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    454: "Session Not Found",
}


class Device:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self.cfg = load_config(config_path)
        self.password = read_password(self.cfg.password_file)
        self.auth = DigestAuth(self)
        self.hb = Heartbeat(self.cfg)
        self.hb_task: asyncio.Task[None] | None = None
        self.onvif = Onvif(self)

    # Reload ---------------------------------------------------------------------------------------

    def start_heartbeat(self) -> None:
        self.hb = Heartbeat(self.cfg)
        self.hb.clock_wrong = clock_is_wrong(self)
        self.hb_task = asyncio.create_task(self.hb.run())

    def reload(self) -> None:
        try:
            cfg = load_config(self.config_path)
            password = read_password(cfg.password_file)
        except ConfigError as exc:
            log(COMPONENT, "reload-failed", error=str(exc), keeping="old config")
            return
        old = self.cfg
        changed = sorted(k for k in cfg.__dataclass_fields__ if getattr(cfg, k) != getattr(old, k))
        pw_changed = password != self.password
        self.cfg, self.password = cfg, password
        log(
            COMPONENT,
            "reloaded",
            changed=",".join(changed) or "-",
            password_changed="yes" if pw_changed else "no",
        )
        for key in ("bind", "http_port", "rtsp_port"):
            if key in changed:
                log(COMPONENT, "reload-needs-restart", field=key)
        hb_keys = {
            "serial",
            "platform",
            "heartbeat_interval_s",
            "p2p_enabled",
            "bind",
            "clock_offset_s",
        }
        if hb_keys & set(changed):
            if self.hb_task is not None:
                self.hb_task.cancel()
            self.start_heartbeat()
        else:
            self.hb.cfg = cfg

    # HTTP -----------------------------------------------------------------------------------------

    def _client(self, req: Request) -> str:
        return req.peer[0]

    async def http(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        if self.cfg.hostile:
            kept = await hostile.answer(self.cfg.hostile, req, reader, writer)
            if kept is not None:
                return kept
        api = api_of(req.path)
        if api == "onvif" and req.method == "POST" and api in self.cfg.apis:
            return await self.onvif_http(req, reader, writer)
        await discard_body(reader, req)
        keep = req.keep_alive
        head = req.method == "HEAD"
        if api is not None and api not in self.cfg.apis:
            # An API this device does not have: its web server knows nothing of the path.
            log(COMPONENT, "http", client=fmt_addr(req.peer), method=req.method, path=req.path,
                status=404)  # fmt: skip
            await send(writer, 404, b"not found\n", {"Content-Type": "text/plain"},
                       close=not keep, head_only=head)  # fmt: skip
            return keep
        result = self.auth.verify(
            req.method, req.target, req.header("authorization"), self._client(req)
        )
        if not result.ok:
            headers = {"WWW-Authenticate": self.auth.challenge(stale=result.stale)}
            if result.locked:
                headers["X-Lockout"] = "1"
            headers["Content-Type"] = "text/plain"
            log(
                COMPONENT,
                "http",
                client=fmt_addr(req.peer),
                method=req.method,
                path=req.path,
                status=401,
                locked=result.locked,
            )
            await send(writer, 401, b"unauthorized\n", headers, close=not keep, head_only=head)
            return keep
        status, body = self.route(req)
        log(
            COMPONENT,
            "http",
            client=fmt_addr(req.peer),
            method=req.method,
            path=req.path,
            status=status,
        )
        ctype = "text/plain"
        if status == 200 and api != "dahua":
            ctype = "application/xml; charset=UTF-8"
        data = body.encode("utf-8")
        await send(writer, status, data, {"Content-Type": ctype}, close=not keep, head_only=head)
        return keep

    async def onvif_http(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """SOAP on the device service: the body is read (capped), the envelope answered."""
        n = content_length(req)
        if req.header("transfer-encoding") or n > MAX_SOAP_BODY:
            await send(writer, 413, b"too large\n", close=True)
            return False
        try:
            body = await reader.readexactly(n) if n else b""
        except asyncio.IncompleteReadError:
            return False
        local = writer.get_extra_info("sockname")
        local_ip = str(local[0]) if isinstance(local, tuple) else self.cfg.bind
        status, data, headers = self.onvif.handle(body, self._client(req), local_ip)
        log(COMPONENT, "onvif", client=fmt_addr(req.peer), status=status, bytes=len(body))
        headers = {"Content-Type": "application/soap+xml; charset=utf-8", **headers}
        await send(writer, status, data, headers, close=not req.keep_alive)
        return req.keep_alive

    def route(self, req: Request) -> tuple[int, str]:
        if req.method not in ("GET", "HEAD"):
            return 405, "method not allowed\n"
        cfg = self.cfg
        path = req.path.rstrip("/")
        head = '<?xml version="1.0" encoding="UTF-8"?>\n'
        if path.startswith("/cgi-bin/"):
            answer = dahua_route(self, path, urlsplit(req.target).query)
            return answer if answer is not None else (404, "not found\n")
        if path == "/ISAPI/System/time":
            now = device_now(self).isoformat(timespec="seconds")
            mode = "NTP" if cfg.ntp.get("enabled", True) else "manual"
            body = _x("timeMode", mode) + _x("localTime", now) + _x("timeZone", "CST+0:00:00")
            return 200, head + '<Time version="2.0">' + body + "</Time>\n"
        if path == "/ISAPI/System/time/ntpServers":
            servers = "".join(
                _xml(
                    "NTPServer",
                    _x("id", i + 1)
                    + _x("addressingFormatType", "ipaddress")
                    + _x("ipAddress", srv)
                    + _x("portNo", 123),
                )
                for i, srv in enumerate(cfg.ntp.get("servers", []))
            )
            return 200, head + '<NTPServerList version="2.0">' + servers + "</NTPServerList>\n"
        if path == "/ISAPI/System/deviceInfo":
            body = "".join(
                (
                    _x("deviceName", cfg.name),
                    _x("deviceID", uuid.uuid5(uuid.NAMESPACE_OID, cfg.serial)),
                    _x("model", cfg.model),
                    _x("serialNumber", cfg.serial),
                    _x("macAddress", cfg.mac),
                    _x("firmwareVersion", cfg.firmware),
                    _x("deviceType", "NVR" if cfg.kind == "nvr" else "IPCamera"),
                    _x("channels", cfg.channels),
                )
            )
            return 200, head + '<DeviceInfo version="2.0">' + body + "</DeviceInfo>\n"
        if path == "/ISAPI/System/Network/interfaces/1":
            rep = cfg.reported
            dns = list(rep.get("dns", []))
            dns += [""] * (2 - len(dns))
            ip = "".join(
                (
                    _x("ipVersion", "v4"),
                    _x("addressingType", "static"),
                    _x("ipAddress", rep.get("ip", "")),
                    _x("subnetMask", rep.get("mask", "")),
                    _xml("DefaultGateway", _x("ipAddress", rep.get("gateway", ""))),
                    _xml("PrimaryDNS", _x("ipAddress", dns[0])),
                    _xml("SecondaryDNS", _x("ipAddress", dns[1])),
                )
            )
            body = _x("id", 1) + _xml("IPAddress", ip) + _xml("Link", _x("MACAddress", cfg.mac))
            return 200, head + '<NetworkInterface version="2.0">' + body + "</NetworkInterface>\n"
        if path == "/ISAPI/System/Network/P2P":
            body = "".join(
                (
                    _x("enabled", "true" if cfg.p2p_enabled else "false"),
                    _x("status", self.hb.status),
                    _x("server", cfg.platform),
                )
            )
            return 200, head + '<P2P version="2.0">' + body + "</P2P>\n"
        return 404, "not found\n"

    # RTSP -----------------------------------------------------------------------------------------

    async def rtsp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info = writer.get_extra_info("peername")
        peer = (str(info[0]), int(info[1])) if isinstance(info, tuple) else ("?", 0)
        try:
            while True:
                try:
                    req = await asyncio.wait_for(read_head(reader, peer, ("RTSP",)), RTSP_IDLE_S)
                except BadRequest as exc:
                    log(COMPONENT, "rtsp-bad-request", client=fmt_addr(peer), why=str(exc))
                    await self._rtsp_reply(writer, 400, "", {})
                    break
                n = req.header("content-length")
                if n:
                    if not n.isdigit() or int(n) > 65536:
                        await self._rtsp_reply(writer, 400, req.header("cseq"), {})
                        break
                    await reader.readexactly(int(n))
                await self.rtsp_request(req, writer)
        except (EOFError, TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # a bug must cost one connection, never the emulator
            log(COMPONENT, "rtsp-error", client=fmt_addr(peer), error=repr(exc))
        finally:
            await close_writer(writer)

    async def rtsp_request(self, req: Request, writer: asyncio.StreamWriter) -> None:
        cseq = req.header("cseq")
        status = 200
        headers: dict[str, str] = {}
        body = b""
        if req.method == "OPTIONS":
            headers["Public"] = "OPTIONS, DESCRIBE"
        elif req.method == "DESCRIBE":
            client = req.peer[0]
            result = self.auth.verify("DESCRIBE", req.target, req.header("authorization"), client)
            if not result.ok:
                status = 401
                headers["WWW-Authenticate"] = self.auth.challenge(stale=result.stale)
                if result.locked:
                    headers["X-Lockout"] = "1"
            else:
                sdp = self.sdp(req, writer)
                if sdp is None:
                    status = 404
                else:
                    body = sdp.encode("utf-8")
                    headers["Content-Type"] = "application/sdp"
                    headers["Content-Base"] = req.target.rstrip("/") + "/"
        else:
            status = 405
            headers["Allow"] = "OPTIONS, DESCRIBE"
        log(
            COMPONENT,
            "rtsp",
            client=fmt_addr(req.peer),
            method=req.method,
            path=req.path,
            status=status,
        )
        await self._rtsp_reply(writer, status, cseq, headers, body)

    def sdp(self, req: Request, writer: asyncio.StreamWriter) -> str | None:
        """The SDP of ``/Streaming/Channels/<ch><stream>``: one H.264 track per channel."""
        prefix = "/Streaming/Channels/"
        path = req.path.rstrip("/")
        if not path.startswith(prefix):
            return None
        num = path[len(prefix) :]
        if not num.isdigit() or len(num) < 3:
            return None
        channel, stream = int(num[:-2]), int(num[-2:])
        if not 1 <= channel <= self.cfg.channels or stream not in (1, 2):
            return None
        local = writer.get_extra_info("sockname")
        ip = str(local[0]) if isinstance(local, tuple) else "0.0.0.0"
        lines = [
            "v=0",
            f"o=- {int(time.time())} 1 IN IP4 {ip}",
            f"s={self.cfg.name}",
            "c=IN IP4 0.0.0.0",
            "t=0 0",
            "a=control:*",
        ]
        for n in range(1, self.cfg.channels + 1):
            lines += [
                "m=video 0 RTP/AVP 96",
                "a=rtpmap:96 H264/90000",
                "a=fmtp:96 packetization-mode=1",
                f"a=control:trackID={n}",
            ]
        return "\r\n".join(lines) + "\r\n"

    async def _rtsp_reply(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        cseq: str,
        headers: dict[str, str],
        body: bytes = b"",
    ) -> None:
        lines = [f"RTSP/1.0 {status} {RTSP_STATUS.get(status, 'Status')}"]
        if cseq.isdigit():
            lines.append(f"CSeq: {cseq}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

    # Life cycle -----------------------------------------------------------------------------------

    async def main(self, stop: asyncio.Event) -> None:
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        servers = [
            await asyncio.start_server(
                http_connection(COMPONENT, self.http), cfg.bind, cfg.http_port
            )
        ]
        if cfg.rtsp_port:
            servers.append(
                await asyncio.start_server(connection(self.rtsp), cfg.bind, cfg.rtsp_port)
            )
        wsd = await start_discovery(self) if "onvif" in cfg.apis and cfg.discovery else None
        self.start_heartbeat()
        log(
            COMPONENT,
            "ready",
            apis=",".join(cfg.apis),
            name=cfg.name,
            serial=cfg.serial,
            kind=cfg.kind,
            bind=cfg.bind,
            http=cfg.http_port,
            rtsp=cfg.rtsp_port or "disabled",
            p2p="on" if cfg.p2p_enabled else "off",
            platform=cfg.platform or "-",
        )
        try:
            await stop.wait()
        finally:
            if self.hb_task is not None:
                self.hb_task.cancel()
                try:
                    await self.hb_task
                except (asyncio.CancelledError, Exception):
                    pass
            for srv in servers:
                srv.close()
            if wsd is not None:
                wsd.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m diag.lab.emulators.device", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--config", required=True, help="device config (JSON)")
    args = ap.parse_args(argv)
    # SIGHUP before the loop installs its handler must not kill a device that is starting up.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        device = Device(args.config)
    except ConfigError as exc:
        log(COMPONENT, "config-error", error=str(exc))
        return 2
    return run(COMPONENT, device.main)


if __name__ == "__main__":
    sys.exit(main())
