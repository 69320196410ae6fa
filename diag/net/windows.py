"""Windows backend: iphlpapi through ctypes (no driver, no Administrator needed).

- default route: ``GetIpForwardTable`` (the IPv4 routing table), the 0.0.0.0/0 row with the
  lowest metric; its interface index named by ``ConvertInterfaceIndexToLuid`` +
  ``ConvertInterfaceLuidToAlias`` (the alias is the friendly name psutil shows, "Ethernet").
- interface indexes: psutil's names are friendly names, which ``if_nametoindex`` does not know;
  ``ConvertInterfaceAliasToLuid`` + ``ConvertInterfaceLuidToIndex`` map them.
- ARP: ``SendARP`` asks the OS's own ARP for one address (no Npcap, no raw frames).
- ICMP echo: ``IcmpSendEcho2`` (the service ``ping.exe`` uses), synchronous, in worker threads.
- privileged: ``shell32.IsUserAnAdmin``; even an Administrator has no AF_PACKET, so the LAN
  sweep, LLDP and 802.1Q listening skip with the reason.
- nameservers: dnspython's own Windows configuration (the registry).

The DLLs are handed in (``iphlpapi``, ``shell32``) so the foreign_os tests drive this code with
recorded answers written into the same ctypes structures the real functions fill.
"""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, ClassVar

from diag.net.backend import Backend, Route

if TYPE_CHECKING:
    from diag.net.icmp import L2Path, PingStats

ERROR_INSUFFICIENT_BUFFER = 122
NO_ERROR = 0
IP_SUCCESS = 0
# A routing table rarely exceeds a few dozen rows (~60 bytes each); start at 16 KiB and grow once
# to the size the OS asks for.
ROUTE_BUFFER = 16 * 1024
ALIAS_LEN = 257  # NDIS_IF_MAX_STRING_SIZE + 1 wide characters


class MIB_IPFORWARDROW(ctypes.Structure):
    _fields_ = [
        ("dwForwardDest", ctypes.c_uint32),
        ("dwForwardMask", ctypes.c_uint32),
        ("dwForwardPolicy", ctypes.c_uint32),
        ("dwForwardNextHop", ctypes.c_uint32),
        ("dwForwardIfIndex", ctypes.c_uint32),
        ("dwForwardType", ctypes.c_uint32),
        ("dwForwardProto", ctypes.c_uint32),
        ("dwForwardAge", ctypes.c_uint32),
        ("dwForwardNextHopAS", ctypes.c_uint32),
        ("dwForwardMetric1", ctypes.c_uint32),
        ("dwForwardMetric2", ctypes.c_uint32),
        ("dwForwardMetric3", ctypes.c_uint32),
        ("dwForwardMetric4", ctypes.c_uint32),
        ("dwForwardMetric5", ctypes.c_uint32),
    ]


class IP_OPTION_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("Ttl", ctypes.c_ubyte),
        ("Tos", ctypes.c_ubyte),
        ("Flags", ctypes.c_ubyte),
        ("OptionsSize", ctypes.c_ubyte),
        ("OptionsData", ctypes.c_void_p),
    ]


class ICMP_ECHO_REPLY(ctypes.Structure):
    _fields_ = [
        ("Address", ctypes.c_uint32),
        ("Status", ctypes.c_uint32),
        ("RoundTripTime", ctypes.c_uint32),
        ("DataSize", ctypes.c_ushort),
        ("Reserved", ctypes.c_ushort),
        ("Data", ctypes.c_void_p),
        ("Options", IP_OPTION_INFORMATION),
    ]


def _ip_dword(ip: str) -> int:
    """An IPv4 address as the DWORD iphlpapi takes: the network-order bytes read natively."""
    return int(struct.unpack("<I", socket.inet_aton(ip))[0])


def _dword_ip(value: int) -> str:
    return socket.inet_ntoa(struct.pack("<I", value & 0xFFFFFFFF))


