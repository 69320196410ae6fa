"""Address parsing: the one ``host:port`` parser, IP literals, MAC text, resolver specs."""

from __future__ import annotations

import ipaddress
import re

DNS_PORT = 53


def is_ip(value: str) -> bool:
    """Whether ``value`` is an IPv4 or IPv6 literal (no brackets, no port)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``IPv4:port``, ``[IPv6]:port`` or a bare IPv6 -> (host, port).

    The port is ``default_port`` when absent. Raises ValueError on an empty host, a bad port
    (not 1-65535) or unbalanced brackets, naming what is wrong.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host:
            raise ValueError(f"{text!r}: unbalanced brackets")
        if not rest:
            return host, default_port
        if not rest.startswith(":"):
            raise ValueError(f"{text!r}: expected ':port' after ']'")
        return host, _port(rest[1:], text)
    if text.count(":") > 1:
        # A bare IPv6 literal has no port (a port needs the brackets).
        if not is_ip(text.split("%")[0]):
            raise ValueError(f"{text!r} is not host:port")
        return text, default_port
    host, sep, port = text.partition(":")
    if not host:
        raise ValueError(f"{text!r}: no host")
    return host, (_port(port, text) if sep else default_port)


def _port(port: str, text: str) -> int:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: port {port!r} is not a number from 1 to 65535")
    return int(port)


def join_host_port(host: str, port: int) -> str:
    """The inverse of ``split_host_port``: brackets around an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_resolver(spec: str) -> tuple[str, int]:
    """A resolver spec -> (ip, port): ``IP``, ``IPv4:PORT``, ``[IPv6]:PORT``; ValueError if bad.

    The port form exists for resolvers on a non-standard port (tests run a fake on loopback).
    """
    host, port = spec, DNS_PORT
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)", spec) or re.fullmatch(r"([0-9.]+):(\d+)", spec)
    if m:
        host, port = m.group(1), int(m.group(2))
    if not is_ip(host):
        raise ValueError(f"{spec!r} is not IP, IPv4:PORT or [IPv6]:PORT")
    if not 1 <= port <= 65535:
        raise ValueError(f"{port} is not a port number (1-65535)")
    return host, port


def mac_str(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw[:6])


def mac_bytes(text: str) -> bytes:
    return bytes(int(p, 16) for p in text.split(":"))
