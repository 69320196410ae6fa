"""What a device adapter is: one device API (ONVIF, ISAPI, Dahua, a plugin's) read into facts.

An adapter gets a ``Target`` (address, port, user, the resolved password and the shared HTTP
client) and returns a ``DeviceReport``: facts only, never prose. ``auth`` says how the login went:
``ok``; ``rejected`` (the device refused these credentials: a wrong password, nothing more is
tried this run); ``unsupported`` (the device does not speak this API: ``auto`` tries the next);
``error`` (it speaks it but failed: timeouts, garbage). Each adapter makes at most one login
attempt with the credentials per run: devices lock out after a few failures.
"""

from __future__ import annotations

import datetime as dt
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from diag.model import Fact, JSONValue
from diag.net.addr import join_host_port

if TYPE_CHECKING:
    import httpx

AuthState = Literal["ok", "rejected", "unsupported", "error"]


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    username: str
    # Only ever handed to httpx or hashed into a token; never into a fact, a log line or a repr.
    password: str = field(repr=False)
    client: httpx.AsyncClient = field(repr=False)

    @property
    def base(self) -> str:
        return f"http://{join_host_port(self.host, self.port)}"


@dataclass
class DeviceReport:
    api: str
    auth: AuthState
    locked: bool = False
    # vendor, model, serial, firmware, mac (+ name, type where the API has them)
    identity: dict[str, JSONValue] | None = None
    # ip, mask, gateway, dns (list), dhcp (bool | None)
    network: dict[str, JSONValue] | None = None
    # utc (ISO 8601 of the device's clock), offset_s (device - laptop, s), ntp (bool | None),
    # ntp_servers (list)
    clock: dict[str, JSONValue] | None = None
    # enabled (bool | None), status (str | None): the P2P / cloud switch, where the API has one
    p2p: dict[str, JSONValue] | None = None
    # Operations the device answered "not supported" to (ActionNotSupported, 404).
    unsupported: list[str] = field(default_factory=list)
    # What went wrong where, by operation (e.g. {"GetNTP": "fault:ter:InvalidArgVal"}).
    errors: dict[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    # The adapter the P2P state came from when it is not ``api`` (auto: ONVIF has none).
    p2p_api: str | None = None

    def facts(self, target: str) -> list[Fact]:
        """The report as facts about ``target`` (the device's name in the site file)."""
        out: list[Fact] = []
        if self.auth in ("ok", "rejected"):
            out.append(Fact("device.api", self.api, target=target))
        if self.locked:
            out.append(Fact("device.auth_locked", True, target=target))
        out.append(Fact("device.auth", self.auth, target=target))
        if self.identity is not None:
            out.append(Fact("device.info", dict(self.identity), target=target))
        if self.network is not None:
            out.append(Fact("device.network", dict(self.network), target=target))
        if self.clock is not None:
            out.append(Fact("device.clock", dict(self.clock), target=target))
            off = self.clock.get("offset_s")
            if isinstance(off, int | float) and not isinstance(off, bool):
                out.append(Fact("device.clock_offset_s", off, "s", target=target))
            ntp = self.clock.get("ntp")
            if isinstance(ntp, bool):
                out.append(Fact("device.ntp_enabled", ntp, target=target))
        if self.p2p is not None:
            p2p = dict(self.p2p)
            if self.p2p_api:
                p2p["api"] = self.p2p_api
            out.append(Fact("device.p2p", p2p, target=target))
        if self.unsupported:
            out.append(Fact("device.api_unsupported", list(self.unsupported), target=target))
        if self.auth != "unsupported":
            out.append(Fact("device.api_ms", round(self.elapsed_ms, 1), "ms", target=target))
        return out


class Adapter(ABC):
    """One device API. Subclasses are registered in the ``diag.devices`` entry-point group."""

    name: ClassVar[str]
    # The HTTP port names (site file ``ports``) this API is served on, in order of preference.
    port_names: ClassVar[tuple[str, ...]] = ("http", "web")

    @abstractmethod
    async def read(self, target: Target) -> DeviceReport:
        """Everything the API tells about the device; never raises for a device's answer."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Stopwatch:
    """The laptop's clock around one request: its midpoint is when the device read its clock."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.m0 = time.monotonic()

    def midpoint(self) -> dt.datetime:
        elapsed = time.monotonic() - self.m0
        return dt.datetime.fromtimestamp(self.t0 + elapsed / 2, dt.UTC)

    def ms(self) -> float:
        return (time.monotonic() - self.m0) * 1000


def clock_facts(
    device_utc: dt.datetime | None, laptop_utc: dt.datetime, ntp: bool | None, servers: list[str]
) -> dict[str, JSONValue]:
    """The ``clock`` part of a report; offset in seconds, device minus laptop (1 s resolution)."""
    offset: float | None = None
    if device_utc is not None:
        offset = round((device_utc - laptop_utc).total_seconds(), 1)
    return {
        "utc": iso(device_utc) if device_utc is not None else None,
        "offset_s": offset,
        "ntp": ntp,
        "ntp_servers": list[JSONValue](servers),
    }
