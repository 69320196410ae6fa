"""The per-OS interface of the network layer, and the choice of backend at run time.

Everything that differs between Linux, Windows and macOS is a method or a capability flag here:
where the default route comes from, how interfaces get their indexes, whether the user may open
raw sockets, which nameservers the OS uses, whether Ethernet frames can be sent (``AF_PACKET``),
how ICMP echo works. The concepts themselves (frames, probes, walks) live once in the other
modules and ask the backend only these questions. A capability a backend lacks is a flag the
check turns into ``skip`` with the reason (``missing``), never an exception at run time.
"""

from __future__ import annotations

import abc
import contextlib
import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from diag.i18n import Message, msg

if TYPE_CHECKING:
    from diag.net.icmp import L2Path, PingStats
    from diag.net.ifaces import LocalInterface


@dataclass(frozen=True)
class Route:
    """The default route: its gateway (None: on-link or none) and interface (None: no route)."""

    gateway: str | None = None
    interface: str | None = None

    @property
    def ipv4_gateway(self) -> str | None:
        """The gateway when it is an IPv4 address (what UPnP, PCP and the TTL walks talk to)."""
        gw = self.gateway
        return gw if gw is not None and ":" not in gw else None


# Capabilities a check may need from the backend (``Backend.missing`` explains an absent one).
CAP_PACKET = "packet-sockets"  # send/receive raw Ethernet frames (ARP sweep, LLDP, 802.1Q)
CAP_ICMP = "icmp"  # ICMP echo by some means (socket, or the OS's echo service)
CAP_RECVERR = "recverr"  # ICMP errors about our own datagrams on the socket (TTL walk w/o root)
CAP_RAW_IP = "raw-ip"  # crafted IP packets (scapy's TTL walk)


class Backend(abc.ABC):
    """What one OS offers. Subclasses set ``name`` and the flags and implement the route."""

    name: ClassVar[str]
    # The OS's name as a person knows it (in skip reasons).
    title: ClassVar[str]
    # AF_PACKET: Linux only (macOS has BPF devices, Windows needs Npcap; neither is used).
    packet_sockets: ClassVar[bool] = False
    # ICMP through sockets at all (Windows: no datagram socket, no recvmsg, no add_reader on its
    # Proactor loop, so it pings through IcmpSendEcho2 instead).
    icmp_sockets: ClassVar[bool] = True
    # An unprivileged ICMP datagram socket exists (Linux ping_group_range, macOS always).
    icmp_dgram: ClassVar[bool] = False
    # macOS hands ICMP datagram sockets the reply WITH its IP header; Linux strips it.
    icmp_dgram_ip_header: ClassVar[bool] = False
    # The OS answers ARP for one address on request (Windows SendARP): ``arp_request``.
    arp_service: ClassVar[bool] = False
    # SO_TIMESTAMPNS (kernel receive times in ns) and IP_RECVERR: Linux socket options.
    kernel_timestamps: ClassVar[bool] = False
    recverr: ClassVar[bool] = False

    # Where dnspython reads the OS's resolver configuration on POSIX (ignored on Windows, where it
    # reads the registry).
    resolv_conf: str = "/etc/resolv.conf"

    @abc.abstractmethod
    def default_route(self) -> Route:
        """The IPv4 default route (IPv6 when there is no IPv4 one); ``Route()`` when none."""

    def is_privileged(self) -> bool:
        """Whether raw sockets are allowed: root on POSIX (Administrator on Windows)."""
        geteuid = getattr(os, "geteuid", None)
        return geteuid is not None and geteuid() == 0

    def if_index(self, name: str) -> int | None:
        """The OS interface index of the interface psutil calls ``name`` (None: unknown)."""
        try:
            return socket.if_nametoindex(name)
        except (OSError, AttributeError):
            return None

    def local_interfaces(self) -> list[LocalInterface]:
        """The up interfaces with an IPv4 address, loopback excluded (psutil; no traffic)."""
        return psutil_interfaces(self.if_index)

    def nameservers(self) -> list[str]:
        """The OS's nameservers as dnspython's own system configuration reads them: resolv.conf
        on Linux and macOS, the registry on Windows. Reading sends nothing."""
        import dns.resolver

        try:
            res = dns.resolver.Resolver(filename=self.resolv_conf, configure=True)
        except Exception:  # NoResolverConfiguration, an unreadable file or registry key
            return []
        return [str(n) for n in res.nameservers if _is_ip(str(n))]

    def has(self, capability: str, privileged: bool) -> bool:
        """Whether ``capability`` is available to this user on this OS."""
        if capability == CAP_PACKET:
            return self.packet_sockets and privileged
        if capability == CAP_ICMP:
            return privileged or self.icmp_dgram
        if capability == CAP_RECVERR:
            return self.recverr
        if capability == CAP_RAW_IP:
            return privileged and self.packet_sockets
        return False

    def missing(self, capability: str) -> Message:
        """Why ``capability`` is missing here, for a ``skip`` (en + pl)."""
        if capability == CAP_PACKET and not self.packet_sockets:
            return msg(
                "this system ({os}) has no raw Ethernet sockets: the LAN scan needs Linux",
                os=self.title,
            )
        if capability == CAP_PACKET:
            return msg("raw Ethernet sockets need root (run with sudo)")
        if capability == CAP_ICMP:
            return msg("ICMP echo is not allowed to this user on {os}", os=self.title)
        if capability == CAP_RECVERR:
            return msg("this system ({os}) does not report ICMP errors to sockets", os=self.title)
        return msg("needs raw IP packets: root on Linux")

    async def ping(
        self,
        ip: str,
        count: int,
        interval_s: float,
        wait_s: float,
        root: bool,
        l2: L2Path | None = None,
    ) -> PingStats | None:
        """``count`` echoes ``interval_s`` apart (see ``icmp.socket_ping``); None: no ICMP."""
        from diag.net.icmp import socket_ping

        return await socket_ping(self, ip, count, interval_s, wait_s, root, l2)

    def icmp_socket(self, root: bool) -> tuple[socket.socket, str] | None:
        """The ICMP socket ``socket_ping`` uses: raw with root, else datagram, else None."""
        from diag.net.icmp import open_icmp_socket

        return open_icmp_socket(root, self)

    def arp_request(self, ip: str, source_ip: str | None = None) -> str | None:
        """The MAC of ``ip`` through the OS's own ARP service (Windows ``SendARP``); None when
        the OS offers none or nobody answered. Linux sends its own frames instead (``arp``)."""
        return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return True


