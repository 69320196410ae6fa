"""Recorded answers of Windows and macOS, and fakes that hand them to diag exactly as the OS does.

The Windows recordings are what iphlpapi, shell32, psutil and the registry answered on a Windows 11
laptop with a wired and a Wi-Fi adapter; the macOS ones what ``route -n get default``, psutil and
an ICMP datagram socket answered on macOS 14. Addresses are rewritten into the lab's ranges
(SPEC section 7), everything else is as recorded: the ctypes structures are filled byte for byte
as the DLL fills them, the macOS echo reply carries the IPv4 header macOS puts in front of it
(with ``ip_len`` in host byte order, as the BSD stack hands it over).
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diag.net import windows as win

# --- Windows ----------------------------------------------------------------------------------

# GetIpForwardTable: (destination, mask, next hop, interface index, type, metric). Type 3 is a
# direct (on-link) route, 4 an indirect one through a router. Two default routes: the wired one
# wins on metric (Windows' automatic metric: 25 for 1 Gbit/s Ethernet, 50 for Wi-Fi).
WIN_ROUTES: list[tuple[str, str, str, int, int, int]] = [
    ("0.0.0.0", "0.0.0.0", "100.64.0.1", 17, 4, 50),
    ("0.0.0.0", "0.0.0.0", "198.18.0.1", 12, 4, 25),
    ("127.0.0.0", "255.0.0.0", "127.0.0.1", 1, 3, 331),
    ("198.18.0.0", "255.255.255.0", "198.18.0.100", 12, 3, 281),
    ("100.64.0.0", "255.255.255.0", "100.64.0.23", 17, 3, 306),
]
# ConvertInterfaceIndexToLuid / ConvertInterfaceLuidToAlias: the alias is psutil's name.
WIN_ALIASES = {1: "Loopback Pseudo-Interface 1", 12: "Ethernet", 17: "Wi-Fi"}
# psutil.net_if_addrs() on Windows: friendly names, MACs with dashes, AF_LINK = -1.
WIN_LINK = -1
WIN_ADDRS: dict[str, list[tuple[int, str, str | None]]] = {
    "Ethernet": [
        (WIN_LINK, "00-1A-2B-3C-4D-5E", None),
        (socket.AF_INET, "198.18.0.100", "255.255.255.0"),
    ],
    "Wi-Fi": [
        (WIN_LINK, "5C-E4-2A-00-11-22", None),
        (socket.AF_INET, "100.64.0.23", "255.255.255.0"),
    ],
    "Loopback Pseudo-Interface 1": [(socket.AF_INET, "127.0.0.1", "255.0.0.0")],
}
# The registry as dnspython reads it (no WMI): DHCP gave the wired adapter its resolver.
WIN_IFACE_KEY = (
    r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces"
    r"\{8C3B8E2A-6B1D-4F0B-9A3D-2B7E5F1C0D11}"
)
WIN_REGISTRY: dict[str, dict[str, tuple[Any, int]]] = {
    r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters": {
        "Domain": ("", 1),
        "DhcpDomain": ("", 1),
    },
    r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces": {},
    WIN_IFACE_KEY: {
        "DhcpNameServer": ("198.51.100.53 198.51.100.54", 1),
        "NameServer": ("", 1),
    },
    r"SYSTEM\CurrentControlSet\Control\Network\{4D36E972-E325-11CE-BFC1-08002BE10318}"
    r"\{8C3B8E2A-6B1D-4F0B-9A3D-2B7E5F1C0D11}\Connection": {
        "PnpInstanceID": (r"PCI\VEN_8086&DEV_15F3\3&11583659&0&FE", 1),
    },
    r"SYSTEM\CurrentControlSet\Enum\PCI\VEN_8086&DEV_15F3\3&11583659&0&FE": {
        "ConfigFlags": (0, 4),
    },
}
WIN_SUBKEYS = {
    r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces": [
        "{8C3B8E2A-6B1D-4F0B-9A3D-2B7E5F1C0D11}"
    ]
}
# SendARP: who answered (the gateway); 67 = ERROR_BAD_NET_NAME (nobody) for anyone else.
WIN_ARP = {"198.18.0.1": bytes.fromhex("0050569a0b01"), "127.0.0.1": bytes(6)}
# IcmpSendEcho2: RTT in ms per destination, None = timed out (IP_REQ_TIMED_OUT).
WIN_ECHO: dict[str, int | None] = {"127.0.0.1": 0, "127.0.0.2": 0, "198.18.0.1": 1}


def _dword(ip: str) -> int:
    return int(struct.unpack("<I", socket.inet_aton(ip))[0])


def forward_table_bytes(rows: list[tuple[str, str, str, int, int, int]]) -> bytes:
    """A MIB_IPFORWARDTABLE as GetIpForwardTable writes it."""
    out = struct.pack("<I", len(rows))
    for dest, mask, hop, index, typ, metric in rows:
        row = win.MIB_IPFORWARDROW()
        row.dwForwardDest = _dword(dest)
        row.dwForwardMask = _dword(mask)
        row.dwForwardNextHop = _dword(hop)
        row.dwForwardIfIndex = index
        row.dwForwardType = typ
        row.dwForwardProto = 3  # MIB_IPPROTO_NETMGMT
        row.dwForwardMetric1 = metric
        out += bytes(row)
    return out


@dataclass
class FakeIpHlpApi:
    """iphlpapi.dll: the same functions, arguments and error codes, answering from recordings."""

    routes: list[tuple[str, str, str, int, int, int]] = field(default_factory=lambda: WIN_ROUTES)
    aliases: dict[int, str] = field(default_factory=lambda: dict(WIN_ALIASES))
    arp: dict[str, bytes] = field(default_factory=lambda: dict(WIN_ARP))
    echo: dict[str, int | None] = field(default_factory=lambda: dict(WIN_ECHO))
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def GetIpForwardTable(self, buf: Any, size: Any, order: bool) -> int:
        self.calls.append("GetIpForwardTable")
        data = forward_table_bytes(self.routes)
        if size._obj.value < len(data):
            size._obj.value = len(data)
            return win.ERROR_INSUFFICIENT_BUFFER
        ctypes.memmove(buf, data, len(data))
        return win.NO_ERROR

    def ConvertInterfaceIndexToLuid(self, index: int, luid: Any) -> int:
        if index not in self.aliases:
            return 87  # ERROR_INVALID_PARAMETER
        luid._obj.value = 0x0006_0000_0000_0000 | index
        return win.NO_ERROR

    def ConvertInterfaceLuidToAlias(self, luid: Any, alias: Any, length: int) -> int:
        index = luid._obj.value & 0xFFFFFF
        if index not in self.aliases:
            return 87
        alias.value = self.aliases[index][: length - 1]
        return win.NO_ERROR

    def ConvertInterfaceAliasToLuid(self, name: str, luid: Any) -> int:
        for index, alias in self.aliases.items():
            if alias == name:
                luid._obj.value = 0x0006_0000_0000_0000 | index
                return win.NO_ERROR
        return 87

    def ConvertInterfaceLuidToIndex(self, luid: Any, index: Any) -> int:
        index._obj.value = luid._obj.value & 0xFFFFFF
        return win.NO_ERROR

    def SendARP(self, dest: int, src: int, mac: Any, length: Any) -> int:
        ip = socket.inet_ntoa(struct.pack("<I", dest))
        self.calls.append(f"SendARP {ip}")
        if ip not in self.arp:
            return 67
        ctypes.memmove(mac, self.arp[ip], 6)
        length._obj.value = 6
        return win.NO_ERROR

    def IcmpCreateFile(self) -> int:
        return 0x2A0

    def IcmpCloseHandle(self, handle: int) -> int:
        return 1

    def IcmpSendEcho2(
        self,
        handle: int,
        event: Any,
        apc: Any,
        ctx: Any,
        dest: int,
        data: Any,
        size: int,
        options: Any,
        reply: Any,
        reply_size: int,
        timeout_ms: int,
    ) -> int:
        ip = socket.inet_ntoa(struct.pack("<I", dest))
        with self.lock:
            self.calls.append(f"IcmpSendEcho2 {ip}")
        rtt = self.echo.get(ip)
        if rtt is None:
            return 0  # GetLastError() = IP_REQ_TIMED_OUT
        rep = win.ICMP_ECHO_REPLY()
        rep.Address = dest
        rep.Status = win.IP_SUCCESS
        rep.RoundTripTime = rtt
        rep.DataSize = size
        rep.Options.Ttl = 128
        raw = bytes(rep) + bytes(data)[:size]
        ctypes.memmove(reply, raw, min(len(raw), reply_size))
        return 1


@dataclass
class FakeShell32:
    admin: bool = False

    def IsUserAnAdmin(self) -> int:
        return 1 if self.admin else 0


class FakeWinreg:
    """The ``winreg`` module as dnspython's registry reader uses it."""

    HKEY_LOCAL_MACHINE = 0x80000002
    REG_SZ = 1
    REG_DWORD = 4

    class Key:
        def __init__(self, path: str) -> None:
            self.path = path

        def Close(self) -> None:
            pass

    def __init__(self, values: dict[str, dict[str, tuple[Any, int]]]) -> None:
        self.values = {k.lower(): v for k, v in values.items()}
        self.subkeys = {k.lower(): v for k, v in WIN_SUBKEYS.items()}

    def ConnectRegistry(self, machine: Any, hive: int) -> FakeWinreg.Key:
        return self.Key("")

    def OpenKey(self, key: FakeWinreg.Key, sub: str) -> FakeWinreg.Key:
        path = f"{key.path}\\{sub}" if key.path else sub
        if path.lower() not in self.values:
            raise FileNotFoundError(path)
        return self.Key(path)

    def QueryValueEx(self, key: FakeWinreg.Key, name: str) -> tuple[Any, int]:
        try:
            return self.values[key.path.lower()][name]
        except KeyError:
            raise FileNotFoundError(name) from None

    def EnumKey(self, key: FakeWinreg.Key, i: int) -> str:
        subs = self.subkeys.get(key.path.lower(), [])
        if i >= len(subs):
            raise OSError("no more items")
        return subs[i]


