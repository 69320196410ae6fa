"""Windows and macOS as diag sees them, on this Linux machine.

``foreign_os`` (parametrised ``windows`` / ``darwin``) sets what the process can observe of
that OS: ``sys.platform``; no ``socket.AF_PACKET``; on Windows no ``select.poll``, no ``fcntl``,
no ``os.geteuid`` and the registry (``winreg``) for dnspython; psutil's adapter lists; and the
network backend diag picks at run time, with its OS answers recorded (``recorded.py``). Checks
are then run through the real runner, on loopback fakes only.
"""

from __future__ import annotations

import importlib
import os
import select
import socket
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from diag.i18n import msg
from diag.net import backend as net_backend
from diag.net.backend import Backend
from diag.net.darwin import DarwinBackend
from diag.net.windows import WindowsBackend
from foreign_os import recorded as rec

# What reads sys.platform lazily on first use is loaded here, as Linux: sysconfig's build variables
# and Babel's locale data would otherwise be looked up under the other OS's names on this one.
sysconfig.get_config_vars()
msg("{n} s", n=1.5).render("pl")
# filelock picks its OS's lock at import (msvcrt on Windows): the Linux one is what runs here.
importlib.import_module("filelock")


@dataclass
class ForeignOS:
    name: str  # "windows" | "darwin"
    backend: Backend
    iphlpapi: rec.FakeIpHlpApi | None = None
    shell32: rec.FakeShell32 | None = None
    icmp: rec.DarwinIcmpSocket | None = None


class RecordedDarwin(DarwinBackend):
    """macOS's backend with the ICMP datagram socket macOS would hand out."""

    def __init__(self, resolv_conf: str, root: bool) -> None:
        super().__init__(run_route=lambda: rec.DARWIN_ROUTE_GET)
        self.resolv_conf = resolv_conf
        self.root = root
        self.sockets: list[rec.DarwinIcmpSocket] = []

    def is_privileged(self) -> bool:
        return self.root

    def icmp_socket(self, root: bool) -> tuple[Any, str] | None:
        # The raw socket would need root; the datagram socket is what a user gets on macOS.
        sock = rec.DarwinIcmpSocket(lambda ip: ip in ("127.0.0.1", "127.0.0.2", "198.18.0.1"))
        self.sockets.append(sock)
        return sock, "unprivileged"


def _psutil_answers(
    monkeypatch: pytest.MonkeyPatch, addrs: dict[str, list[tuple[int, str, str | None]]], link: int
) -> None:
    from psutil._ntuples import snicaddr, snicstats  # type: ignore[import-not-found]

    monkeypatch.setattr(psutil, "AF_LINK", link)
    monkeypatch.setattr(
        psutil,
        "net_if_addrs",
        lambda: {n: [snicaddr(f, a, m, None, None) for f, a, m in v] for n, v in addrs.items()},
    )
    # Windows and macOS report no "running" flag the way Linux does: the flags are empty.
    monkeypatch.setattr(
        psutil,
        "net_if_stats",
        lambda: {n: snicstats(True, 2, 1000, 1500, "") for n in addrs},
    )


def become_windows(monkeypatch: pytest.MonkeyPatch, admin: bool = False) -> ForeignOS:
    api = rec.FakeIpHlpApi()
    shell = rec.FakeShell32(admin)
    be = WindowsBackend(iphlpapi=api, shell32=shell)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.delattr(socket, "AF_PACKET", raising=False)
    monkeypatch.delattr(select, "poll", raising=False)
    monkeypatch.delattr(os, "geteuid", raising=False)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl -> ImportError
    # dnspython reads the registry on Windows: its Windows module, loaded as on Windows.
    monkeypatch.setitem(sys.modules, "winreg", rec.FakeWinreg(rec.WIN_REGISTRY))
    import dns.win32util

    monkeypatch.setitem(sys.modules, "dns.win32util", importlib.reload(dns.win32util))
    # What if_nametoindex says on Windows for a friendly name: nothing.
    monkeypatch.setattr(socket, "if_nametoindex", _no_index)
    _psutil_answers(monkeypatch, rec.WIN_ADDRS, rec.WIN_LINK)
    monkeypatch.setattr(net_backend, "_current", be)
    return ForeignOS("windows", be, iphlpapi=api, shell32=shell)


def _no_index(name: str) -> int:
    raise OSError(f"no interface {name!r}")


def become_darwin(monkeypatch: pytest.MonkeyPatch, tmp_path: Any, root: bool = False) -> ForeignOS:
    conf = tmp_path / "resolv.conf"
    conf.write_text(rec.DARWIN_RESOLV_CONF, encoding="utf-8")
    be = RecordedDarwin(str(conf), root)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delattr(socket, "AF_PACKET", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0 if root else 501, raising=False)

    def index(name: str) -> int:
        if name not in rec.DARWIN_INDEX:
            raise OSError(f"no interface {name!r}")
        return rec.DARWIN_INDEX[name]

    monkeypatch.setattr(socket, "if_nametoindex", index)
    _psutil_answers(monkeypatch, rec.DARWIN_ADDRS, rec.DARWIN_LINK)
    monkeypatch.setattr(net_backend, "_current", be)
    return ForeignOS("darwin", be)


@pytest.fixture(params=["windows", "darwin"])
def foreign_os(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> Iterator[ForeignOS]:
    if request.param == "windows":
        yield become_windows(monkeypatch)
    else:
        yield become_darwin(monkeypatch, tmp_path)
    for s in getattr(net_backend._current, "sockets", []):
        s.close()


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> ForeignOS:
    return become_windows(monkeypatch)


@pytest.fixture
def darwin(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[ForeignOS]:
    got = become_darwin(monkeypatch, tmp_path)
    yield got
    for s in got.backend.sockets:  # type: ignore[attr-defined]
        s.close()
