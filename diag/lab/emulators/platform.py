"""The lab's P2P platform emulator: UDP hello/login/heartbeat, TCP relay and HTTPS status API.

CLI::

    python -m diag.lab.emulators.platform --bind IP [--udp-port 32100] [--relay-port 443]
        [--api-port 8443] [--cert F --key F] [--login-delay 0.5] [--heartbeat-timeout 75]
        [--state-dump FILE]

The protocol is ``docs/platform-protocol.md``. Logins are served one at a time from a queue, each
taking ``--login-delay`` seconds (the vendor guide's "sequential login"). A device is online while
its last heartbeat is younger than ``--heartbeat-timeout`` seconds (2.5 x the heartbeat interval of
the lab's devices); a heartbeat after that gets ``RELOGIN``. The status API needs ``--cert`` and
``--key`` (made by ``diag.lab.emulators.pki``); without them it is not started. A port of 0
disables the relay or the API. ``--state-dump`` keeps a JSON copy of the registry in a file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from diag.lab.emulators import (
    Request,
    close_writer,
    connection,
    discard_body,
    fmt_addr,
    http_connection,
    log,
    make,
    parse_datagram,
    run,
    send,
)

COMPONENT = "platform"
# Default heartbeat timeout: 2.5 x the 30 s heartbeat interval typical of camera P2P clients (s).
DEFAULT_HB_TIMEOUT_S = 75.0
# The guide's sequential login: each device's login takes this long at the platform (s).
DEFAULT_LOGIN_DELAY_S = 0.5
# Bounds on what a flood of forged datagrams can make the emulator hold in memory.
MAX_DEVICES = 10_000
MAX_LOGIN_QUEUE = 10_000
# The relay echoes at most this much per connection, then closes: a probe needs a few bytes, and
# the lab must not become a traffic generator (bytes).
RELAY_ECHO_LIMIT = 1 << 20
# A relay connection with no traffic for this long is closed; probes are done within seconds (s).
RELAY_IDLE_S = 60.0
# After the echo bound, input is read and dropped this long before the close (s).
RELAY_LINGER_S = 2.0
RELAY_BANNER = b"DIAGP2P1 RELAY READY\r\n"
# The state dump is rewritten at most this often while heartbeats stream in (s).
DUMP_DEBOUNCE_S = 0.2
# ... and at least this often, so that "online" turns false in the file when heartbeats stop (s).
DUMP_REFRESH_S = 1.0


@dataclass
class DeviceRecord:
    serial: str
    logins: int = 0
    logged_in: bool = False
    last_login: float | None = None  # time.monotonic()
    last_heartbeat: float | None = None  # time.monotonic()
    public_address: str | None = None
    # How often the device's public address changed between datagrams of one session: a NAT that
    # forgets mappings faster than the heartbeat interval gives the device a new port each time.
    address_changes: int = 0


class Registry:
    """What the platform knows about devices: sessions, last heartbeats, public addresses."""

    def __init__(
        self, heartbeat_timeout_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timeout = heartbeat_timeout_s
        self.now = clock
        self.devices: dict[str, DeviceRecord] = {}

    def session_alive(self, rec: DeviceRecord) -> bool:
        last = max(rec.last_heartbeat or -1e18, rec.last_login or -1e18)
        return rec.logged_in and self.now() - last < self.timeout

    def online(self, rec: DeviceRecord) -> bool:
        return (
            rec.logged_in
            and rec.last_heartbeat is not None
            and self.now() - rec.last_heartbeat < self.timeout
        )

    def login(self, serial: str, addr: str) -> DeviceRecord | None:
        rec = self.devices.get(serial)
        if rec is None:
            if len(self.devices) >= MAX_DEVICES:
                return None
            rec = self.devices[serial] = DeviceRecord(serial)
        rec.logins += 1
        rec.logged_in = True
        rec.last_login = self.now()
        rec.public_address = addr
        return rec

    def heartbeat(self, serial: str, addr: str) -> bool:
        """Records a heartbeat; False when the device has no live session (it must log in)."""
        rec = self.devices.get(serial)
        if rec is None or not self.session_alive(rec):
            if rec is not None:
                rec.logged_in = False
            return False
        rec.last_heartbeat = self.now()
        if rec.public_address is not None and rec.public_address != addr:
            rec.address_changes += 1
            log(COMPONENT, "address-changed", serial=serial, old=rec.public_address, new=addr)
        rec.public_address = addr
        return True

    def status(self, rec: DeviceRecord) -> dict[str, object]:
        ago = None if rec.last_heartbeat is None else round(self.now() - rec.last_heartbeat, 3)
        return {
            "serial": rec.serial,
            "online": self.online(rec),
            "last_heartbeat_s_ago": ago,
            "public_address": rec.public_address,
            "logins": rec.logins,
            "address_changes": rec.address_changes,
        }


class PlatformUDP(asyncio.DatagramProtocol):
    """HELLO, LOGIN (queued, sequential) and HB; everything else is ignored."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.platform.on_datagram(data, addr)
        except Exception as exc:  # a bug must cost one datagram, never the emulator
            log(COMPONENT, "udp-error", peer=fmt_addr(addr), error=repr(exc))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies (a device that went away): nothing to do.
        pass


