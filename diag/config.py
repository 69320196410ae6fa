"""Site TOML + platform profile -> ``Site``; defaults live in model.py; errors name the field.

Every rule raises ``ConfigError`` with the file, the dotted field path
(``devices[2].added_via``) and the reason, so an installer can fix a site file without
reading code. The CLI exits 2 on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import math
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from diag.model import (
    ADDED_VIA,
    KINDS,
    PROBE_KINDS,
    PROTOCOLS,
    SPEEDTEST_METHODS,
    Credentials,
    Device,
    Network,
    P2PServer,
    Profile,
    SecretRef,
    ServicePort,
    Site,
    StunServer,
    Thresholds,
)
from diag.net.addr import parse_resolver as parse_resolver

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = "generic"
T = TypeVar("T")

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_HOST_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?)+$")
# Well-known service ports, used when a device lists none.
DEFAULT_PORTS = (ServicePort("http", 80), ServicePort("rtsp", 554))


# The documented range of every number in the site file and the profile, by its dotted field;
# the defaults are the dataclasses' in model.py (one table each; a test checks both agree, and
# that every numeric field of ``Thresholds`` and ``Profile`` has a range here). Both ends are
# inclusive, except that 0 is never allowed where the low end is 0 (a 0 ms threshold or 0 %
# loss would flag every run). Every float must also be finite: TOML allows ``nan`` and ``inf``,
# with which comparisons silently never trigger.
RANGES: Mapping[str, tuple[float, float]] = {
    # Percent of probes lost.
    "thresholds.loss_pct": (0.0, 100.0),
    # Milliseconds: a minute is far beyond any sane round trip or resolver answer.
    "thresholds.rtt_ms": (0.0, 60_000.0),
    "thresholds.jitter_ms": (0.0, 60_000.0),
    "thresholds.dns_ms": (0.0, 60_000.0),
    "thresholds.bufferbloat_ms": (0.0, 60_000.0),
    # A factor over the streams' bitrate: below 1 the upload could be short and still "enough".
    "thresholds.upload_headroom": (1.0, 100.0),
    # Days before a share expires: up to ten years.
    "thresholds.share_warn_days": (1, 3650),
    # Seconds of device clock skew: up to a year.
    "thresholds.clock_skew_s": (0.0, 366 * 86_400.0),
    # Seconds between a device's heartbeats: 1 s to a day.
    "profile.heartbeat_interval_s": (1.0, 86_400.0),
    # Channels of one recorder.
    "devices.channels": (1, 1024),
}


class ConfigError(ValueError):
    def __init__(self, file: str | None, field: str, reason: str) -> None:
        self.file = file or "<site>"
        self.field = field
        self.reason = reason
        super().__init__(f"{self.file}: {field}: {reason}")


class _Reader:
    """Typed access to one TOML table that reports the exact field on every error."""

    def __init__(self, file: str | None, data: Mapping[str, Any], path: str) -> None:
        self.file, self.data, self.path = file, data, path
        self.used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.field(key), reason)

    def get(self, key: str, typ: type[T] | tuple[type, ...], default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        types = typ if isinstance(typ, tuple) else (typ,)
        # TOML integers are fine where a float is expected; bools are not numbers here.
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in types:
            raise self.fail(key, f"expected {_names(types)}, got a boolean")
        if not isinstance(value, types):
            raise self.fail(key, f"expected {_names(types)}, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            # TOML's nan/inf: every comparison with them is false, so no threshold would fire.
            raise self.fail(key, f"must be a finite number, got {value}")
        return value

    def in_range(self, key: str, typ: type, name: str, default: Any = None) -> Any:
        """A number in its documented range (``RANGES[name]``), else an error naming the field."""
        value = self.get(key, typ, default)
        if value is None:
            return None
        low, high = RANGES[name]
        if value < low or value > high or (low == 0 and value == 0):
            shown = f"{low:g}" if low else "more than 0"
            raise self.fail(key, f"{value:g} is out of range ({shown} to {high:g})")
        return value

    def require(self, key: str, typ: type[T] | tuple[type, ...]) -> Any:
        if key not in self.data:
            self.used.add(key)
            raise self.fail(key, "is required")
        return self.get(key, typ)

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> Any:
        value = self.get(key, str, default) if default is not None else self.require(key, str)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def table(self, key: str) -> _Reader:
        value = self.get(key, dict, {})
        return _Reader(self.file, value, self.field(key))

    def tables(self, key: str) -> list[_Reader]:
        value = self.get(key, list, [])
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise ConfigError(self.file, f"{self.field(key)}[{i}]", "expected a table")
            out.append(_Reader(self.file, item, f"{self.field(key)}[{i}]"))
        return out

    def positive(self, key: str, typ: type = float, default: Any = None) -> Any:
        value = self.get(key, typ, default)
        if value is not None and value <= 0:
            raise self.fail(key, "must be greater than 0")
        return value

    def port(self, key: str, default: int | None = None, required: bool = False) -> Any:
        value = self.require(key, int) if required else self.get(key, int, default)
        if value is not None and not 1 <= value <= 65535:
            raise self.fail(key, f"{value} is not a port number (1-65535)")
        return value

    def host(self, key: str, required: bool = False) -> Any:
        value = self.require(key, str) if required else self.get(key, str)
        if value is not None and not _is_host(value):
            raise self.fail(key, f"{value!r} is neither an IP address nor a host name")
        return value

    def ip(self, key: str, required: bool = False) -> Any:
        value = self.require(key, str) if required else self.get(key, str)
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise self.fail(key, f"{value!r} is not an IP address") from None
        return value

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown field (typo?)")


def _names(types: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "an array",
        dict: "a table",
        dt.date: "a date (YYYY-MM-DD)",
    }
    return " or ".join(names.get(t, t.__name__) for t in types)


def _is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOST_RE.match(value))


def _resolver(file: str | None, field_path: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(file, field_path, f"expected a string, got {type(value).__name__}")
    try:
        parse_resolver(value)
    except ValueError as exc:
        raise ConfigError(file, field_path, str(exc)) from None
    return value


def _secret(r: _Reader, key: str) -> SecretRef:
    value = r.require(key, str)
    scheme = value.partition(":")[0]
    if scheme not in ("env", "file") or not value.partition(":")[2]:
        # Refusing inline passwords keeps them out of site files that get mailed to support.
        raise r.fail(key, "must be a reference: env:VARIABLE or file:/path (never the password)")
    return SecretRef(value)


def _parse_ports(r: _Reader) -> tuple[ServicePort, ...]:
    raw = r.get("ports", dict, None)
    if raw is None:
        return DEFAULT_PORTS
    pr = r.table("ports")
    ports = []
    for name in raw:
        value = pr.get(name, (int, str))
        if isinstance(value, int):
            port, proto = value, "tcp"
        else:
            num, _, proto = value.partition("/")
            if not num.isdigit() or proto not in ("tcp", "udp"):
                raise pr.fail(name, f"{value!r} is not PORT or PORT/tcp or PORT/udp")
            port = int(num)
        if not 1 <= port <= 65535:
            raise pr.fail(name, f"{port} is not a port number (1-65535)")
        ports.append(ServicePort(name, port, proto))  # type: ignore[arg-type]
    return tuple(ports)


def _name(r: _Reader) -> str:
    name: str = r.require("name", str)
    if not name.strip():
        raise r.fail("name", "must not be empty")
    if len(name) > MAX_NAME_CHARS:
        raise r.fail("name", f"is {len(name)} characters long; at most {MAX_NAME_CHARS}")
    return name


def _device_address(r: _Reader, subnets: tuple[str, ...]) -> str | None:
    """A device's LAN address: one host, not a network's own or its broadcast address."""
    address: str | None = r.ip("address")
    if address is None:
        return None
    ip = ipaddress.ip_address(address)
    if ip.is_unspecified or ip.is_multicast or address == "255.255.255.255":
        raise r.fail("address", f"{address!r} is not the address of one device")
    for s in subnets:
        net = ipaddress.ip_network(s, strict=False)
        # /31 and /32 (and IPv6 /127, /128) have no network or broadcast address (RFC 3021).
        if ip.version == net.version and net.num_addresses > 2 and ip in net:
            if ip == net.network_address:
                raise r.fail("address", f"{address!r} is the network address of {net}")
            if ip.version == 4 and ip == net.broadcast_address:
                raise r.fail("address", f"{address!r} is the broadcast address of {net}")
    return address


def _parse_device(r: _Reader, subnets: tuple[str, ...] = ()) -> Device:
    name = _name(r)
    kind = r.choice("kind", KINDS)
    added_via = r.choice("added_via", ADDED_VIA)
    address = _device_address(r, subnets)
    mac = r.get("mac", str)
    if mac is not None:
        mac = mac.lower().replace("-", ":")
        if not _MAC_RE.match(mac):
            raise r.fail("mac", f"{mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    creds = None
    if "credentials" in r.data:
        cr = r.table("credentials")
        creds = Credentials(cr.require("username", str), _secret(cr, "password"))
        cr.check_unknown()
    share = r.get("share_expires", (dt.date, dt.datetime))
    if isinstance(share, dt.datetime):
        share = share.date()
    if share is not None and added_via != "shared":
        raise r.fail("share_expires", 'only devices with added_via = "shared" have a share expiry')
    streams = r.get("streams_kbps", list, [])
    for i, s in enumerate(streams):
        if isinstance(s, bool) or not isinstance(s, int) or s <= 0:
            raise ConfigError(
                r.file, f"{r.field('streams_kbps')}[{i}]", "must be a positive integer (kbit/s)"
            )
    public_host = r.host("public_host")
    public_port = r.port("public_port")
    if added_via == "ip" and public_host is None and address is None:
        raise r.fail("public_host", "a device added by IP needs public_host or address")
    channels = r.in_range("channels", int, "devices.channels", 1)
    grey = r.get("app_shows_grey", bool)
    api = _device_api(r)
    dev = Device(
        name=name,
        kind=kind,
        added_via=added_via,
        address=address,
        mac=mac,
        ports=_parse_ports(r),
        serial=r.get("serial", str),
        credentials=creds,
        share_expires=share,
        streams_kbps=tuple(streams),
        public_host=public_host,
        public_port=public_port,
        channels=channels,
        app_shows_grey=grey,
        api=api,
    )
    r.check_unknown()
    return dev


def _device_api(r: _Reader) -> str:
    """``api``: "auto" (the default) or the name of an installed ``diag.devices`` adapter."""
    from diag.devices import AUTO, load_adapters

    api: str = r.get("api", str, AUTO)
    if api == AUTO:
        return api
    names = sorted(load_adapters()[0])
    if api not in names:
        raise r.fail("api", f"{api!r} is not a device API here; one of: auto, {', '.join(names)}")
    return api


def _parse_profile(r: _Reader, base: Profile | None) -> Profile:
    """A profile table; fields absent from it keep ``base``'s values (site overrides)."""
    base = base or Profile(name="custom")
    changes: dict[str, Any] = {}
    if "name" in r.data:
        changes["name"] = r.get("name", str)
    if "p2p_servers" in r.data:
        servers = []
        for sr in r.tables("p2p_servers"):
            proto = sr.choice("protocol", PROTOCOLS)
            default_probe = {"udp": "hello", "tcp": "connect", "https": "https", "http": "https"}
            servers.append(
                P2PServer(
                    host=sr.host("host", required=True),
                    port=sr.port("port", required=True),
                    protocol=proto,
                    probe=sr.choice("probe", PROBE_KINDS, default_probe[proto]),
                    name=sr.get("name", str, ""),
                )
            )
            sr.check_unknown()
        labels: dict[str, int] = {}
        for i, srv in enumerate(servers):
            if srv.label in labels:
                # Results are keyed by label: two servers with one label would hide each other.
                raise ConfigError(
                    r.file,
                    f"{r.field('p2p_servers')}[{i}]",
                    f"{srv.label!r} is already p2p_servers[{labels[srv.label]}]",
                )
            labels[srv.label] = i
        changes["p2p_servers"] = tuple(servers)
    if "stun_servers" in r.data:
        stuns = []
        for sr in r.tables("stun_servers"):
            stuns.append(StunServer(sr.host("host", required=True), sr.port("port", 3478)))
            sr.check_unknown()
        changes["stun_servers"] = tuple(stuns)
    if "dns_names" in r.data:
        names = r.get("dns_names", list)
        for i, n in enumerate(names):
            if not isinstance(n, str) or not _is_host(n):
                raise ConfigError(
                    r.file, f"{r.field('dns_names')}[{i}]", f"{n!r} is not a host name"
                )
        changes["dns_names"] = tuple(names)
    if "independent_resolvers" in r.data:
        res = r.get("independent_resolvers", list)
        for i, n in enumerate(res):
            _resolver(r.file, f"{r.field('independent_resolvers')}[{i}]", n)
        changes["independent_resolvers"] = tuple(res)
    for key in ("speedtest_locate_url", "status_api_url", "captive_probe_url"):
        if key in r.data:
            url = r.get(key, str)
            if not re.match(r"^https?://[^/\s]+", url):
                raise r.fail(key, f"{url!r} is not an http:// or https:// URL")
            changes[key] = url
    if "speedtest_url" in r.data:
        url = r.get("speedtest_url", str)
        # http(s): the plain HTTP endpoint; ws(s): an ndt7 server named directly.
        if not re.match(r"^(https?|wss?)://[^/\s]+", url):
            raise r.fail(
                "speedtest_url", f"{url!r} is not an http://, https://, ws:// or wss:// URL"
            )
        changes["speedtest_url"] = url
    if "speedtest_method" in r.data:
        changes["speedtest_method"] = r.choice("speedtest_method", SPEEDTEST_METHODS)
    if "captive_probe_expect" in r.data:
        changes["captive_probe_expect"] = r.get("captive_probe_expect", str)
    if "ca_file" in r.data:
        ca = r.get("ca_file", str)
        if r.file and not Path(ca).is_absolute():
            ca = str((Path(r.file).parent / ca).resolve())
        changes["ca_file"] = ca
    if "heartbeat_interval_s" in r.data:
        changes["heartbeat_interval_s"] = r.in_range(
            "heartbeat_interval_s", float, "profile.heartbeat_interval_s"
        )
    if "test_network" in r.data:
        changes["test_network"] = r.get("test_network", bool)
    r.check_unknown()
    return dataclasses.replace(base, **changes)


