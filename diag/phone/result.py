"""The phone page's result: strict parsing of the posted JSON into a typed, bounded value.

The result endpoint is reachable by anyone on the LAN who saw the URL, so the body is hostile
until proven otherwise: it is size-capped before it is read, parsed with duplicate keys and
non-finite numbers refused, and validated against a closed schema (unknown keys refused, every
number in its range, every string short and from a fixed alphabet or enum, every address parsed).
A STUN server or platform endpoint the page reports must be one this server told it to test.
Nothing from the body is ever echoed back: a rejection says which field was wrong, never what it
held. ``None`` everywhere means "the browser could not measure it", never "false".
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from diag.net.addr import join_host_port

# The largest body the endpoint accepts, bytes. A full result from the page is about 1-2 KiB
# (two STUN servers, a few endpoints); 16 KiB leaves room and bounds what a hostile client costs.
MAX_BODY_BYTES = 16 * 1024
SCHEMA_VERSION = 1
# Lists the page fills: candidates per STUN server, endpoints. The page sends fewer.
MAX_CANDIDATES = 8
MAX_ENDPOINTS = 16
MAX_UA_CHARS = 200
# A phone's clock may be off by years (a reset phone starts in 1970 or 2000): accept any epoch
# time from 1970 to 2200, ms; the offset itself is judged by the diagnosis.
MAX_EPOCH_MS = 7_258_118_400_000
# Timings the page measures are capped by its own timeouts (well below a minute), ms.
MAX_MS = 600_000.0

EffectiveType = Literal["slow-2g", "2g", "3g", "4g"]
EFFECTIVE_TYPES: tuple[str, ...] = ("slow-2g", "2g", "3g", "4g")
# NetworkInformation.type values (WICG netinfo); Chrome reports it on Android and ChromeOS only.
CONNECTION_TYPES: tuple[str, ...] = (
    "bluetooth", "cellular", "ethernet", "mixed", "none", "other", "unknown", "wifi", "wimax",
)  # fmt: skip
EndpointOutcome = Literal["ok", "error", "timeout"]
ENDPOINT_OUTCOMES: tuple[str, ...] = ("ok", "error", "timeout")
_UA_OK = re.compile(r"^[\x20-\x7e]*$")


class ResultError(ValueError):
    """A body that is not a valid result; ``field`` names where (never what it held)."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}")
        self.where = where
        self.why = why


@dataclass(frozen=True)
class Battery:
    level: float  # 0..1
    charging: bool | None


@dataclass(frozen=True)
class Connection:
    save_data: bool | None = None
    effective_type: str | None = None
    downlink_mbps: float | None = None
    rtt_ms: float | None = None
    type: str | None = None


@dataclass(frozen=True)
class StunGathering:
    """Server-reflexive candidates gathered against one STUN server alone."""

    server: str  # "host:port", as the server told the page
    srflx: tuple[str, ...] = ()  # "ip:port"


@dataclass(frozen=True)
class Ice:
    """WebRTC ICE gathering: one peer connection per STUN server, and one with all of them.

    ``combined`` holds the distinct server-reflexive candidates of the peer connection that used
    every server on one socket: browsers drop a candidate equal to one already found, so two
    distinct ones mean the phone's NAT gave that socket a new mapping per server.
    """

    per_server: tuple[StunGathering, ...] = ()
    combined: tuple[str, ...] = ()
    host_candidates: int = 0
    timed_out: bool = False


@dataclass(frozen=True)
class Endpoint:
    url: str
    outcome: EndpointOutcome
    ms: float


@dataclass(frozen=True)
class PhoneResult:
    """One phone's measurements plus what the laptop saw of the request itself."""

    peer: str  # the phone's address as the laptop's server saw it
    received_at_ms: float  # the laptop's clock when the result arrived
    sent_at_ms: float  # the phone's clock when it sent it
    lang: str = "en"
    user_agent: str = ""
    secure_context: bool | None = None
    battery: Battery | None = None
    connection: Connection | None = None
    ice: Ice | None = None
    endpoints: tuple[Endpoint, ...] = ()
    # Measurement names the browser lacks (no API, not a secure context, blocked).
    unsupported: tuple[str, ...] = ()
    # Round trip of the page's own request to the laptop, ms: bounds the clock offset's error.
    page_rtt_ms: float | None = None

    @property
    def clock_offset_s(self) -> float:
        """Phone clock minus laptop clock, s (positive: the phone is ahead)."""
        return (self.sent_at_ms - self.received_at_ms) / 1000.0