# --- macOS ------------------------------------------------------------------------------------

DARWIN_ROUTE_GET = """   route to: default
destination: default
       mask: default
    gateway: 198.18.0.1
  interface: en0
      flags: <UP,GATEWAY,DONE,STATIC,PRCLONING,GLOBAL>
 recvpipe  sendpipe  ssthresh  rtt,msec    rttvar  hopcount      mtu     expire
       0         0         0         0         0         0      1500         0
"""
DARWIN_NO_ROUTE = "route: writing to routing socket: not in table\n"
DARWIN_LINK = 18  # psutil.AF_LINK on macOS
DARWIN_ADDRS: dict[str, list[tuple[int, str, str | None]]] = {
    "lo0": [(socket.AF_INET, "127.0.0.1", "255.0.0.0")],
    "en0": [
        (DARWIN_LINK, "a4:83:e7:00:11:22", None),
        (socket.AF_INET, "198.18.0.100", "255.255.255.0"),
    ],
    "utun3": [],
}
DARWIN_INDEX = {"lo0": 1, "en0": 4, "utun3": 17}
DARWIN_RESOLV_CONF = """#
# macOS Notice
#
# This file is not consulted for DNS hostname resolution, address
# resolution, or the DNS query routing mechanism used by most
# processes on this system.
#
nameserver 198.51.100.53
"""