def load_profile(name_or_path: str, relative_to: Path | None = None, _depth: int = 0) -> Profile:
    """A profile by name (the user's config dir, a package's ``diag.profiles`` entry point, or
    shipped in ``diag/profiles/``) or a profile file by path (``diag.profiles.find``)."""
    from diag.profiles import ProfileError, find

    try:
        path = find(name_or_path, relative_to)
    except ProfileError as exc:
        raise ConfigError(None, "site.profile", str(exc)) from None
    data = _load_toml(path)
    base = Profile(name=path.stem)
    parent = data.get("extends")
    if parent is not None:
        # A vendor's profile takes the real-world defaults (STUN, resolvers, captive probe, the
        # speed test) of another, usually "generic", and names its own platform.
        if not isinstance(parent, str) or parent == name_or_path or _depth > 4:
            raise ConfigError(str(path), "extends", f"{parent!r} cannot be extended here")
        base = dataclasses.replace(load_profile(parent, path.parent, _depth + 1), name=path.stem)
        data = {k: v for k, v in data.items() if k != "extends"}
    return _parse_profile(_Reader(str(path), data, ""), base)


# A site or profile file larger than this is refused, bytes: a site with a thousand devices is
# about 150 kB; anything near this is a wrong file (a log, a capture) and parsing it would take
# seconds and hundreds of MB before the first check.
MAX_FILE_BYTES = 2 * 1024 * 1024
# Names longer than this are refused, characters: they are printed in every table and report.
MAX_NAME_CHARS = 200