MEASUREMENTS: tuple[str, ...] = ("battery", "connection", "ice", "endpoints", "clock")


def _obj(
    value: Any, where: str, keys: Sequence[str], required: Sequence[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ResultError(where, "must be an object")
    unknown = [k for k in value if k not in keys]
    if unknown:
        raise ResultError(where, "unknown key")
    missing = [k for k in required if k not in value]
    if missing:
        raise ResultError(f"{where}.{missing[0]}", "missing")
    return value


def _bool(value: Any, where: str, nullable: bool = True) -> bool | None:
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise ResultError(where, "must be true, false or null")
    return value


def _num(value: Any, where: str, lo: float, hi: float, nullable: bool = True) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ResultError(where, "must be a number")
    num = float(value)
    if not math.isfinite(num) or not lo <= num <= hi:
        raise ResultError(where, f"must be between {lo:g} and {hi:g}")
    return num


def _enum(value: Any, where: str, allowed: Sequence[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        raise ResultError(where, "not an allowed value")
    return value


def _list(value: Any, where: str, cap: int) -> list[Any]:
    if not isinstance(value, list):
        raise ResultError(where, "must be a list")
    if len(value) > cap:
        raise ResultError(where, f"more than {cap} entries")
    return value


def _hostport(value: Any, where: str) -> str:
    """An ``ip:port`` (``[v6]:port``) candidate address, normalised."""
    if not isinstance(value, str) or len(value) > 60:
        raise ResultError(where, "must be an address:port")
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ResultError(where, "must be an address:port")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ResultError(where, "must be an address:port") from None
    return join_host_port(str(ip), int(port))


def _reject_constant(name: str) -> float:
    raise ResultError("body", "non-finite number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ResultError("body", "duplicate key")
        out[k] = v
    return out


def decode(body: bytes) -> Any:
    """JSON from ``body``: capped, UTF-8, no duplicate keys, no NaN/Infinity, shallow."""
    if len(body) > MAX_BODY_BYTES:
        raise ResultError("body", f"larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ResultError("body", "not UTF-8") from None
    # Depth bound before parsing: json's recursion on "[[[[..." would raise RecursionError.
    depth = best = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    if best > 6:
        raise ResultError("body", "nested too deeply")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except ResultError:
        raise
    except (ValueError, RecursionError):
        raise ResultError("body", "not JSON") from None


TOP_KEYS = (
    "v", "lang", "ua", "secure", "sent_at_ms", "battery", "connection", "ice", "endpoints",
    "unsupported", "page_rtt_ms",
)  # fmt: skip


def parse(
    body: bytes,
    *,
    peer: str,
    received_at_ms: float,
    stun_servers: Sequence[str] = (),
    endpoint_urls: Sequence[str] = (),
) -> PhoneResult:
    """A ``PhoneResult`` from a posted body; ``ResultError`` for anything else (never another
    exception). ``stun_servers`` and ``endpoint_urls`` are what the page was told to test:
    results about anything else are refused."""
    data = _obj(decode(body), "body", TOP_KEYS, ("v", "sent_at_ms"))
    if data["v"] != SCHEMA_VERSION or isinstance(data["v"], bool):
        raise ResultError("v", f"must be {SCHEMA_VERSION}")
    sent = _num(data["sent_at_ms"], "sent_at_ms", 0, MAX_EPOCH_MS, nullable=False)
    assert sent is not None
    lang = _enum(data.get("lang"), "lang", ("en", "pl")) or "en"
    ua = data.get("ua", "")
    if not isinstance(ua, str) or not _UA_OK.match(ua):
        raise ResultError("ua", "must be printable ASCII")
    ua = ua[:MAX_UA_CHARS]
    unsupported: list[str] = []
    for i, name in enumerate(_list(data.get("unsupported", []), "unsupported", 8)):
        got = _enum(name, f"unsupported[{i}]", MEASUREMENTS)
        if got is not None and got not in unsupported:
            unsupported.append(got)
    return PhoneResult(
        peer=peer,
        received_at_ms=received_at_ms,
        sent_at_ms=sent,
        lang=lang,
        user_agent=ua,
        secure_context=_bool(data.get("secure"), "secure"),
        battery=_battery(data.get("battery")),
        connection=_connection(data.get("connection")),
        ice=_ice(data.get("ice"), stun_servers),
        endpoints=_endpoints(data.get("endpoints", []), endpoint_urls),
        unsupported=tuple(unsupported),
        page_rtt_ms=_num(data.get("page_rtt_ms"), "page_rtt_ms", 0, MAX_MS),
    )


def _battery(value: Any) -> Battery | None:
    if value is None:
        return None
    b = _obj(value, "battery", ("level", "charging"), ("level",))
    level = _num(b["level"], "battery.level", 0.0, 1.0, nullable=False)
    assert level is not None
    return Battery(level, _bool(b.get("charging"), "battery.charging"))


def _connection(value: Any) -> Connection | None:
    if value is None:
        return None
    c = _obj(
        value, "connection", ("save_data", "effective_type", "downlink_mbps", "rtt_ms", "type")
    )
    return Connection(
        save_data=_bool(c.get("save_data"), "connection.save_data"),
        effective_type=_enum(c.get("effective_type"), "connection.effective_type", EFFECTIVE_TYPES),
        # NetInfo caps downlink at 10 Mbit/s and rtt at 3000 ms (fingerprinting); allow more.
        downlink_mbps=_num(c.get("downlink_mbps"), "connection.downlink_mbps", 0, 100_000),
        rtt_ms=_num(c.get("rtt_ms"), "connection.rtt_ms", 0, MAX_MS),
        type=_enum(c.get("type"), "connection.type", CONNECTION_TYPES),
    )


def _ice(value: Any, servers: Sequence[str]) -> Ice | None:
    if value is None:
        return None
    ice = _obj(value, "ice", ("per_server", "combined", "host_candidates", "timed_out"))
    per: list[StunGathering] = []
    seen: set[str] = set()
    for i, g in enumerate(_list(ice.get("per_server", []), "ice.per_server", MAX_ENDPOINTS)):
        where = f"ice.per_server[{i}]"
        g = _obj(g, where, ("server", "srflx"), ("server",))
        server = g["server"]
        if not isinstance(server, str) or server not in servers or server in seen:
            raise ResultError(f"{where}.server", "not a server this page was given")
        seen.add(server)
        srflx = _list(g.get("srflx", []), f"{where}.srflx", MAX_CANDIDATES)
        cands = tuple(
            dict.fromkeys(_hostport(c, f"{where}.srflx[{j}]") for j, c in enumerate(srflx))
        )
        per.append(StunGathering(server, cands))
    combined = _list(ice.get("combined", []), "ice.combined", MAX_CANDIDATES)
    hosts = _num(ice.get("host_candidates", 0), "ice.host_candidates", 0, 64, nullable=False)
    return Ice(
        per_server=tuple(per),
        combined=tuple(
            dict.fromkeys(_hostport(c, f"ice.combined[{j}]") for j, c in enumerate(combined))
        ),
        host_candidates=int(hosts or 0),
        timed_out=bool(_bool(ice.get("timed_out", False), "ice.timed_out")),
    )


def _endpoints(value: Any, urls: Sequence[str]) -> tuple[Endpoint, ...]:
    out: list[Endpoint] = []
    seen: set[str] = set()
    for i, e in enumerate(_list(value, "endpoints", MAX_ENDPOINTS)):
        where = f"endpoints[{i}]"
        e = _obj(e, where, ("url", "outcome", "ms"), ("url", "outcome", "ms"))
        url = e["url"]
        if not isinstance(url, str) or url not in urls or url in seen:
            raise ResultError(f"{where}.url", "not an endpoint this page was given")
        seen.add(url)
        outcome = _enum(e["outcome"], f"{where}.outcome", ENDPOINT_OUTCOMES)
        if outcome is None:
            raise ResultError(f"{where}.outcome", "missing")
        ms = _num(e["ms"], f"{where}.ms", 0, MAX_MS, nullable=False)
        assert ms is not None
        out.append(Endpoint(url, outcome, ms))  # type: ignore[arg-type]
    return tuple(out)