def parse_forward_table(buf: bytes) -> list[MIB_IPFORWARDROW]:
    """The rows of a ``MIB_IPFORWARDTABLE`` (DWORD count, then the rows); bounded by ``buf``."""
    if len(buf) < 4:
        return []
    (count,) = struct.unpack_from("<I", buf)
    size = ctypes.sizeof(MIB_IPFORWARDROW)
    count = min(count, (len(buf) - 4) // size)
    return [MIB_IPFORWARDROW.from_buffer_copy(buf, 4 + i * size) for i in range(count)]


class WindowsBackend(Backend):
    name = "windows"
    title = "Windows"
    icmp_sockets: ClassVar[bool] = False
    arp_service: ClassVar[bool] = True
    icmp_dgram: ClassVar[bool] = False

    def __init__(self, iphlpapi: Any = None, shell32: Any = None) -> None:
        self._iphlpapi = iphlpapi
        self._shell32 = shell32

    @property
    def iphlpapi(self) -> Any:
        if self._iphlpapi is None:
            self._iphlpapi = ctypes.WinDLL("iphlpapi")  # type: ignore[attr-defined,unused-ignore]
        return self._iphlpapi

    @property
    def shell32(self) -> Any:
        if self._shell32 is None:
            self._shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
        return self._shell32

    def is_privileged(self) -> bool:
        """An Administrator (elevated) session: raw ICMP sockets are allowed."""
        try:
            return bool(self.shell32.IsUserAnAdmin())
        except (OSError, AttributeError):
            return False

    def has(self, capability: str, privileged: bool) -> bool:
        from diag.net.backend import CAP_ICMP

        # The OS's echo service needs no privilege.
        return capability == CAP_ICMP or super().has(capability, privileged)

    def forward_table(self) -> list[MIB_IPFORWARDROW]:
        size = ctypes.c_ulong(ROUTE_BUFFER)
        for _ in range(3):
            buf = ctypes.create_string_buffer(size.value)
            rc = self.iphlpapi.GetIpForwardTable(buf, ctypes.byref(size), False)
            if rc == NO_ERROR:
                return parse_forward_table(buf.raw)
            if rc != ERROR_INSUFFICIENT_BUFFER:
                return []
        return []

    def alias_of(self, index: int) -> str | None:
        """The friendly name (alias) of an interface index."""
        luid = ctypes.c_uint64()
        if self.iphlpapi.ConvertInterfaceIndexToLuid(index, ctypes.byref(luid)) != NO_ERROR:
            return None
        alias = ctypes.create_unicode_buffer(ALIAS_LEN)
        if self.iphlpapi.ConvertInterfaceLuidToAlias(ctypes.byref(luid), alias, ALIAS_LEN):
            return None
        return alias.value or None

    def if_index(self, name: str) -> int | None:
        luid = ctypes.c_uint64()
        if self.iphlpapi.ConvertInterfaceAliasToLuid(name, ctypes.byref(luid)) != NO_ERROR:
            return None
        index = ctypes.c_ulong()
        if self.iphlpapi.ConvertInterfaceLuidToIndex(ctypes.byref(luid), ctypes.byref(index)):
            return None
        return index.value

    def default_route(self) -> Route:
        best: MIB_IPFORWARDROW | None = None
        for row in self.forward_table():
            if row.dwForwardDest != 0 or row.dwForwardMask != 0:
                continue
            if best is None or row.dwForwardMetric1 < best.dwForwardMetric1:
                best = row
        if best is None:
            return Route()
        gw = _dword_ip(best.dwForwardNextHop)
        # dwForwardType 3 = direct (on-link): the next hop is then the interface's own address.
        gateway = None if gw == "0.0.0.0" or best.dwForwardType == 3 else gw
        return Route(gateway, self.alias_of(best.dwForwardIfIndex) or str(best.dwForwardIfIndex))

    def arp_request(self, ip: str, source_ip: str | None = None) -> str | None:
        mac = (ctypes.c_ubyte * 8)()
        length = ctypes.c_ulong(6)
        src = _ip_dword(source_ip) if source_ip else 0
        rc = self.iphlpapi.SendARP(_ip_dword(ip), src, ctypes.byref(mac), ctypes.byref(length))
        if rc != NO_ERROR or length.value != 6:
            return None
        return ":".join(f"{b:02x}" for b in bytes(mac)[:6])

    def echo(self, ip: str, payload: bytes, timeout_ms: int) -> float | None:
        """One ``IcmpSendEcho2`` (synchronous): the RTT in ms, or None (lost or refused)."""
        api = self.iphlpapi
        handle = api.IcmpCreateFile()
        if not handle or handle == -1:
            return None
        try:
            size = ctypes.sizeof(ICMP_ECHO_REPLY) + len(payload) + 8
            reply = ctypes.create_string_buffer(size)
            data = ctypes.create_string_buffer(payload, len(payload))
            n = api.IcmpSendEcho2(
                handle,
                None,
                None,
                None,
                _ip_dword(ip),
                data,
                len(payload),
                None,
                reply,
                size,
                timeout_ms,
            )
            if n < 1:
                return None
            rep = ICMP_ECHO_REPLY.from_buffer_copy(reply.raw)
            if rep.Status != IP_SUCCESS or _dword_ip(rep.Address) != ip:
                return None
            return float(rep.RoundTripTime)
        finally:
            api.IcmpCloseHandle(handle)

    async def ping(
        self,
        ip: str,
        count: int,
        interval_s: float,
        wait_s: float,
        root: bool,
        l2: L2Path | None = None,
    ) -> PingStats | None:
        """``count`` echoes ``interval_s`` apart through ``IcmpSendEcho2``, each waiting up to
        ``interval_s * remaining + wait_s`` (the same window as the socket ping). RTTs come from
        the OS in whole milliseconds."""
        from diag.net.icmp import PingStats

        async def one(seq: int) -> float | None:
            await asyncio.sleep(seq * interval_s)
            window = (count - 1 - seq) * interval_s + wait_s
            payload = b"diag" + struct.pack("!Hd", seq, time.time())
            return await asyncio.to_thread(self.echo, ip, payload, max(1, int(window * 1000)))

        rtts = await asyncio.gather(*(one(s) for s in range(count)))
        return PingStats(count, tuple(rtts), "service")