def psutil_interfaces(index_of: Any) -> list[LocalInterface]:
    """Interfaces from psutil with indexes from ``index_of(name)`` (None: left out)."""
    import psutil

    from diag.net.ifaces import LocalInterface

    out = []
    stats = psutil.net_if_stats()
    for name, addrs in psutil.net_if_addrs().items():
        st = stats.get(name)
        if st is None or not st.isup:
            continue
        nets = []
        mac = ""
        for a in addrs:
            if a.family == socket.AF_INET and a.netmask:
                with contextlib.suppress(ValueError):
                    nets.append(ipaddress.IPv4Interface(f"{a.address}/{a.netmask}"))
            elif a.family == getattr(psutil, "AF_LINK", -1) and a.address:
                mac = a.address.lower().replace("-", ":")
        nets = [n for n in nets if not n.ip.is_loopback]
        if not nets:
            continue
        index = index_of(name)
        if index is None:
            continue
        out.append(LocalInterface(name, index, mac, tuple(nets)))
    return out


def for_platform(platform: str) -> Backend:
    """The backend for a ``sys.platform`` value (Linux for anything not Windows or macOS)."""
    if platform == "win32":
        from diag.net.windows import WindowsBackend

        return WindowsBackend()
    if platform == "darwin":
        from diag.net.darwin import DarwinBackend

        return DarwinBackend()
    from diag.net.linux import LinuxBackend

    return LinuxBackend()


_current: Backend | None = None


def current() -> Backend:
    """This process's backend, chosen once from ``sys.platform``."""
    global _current
    if _current is None or _current.name != _platform_name(sys.platform):
        _current = for_platform(sys.platform)
    return _current


def _platform_name(platform: str) -> str:
    return {"win32": "windows", "darwin": "darwin"}.get(platform, "linux")