def _read_regular(path: Path) -> bytes:
    """At most ``MAX_FILE_BYTES + 1`` bytes of ``path``, refused at once unless it is a regular
    file: opened with ``O_NONBLOCK`` and checked with ``fstat`` first, since reading a FIFO with
    no writer blocked forever and a device (``/dev/zero``) never ends."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise ConfigError(str(path), "-", f"cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(
                str(path), "-", "not a regular file (a FIFO, a device or a directory)"
            )
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(str(path), "-", f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _load_toml(path: Path) -> dict[str, Any]:
    data = _read_regular(path)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            str(path), "-", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: not a site file?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            str(path), "-", f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None
    # Windows editors (Notepad) start UTF-8 files with a byte-order mark; TOML does not allow one
    # ("Invalid statement (line 1, column 1)"), the installer cannot see it: drop it.
    text = text.removeprefix("\ufeff")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML: {exc}") from None
    except RecursionError:
        # tomllib recurses per nesting level: "x = [[[[…" thousands deep exhausts the stack.
        raise ConfigError(
            str(path), "-", "not valid TOML: arrays or tables nested too deeply"
        ) from None


def _parse_thresholds(r: _Reader) -> Thresholds:
    base = Thresholds()
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(Thresholds):
        if f.name in r.data:
            typ = int if isinstance(getattr(base, f.name), int) else float
            changes[f.name] = r.in_range(f.name, typ, f"thresholds.{f.name}")
    r.check_unknown()
    return dataclasses.replace(base, **changes)


def _parse_network(r: _Reader) -> Network:
    resolver = r.get("site_resolver", str, "system")
    if resolver != "system":
        _resolver(r.file, r.field("site_resolver"), resolver)
    subnets = r.get("subnets", list, [])
    for i, s in enumerate(subnets):
        try:
            ipaddress.ip_network(str(s), strict=False)
        except ValueError:
            raise ConfigError(
                r.file, f"{r.field('subnets')}[{i}]", f"{s!r} is not a subnet"
            ) from None
    net = Network(
        interface=r.get("interface", str),
        site_resolver=resolver,
        gateway=r.ip("gateway"),
        subnets=tuple(subnets),
        wan_address=r.ip("wan_address"),
    )
    r.check_unknown()
    return net


def parse_site(data: Mapping[str, Any], file: str | None = None) -> Site:
    """A ``Site`` from parsed TOML; raises ``ConfigError`` naming the field."""
    root = _Reader(file, data, "")
    sr = root.table("site")
    name = _name(sr)
    lang = sr.choice("lang", ("en", "pl"), "en")
    profile_name = sr.get("profile", str, DEFAULT_PROFILE)
    sr.check_unknown()
    rel = Path(file).parent if file else None
    try:
        base = load_profile(profile_name, rel)
    except ConfigError as exc:
        # An error inside a profile file names that file and its field after site.profile.
        reason = exc.reason if exc.file == "<site>" else str(exc)
        raise ConfigError(file, "site.profile", reason) from None
    profile = _parse_profile(root.table("profile"), base) if "profile" in data else base
    network = _parse_network(root.table("network"))
    devices = tuple(_parse_device(d, network.subnets) for d in root.tables("devices"))
    seen: dict[str, int] = {}
    macs: dict[str, int] = {}
    for i, d in enumerate(devices):
        if d.name in seen:
            raise ConfigError(
                file, f"devices[{i}].name", f"{d.name!r} is already devices[{seen[d.name]}]"
            )
        seen[d.name] = i
        if d.mac is not None:
            if d.mac in macs:
                # The LAN check finds devices by MAC: two entries with one MAC would take each
                # other's results (an NVR's channels are one device with channels = N).
                raise ConfigError(
                    file, f"devices[{i}].mac", f"{d.mac!r} is already devices[{macs[d.mac]}]"
                )
            macs[d.mac] = i
    site = Site(
        name=name,
        devices=devices,
        profile=profile,
        thresholds=_parse_thresholds(root.table("thresholds")),
        network=network,
        path=file,
        lang=lang,
    )
    root.check_unknown()
    return site


def load_site(path: str | Path) -> Site:
    path = Path(path)
    return parse_site(_load_toml(path), str(path))


def with_observations(site: Site, grey: Mapping[str, bool]) -> Site:
    """The site with the installer's "app shows this device grey" observations applied."""
    devices = tuple(
        dataclasses.replace(d, app_shows_grey=grey[d.name]) if d.name in grey else d
        for d in site.devices
    )
    return dataclasses.replace(site, devices=devices)
