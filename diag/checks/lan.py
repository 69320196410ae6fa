"""Deprecated: the LAN helpers moved to ``diag.net`` (ifaces, l2, arp, icmp, route).

Kept as re-exports only until heartbeat.py moves to ``diag.net`` (it is being edited in
parallel); new code imports from ``diag.net``.
"""

from __future__ import annotations

from diag.net.addr import mac_bytes, mac_str
from diag.net.arp import (
    ARP_INTERVAL_S,
    ARP_PASSES,
    ARP_WAIT_S,
    DEVICE_ARP_PASSES,
    DEVICE_ARP_WAIT_S,
    ArpAnswer,
    ArpPacket,
    ArpScan,
    aggregate_answers,
    answer_from_frame,
    arp_scan,
    build_arp_request,
    parse_arp,
)
from diag.net.icmp import (
    IcmpMode,
    L2Path,
    PingStats,
    build_echo,
    build_ipv4_echo_frame,
    icmp_available,
    icmp_checksum,
    jitter_ms,
    open_icmp_socket,
    parse_echo_reply,
    ping,
)
from diag.net.ifaces import (
    MAX_SWEEP_PREFIX,
    LocalInterface,
    local_interfaces,
    pick_interface,
    sweep_targets,
)
from diag.net.l2 import (
    BROADCAST,
    ETH_P_8021AD,
    ETH_P_8021Q,
    ETH_P_ALL,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_LLDP,
    PACKET_ADD_MEMBERSHIP,
    PACKET_AUXDATA,
    PACKET_MR_PROMISC,
    PACKET_OTHERHOST,
    SO_ATTACH_FILTER,
    SOL_PACKET,
    TP_STATUS_VLAN_VALID,
    L2Frame,
    aux_vid,
    is_ours,
    open_packet_socket,
    parse_frame,
    recv_frames,
)
from diag.net.linux import parse_default_route
from diag.net.route import default_gateway
from diag.net.route import default_route as _route

__all__ = [
    "ARP_INTERVAL_S",
    "ARP_PASSES",
    "ARP_WAIT_S",
    "BROADCAST",
    "DEVICE_ARP_PASSES",
    "DEVICE_ARP_WAIT_S",
    "ETH_P_8021AD",
    "ETH_P_8021Q",
    "ETH_P_ALL",
    "ETH_P_ARP",
    "ETH_P_IP",
    "ETH_P_LLDP",
    "MAX_SWEEP_PREFIX",
    "PACKET_ADD_MEMBERSHIP",
    "PACKET_AUXDATA",
    "PACKET_MR_PROMISC",
    "PACKET_OTHERHOST",
    "SOL_PACKET",
    "SO_ATTACH_FILTER",
    "TP_STATUS_VLAN_VALID",
    "ArpAnswer",
    "ArpPacket",
    "ArpScan",
    "IcmpMode",
    "L2Frame",
    "L2Path",
    "LocalInterface",
    "PingStats",
    "aggregate_answers",
    "answer_from_frame",
    "arp_scan",
    "aux_vid",
    "build_arp_request",
    "build_echo",
    "build_ipv4_echo_frame",
    "default_gateway",
    "default_route",
    "icmp_available",
    "icmp_checksum",
    "is_ours",
    "jitter_ms",
    "local_interfaces",
    "mac_bytes",
    "mac_str",
    "open_icmp_socket",
    "open_packet_socket",
    "parse_arp",
    "parse_default_route",
    "parse_echo_reply",
    "parse_frame",
    "parse_proc_route",
    "pick_interface",
    "ping",
    "recv_frames",
    "sweep_targets",
]


def default_route() -> tuple[str | None, str | None]:
    """(interface, IPv4 gateway) of the default route: the old tuple shape of this helper."""
    r = _route()
    return r.interface, r.ipv4_gateway


def parse_proc_route(text: str) -> tuple[str | None, str | None]:
    """(interface, gateway) of the IPv4 default route in ``/proc/net/route`` text."""
    gw, iface = parse_default_route(text)
    return iface, gw