def darwin_ip_header(src: str, dst: str, payload_len: int) -> bytes:
    """The IPv4 header macOS puts before an ICMP datagram socket's reply: as recorded, with
    ``ip_len`` in host (little-endian) byte order and the header checksum left as received."""
    return (
        struct.pack("<BBHHHBBH", 0x45, 0, 20 + payload_len, 0x1C46, 0, 64, 1, 0)
        + socket.inet_aton(src)
        + socket.inet_aton(dst)
    )


class DarwinIcmpSocket:
    """An ICMP datagram socket as macOS has one: echo replies come back WITH the IP header.

    Backed by a socketpair so the event loop can watch it; ``answer(ip)`` says whether ``ip``
    answers (the loopback and the recorded gateway do, others are silent).
    """

    def __init__(self, answer: Callable[[str], bool]) -> None:
        self.a, self.b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.answer = answer
        self.sent: list[tuple[str, bytes]] = []

    def fileno(self) -> int:
        return self.a.fileno()

    def setblocking(self, flag: bool) -> None:
        self.a.setblocking(flag)

    def setsockopt(self, *args: Any) -> None:
        raise OSError("not on this socket")  # SO_TIMESTAMPNS is Linux's

    def bind(self, addr: Any) -> None:
        pass

    def getsockname(self) -> tuple[str, int]:
        return ("0.0.0.0", 0)  # macOS: no "port", the identifier is what we send

    def sendto(self, pkt: bytes, addr: tuple[str, int]) -> int:
        ip = addr[0]
        self.sent.append((ip, pkt))
        if self.answer(ip):
            # An echo reply (type 0) with our identifier, sequence and payload; checksum as sent.
            reply = b"\x00\x00" + pkt[2:]
            self.b.send(darwin_ip_header(ip, "198.18.0.100", len(reply)) + reply)
        return len(pkt)

    def recvmsg(self, size: int, ancsize: int = 0) -> tuple[bytes, list[Any], int, Any]:
        data = self.a.recv(size)
        ip = socket.inet_ntoa(data[12:16])
        return data, [], 0, (ip, 0)

    def close(self) -> None:
        self.a.close()
        self.b.close()
