"""Network guard (SPEC section 7): from the host's network namespace only loopback may be reached.

Installed in the test process by conftest.py and in every Python child process through the
``sitecustomize`` next to this file (conftest puts this folder on PYTHONPATH). A process that has
moved into a lab namespace (``diag lab exec``, setns) is not in the host namespace and is free to
reach lab addresses. Violations raise ``NetworkGuardError`` and are appended to the file named by
``DIAG_NETGUARD_LOG`` so the test that caused them fails even when the code under test swallowed
the exception (as a check must).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import traceback

_HOST_NETNS = os.environ.get("DIAG_HOST_NETNS")


class NetworkGuardError(PermissionError):
    pass


def _netns() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return "?"


def in_host_netns() -> bool:
    return _HOST_NETNS is None or _netns() == _HOST_NETNS


def _allowed_ip(host: str) -> bool:
    host = host.split("%")[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host in ("localhost", "")
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _violation(what: str) -> None:
    log = os.environ.get("DIAG_NETGUARD_LOG")
    if log:
        stack = "".join(traceback.format_stack(limit=8)[:-2])
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"pid {os.getpid()}: {what}\n{stack}\n---\n")
    raise NetworkGuardError(f"network guard: {what} from the host namespace")


def _check_addr(sock: socket.socket, address: object, op: str) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not in_host_netns():
        return
    if isinstance(address, tuple) and address and isinstance(address[0], str):
        if not _allowed_ip(address[0]):
            _violation(f"{op} to {address[0]}:{address[1] if len(address) > 1 else ''}")


def install() -> None:
    if getattr(socket, "_diag_guarded", False):
        return
    socket._diag_guarded = True  # type: ignore[attr-defined]
    cls = socket.socket
    orig_init, orig_connect, orig_connect_ex = cls.__init__, cls.connect, cls.connect_ex
    orig_sendto, orig_gai = cls.sendto, socket.getaddrinfo

    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        fam = family if isinstance(family, int) else int(family)
        if fileno is None and fam == getattr(socket, "AF_PACKET", -99) and in_host_netns():
            _violation("a raw packet socket (AF_PACKET)")
        if (
            fileno is None
            and fam in (socket.AF_INET, socket.AF_INET6)
            and type == socket.SOCK_RAW
            and in_host_netns()
        ):
            _violation("a raw IP socket")
        orig_init(self, family, type, proto, fileno)

    def connect(self, address):
        _check_addr(self, address, "connect")
        return orig_connect(self, address)

    def connect_ex(self, address):
        _check_addr(self, address, "connect")
        return orig_connect_ex(self, address)

    def sendto(self, data, *args):
        _check_addr(self, args[-1], "sendto")
        return orig_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        h = host.decode() if isinstance(host, bytes) else host
        if h is not None and in_host_netns() and not _allowed_ip(str(h)):
            try:
                ipaddress.ip_address(str(h).split("%")[0])
            except ValueError:
                # A name lookup would ask the host's resolver: forbidden in tests.
                _violation(f"a DNS lookup of {h!r} through the host's resolver")
        return orig_gai(host, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.connect = connect  # type: ignore[method-assign]
    cls.connect_ex = connect_ex  # type: ignore[method-assign]
    cls.sendto = sendto  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