class Platform:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.registry = Registry(args.heartbeat_timeout)
        self.udp: PlatformUDP | None = None
        self.login_queue: asyncio.Queue[str] = asyncio.Queue()
        # serial -> the address its latest LOGIN came from, while it waits in the queue
        self.queued: dict[str, tuple[str, int]] = {}
        self.dump_path: Path | None = Path(args.state_dump) if args.state_dump else None
        self._dump_handle: asyncio.TimerHandle | None = None

    # UDP ------------------------------------------------------------------------------------------

    def reply(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.sendto(data, addr)

    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_datagram(data)
        if msg is None:
            return
        src = fmt_addr(addr)
        if msg.verb == "HELLO":
            self.reply(make("WELCOME", msg.args[0], src), addr)
            log(COMPONENT, "hello", peer=src)
        elif msg.verb == "LOGIN":
            serial = msg.args[0]
            if serial in self.queued:
                self.queued[serial] = addr  # answer where the latest attempt came from
                return
            if len(self.queued) >= MAX_LOGIN_QUEUE:
                return
            self.queued[serial] = addr
            self.login_queue.put_nowait(serial)
            log(COMPONENT, "login-queued", serial=serial, peer=src, queue=len(self.queued))
        elif msg.verb == "HB":
            serial, seq = msg.args
            if self.registry.heartbeat(serial, src):
                self.reply(make("ACK", serial, seq, src), addr)
                self.schedule_dump()
            else:
                self.reply(make("RELOGIN", serial), addr)
                log(COMPONENT, "relogin-requested", serial=serial, peer=src)

    async def login_worker(self) -> None:
        """Serves queued logins one at a time, each taking ``--login-delay`` seconds."""
        while True:
            serial = await self.login_queue.get()
            await asyncio.sleep(self.args.login_delay)
            addr = self.queued.pop(serial, None)
            if addr is None:
                continue
            src = fmt_addr(addr)
            rec = self.registry.login(serial, src)
            if rec is None:
                log(COMPONENT, "login-refused", serial=serial, why="registry full")
                continue
            self.reply(make("OK", serial), addr)
            log(COMPONENT, "login", serial=serial, peer=src, logins=rec.logins)
            self.schedule_dump()

    # State dump -----------------------------------------------------------------------------------

    def schedule_dump(self) -> None:
        if self.dump_path is None or self._dump_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._dump_handle = loop.call_later(DUMP_DEBOUNCE_S, self.write_dump)

    async def dump_refresher(self) -> None:
        while True:
            await asyncio.sleep(DUMP_REFRESH_S)
            self.schedule_dump()

    def write_dump(self) -> None:
        self._dump_handle = None
        if self.dump_path is None:
            return
        devices = [self.registry.status(r) for r in self.registry.devices.values()]
        data = {"time": time.time(), "devices": devices}
        tmp = self.dump_path.with_name(self.dump_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(tmp, self.dump_path)
        except OSError as exc:
            log(COMPONENT, "state-dump-failed", error=str(exc))

    # TCP relay ------------------------------------------------------------------------------------

    async def relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = fmt_addr(writer.get_extra_info("peername"))
        echoed = 0
        log(COMPONENT, "relay-connect", peer=peer)
        try:
            writer.write(RELAY_BANNER)
            await writer.drain()
            while echoed < RELAY_ECHO_LIMIT:
                data = await asyncio.wait_for(reader.read(65536), RELAY_IDLE_S)
                if not data:
                    break
                data = data[: RELAY_ECHO_LIMIT - echoed]
                writer.write(data)
                await writer.drain()
                echoed += len(data)
            if echoed >= RELAY_ECHO_LIMIT:
                # A clean FIN, then drop what is still in flight for a moment: closing with
                # unread data would reset the connection and lose the echo the client awaits.
                writer.write_eof()
                await asyncio.wait_for(self._discard(reader), RELAY_LINGER_S)
        except (TimeoutError, ConnectionError, OSError):
            pass
        finally:
            log(COMPONENT, "relay-close", peer=peer, echoed=echoed)
            await close_writer(writer)

    @staticmethod
    async def _discard(reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    # HTTPS status API -----------------------------------------------------------------------------

    async def api(
        self, req: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        await discard_body(reader, req)
        keep = req.keep_alive
        if req.method not in ("GET", "HEAD"):
            await self._json(
                writer, 405, {"error": "method not allowed"}, keep, req, {"Allow": "GET"}
            )
            return keep
        path = req.path.rstrip("/") or "/"
        status: int = 404
        body: object = {"error": "not found"}
        if path == "/api/v1/health":
            status, body = 200, {"status": "ok"}
        elif path == "/api/v1/devices":
            devs = sorted(self.registry.devices.values(), key=lambda r: r.serial)
            status, body = 200, [self.registry.status(r) for r in devs]
        elif path.startswith("/api/v1/devices/"):
            serial = path[len("/api/v1/devices/") :]
            rec = self.registry.devices.get(serial)
            if rec is None:
                status, body = 404, {"error": "unknown device"}
            else:
                status, body = 200, self.registry.status(rec)
        log(COMPONENT, "api", peer=fmt_addr(req.peer), method=req.method, path=path, status=status)
        await self._json(writer, status, body, keep, req)
        return keep

    async def _json(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: object,
        keep: bool,
        req: Request,
        extra: dict[str, str] | None = None,
    ) -> None:
        data = (json.dumps(body) + "\n").encode()
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **(extra or {})}
        await send(writer, status, data, headers, close=not keep, head_only=req.method == "HEAD")

    # Life cycle -----------------------------------------------------------------------------------

    async def main(self, stop: asyncio.Event) -> None:
        a = self.args
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(
            lambda: PlatformUDP(self), local_addr=(a.bind, a.udp_port)
        )
        self.udp = proto
        servers: list[asyncio.Server] = []
        if a.relay_port:
            servers.append(await asyncio.start_server(connection(self.relay), a.bind, a.relay_port))
        api_note = "disabled"
        if a.api_port and a.cert and a.key:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(a.cert, a.key)
            handler = http_connection(COMPONENT, self.api)
            servers.append(
                await asyncio.start_server(
                    handler, a.bind, a.api_port, ssl=ctx, ssl_handshake_timeout=10.0
                )
            )
            api_note = str(a.api_port)
        tasks = [asyncio.create_task(self.login_worker())]
        if self.dump_path is not None:
            tasks.append(asyncio.create_task(self.dump_refresher()))
        log(
            COMPONENT,
            "ready",
            bind=a.bind,
            udp=a.udp_port,
            relay=a.relay_port or "disabled",
            api=api_note,
            login_delay=a.login_delay,
            heartbeat_timeout=a.heartbeat_timeout,
        )
        self.schedule_dump()
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for srv in servers:
                srv.close()
            if proto.transport is not None:
                proto.transport.close()
            if self.dump_path is not None:
                self.write_dump()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m diag.lab.emulators.platform", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    ap.add_argument("--udp-port", type=int, default=32100, help="hello/login/heartbeat port (UDP)")
    ap.add_argument("--relay-port", type=int, default=443, help="TCP relay port (0: off)")
    ap.add_argument("--api-port", type=int, default=8443, help="HTTPS status API port (0: off)")
    ap.add_argument("--cert", help="PEM certificate of the status API")
    ap.add_argument("--key", help="PEM key of the status API")
    ap.add_argument("--login-delay", type=float, default=DEFAULT_LOGIN_DELAY_S, help="s per login")
    ap.add_argument(
        "--heartbeat-timeout",
        type=float,
        default=DEFAULT_HB_TIMEOUT_S,
        help="a device is online while its last heartbeat is younger than this (s)",
    )
    ap.add_argument("--state-dump", help="keep a JSON copy of the registry in this file")
    args = ap.parse_args(argv)
    if args.login_delay < 0 or args.heartbeat_timeout <= 0:
        ap.error("--login-delay must be >= 0 and --heartbeat-timeout > 0")
    if bool(args.cert) != bool(args.key):
        ap.error("--cert and --key go together")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run(COMPONENT, Platform(args).main)


if __name__ == "__main__":
    sys.exit(main())
