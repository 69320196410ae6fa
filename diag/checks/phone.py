"""Phone check: the facts the customer's phone measured through ``diag phone`` in this session.

It sends nothing itself. ``diag phone`` (or the dashboard's phone key) serves the page; the
phone posts what its browser could measure; the result waits in ``diag.phone.inbox`` and this
check turns it into ``phone.*`` facts (docs/facts.md): battery, data saver and connection, the
phone's address as the laptop saw it (on the cameras' LAN or not), its public address and NAT
mapping from WebRTC ICE gathering against the profile's STUN servers, the platform's HTTPS
endpoints as the phone reached them, and the clock offset between phone and laptop. Whatever the
browser could not measure is a ``None`` fact and named in ``phone.not_measured``.
Without a result the check skips: no phone, no phone facts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from diag.checks.base import Check, Context
from diag.i18n import msg
from diag.model import Fact, JSONValue, Metric, Outcome, Site, Status
from diag.phone import inbox
from diag.phone.result import Ice, PhoneResult

NatMapping = str  # "independent" | "dependent"


def ice_facts(ice: Ice | None) -> dict[str, JSONValue]:
    """UDP reachability, public address and NAT mapping from the ICE gathering (pure).

    Browsers drop a server-reflexive candidate equal to one they already have, so the peer
    connection that asked every STUN server from one socket shows two candidates with one
    address and two ports exactly when the NAT mapped that socket anew per server (address- or
    port-dependent mapping, "symmetric"); one candidate while each server alone answered means
    an endpoint-independent mapping. Two different public addresses may be two networks (Wi-Fi
    and mobile data at once): the mapping is then not classified.
    """
    if ice is None:
        return {"udp_blocked": None, "public_ip": None, "nat_mapping": None, "srflx": None,
                "stun_answered": None}  # fmt: skip
    answered = [g.server for g in ice.per_server if g.srflx]
    every = list(dict.fromkeys([*ice.combined, *(c for g in ice.per_server for c in g.srflx)]))
    ips = sorted({c.rsplit(":", 1)[0] for c in every})
    mapping: str | None = None
    combined_ips = {c.rsplit(":", 1)[0] for c in ice.combined}
    if len(ice.combined) >= 2 and len(combined_ips) == 1:
        mapping = "dependent"
    elif len(ice.combined) == 1 and len(answered) >= 2:
        mapping = "independent"
    return {
        # No server-reflexive candidate from any server: STUN over UDP does not get out.
        "udp_blocked": not every,
        "public_ip": ips[0].strip("[]") if len(ips) == 1 else None,
        "nat_mapping": mapping,
        "srflx": list(every),
        "stun_answered": len(answered),
    }


def _in_networks(addr: str, nets: Sequence[str]) -> bool | None:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    parsed = []
    for n in nets:
        try:
            parsed.append(ipaddress.ip_network(n, strict=False))
        except ValueError:
            continue
    if not parsed:
        return None
    return any(ip.version == n.version and ip in n for n in parsed)


def lan_networks(site: Site, served_on: Sequence[str]) -> list[str]:
    """The networks that are the cameras' LAN: the laptop's own (where the page was served) and
    the site file's subnets, as far as they hold a device."""
    nets = [*served_on, *site.network.subnets]
    addrs = [d.address for d in site.devices if d.address]
    with_devices = [n for n in nets if any(_in_networks(a, [n]) for a in addrs)]
    return with_devices or nets


def analyse(res: PhoneResult, site: Site, served_on: Sequence[str] = ()) -> Outcome:
    """Facts and status from one phone result (pure)."""
    facts: list[Fact] = []

    def add(key: str, value: JSONValue, unit: str = "", target: str = "") -> None:
        facts.append(Fact(key, value, unit, target))

    add("phone.address", res.peer or None)
    add("phone.on_site_lan", _in_networks(res.peer, lan_networks(site, served_on)))
    add("phone.user_agent", res.user_agent or None)
    add("phone.secure_context", res.secure_context)
    b = res.battery
    add("phone.battery_pct", round(b.level * 100, 1) if b else None, "%")
    add("phone.battery_charging", b.charging if b else None)
    c = res.connection
    add("phone.save_data", c.save_data if c else None)
    add("phone.effective_type", c.effective_type if c else None)
    add("phone.downlink_mbps", c.downlink_mbps if c else None, "Mbit/s")
    add("phone.rtt_ms", c.rtt_ms if c else None, "ms")
    add("phone.connection_type", c.type if c else None)
    ice = ice_facts(res.ice)
    for key in ("udp_blocked", "public_ip", "nat_mapping", "srflx", "stun_answered"):
        add(f"phone.{key}", ice[key])
    reached: bool | None = None
    if res.endpoints:
        reached = any(e.outcome == "ok" for e in res.endpoints)
        for e in res.endpoints:
            add("phone.endpoint", {"outcome": e.outcome, "ms": round(e.ms)}, target=e.url)
    add("phone.platform_reachable", reached)
    add("phone.clock_offset_s", round(res.clock_offset_s, 3), "s")
    if res.page_rtt_ms is not None:
        # The offset is taken from one request: its error is at most that request's round trip.
        add("phone.clock_uncertainty_s", round(res.page_rtt_ms / 1000.0, 3), "s")
    not_measured: list[str] = list(res.unsupported)
    if c is not None and c.save_data is None and "data_saver" not in not_measured:
        not_measured.append("data_saver")
    add("phone.not_measured", list[JSONValue](not_measured))

    status: Status = "ok"
    if ice["udp_blocked"] is True or reached is False or (c is not None and c.save_data):
        status = "warn"
    metrics = {"clock_offset_s": Metric(round(res.clock_offset_s, 3), "s")}
    if b is not None:
        metrics["battery_pct"] = Metric(round(b.level * 100, 1), "%")
    summary = msg(
        "phone {address}: measured {measured}, not measured {missing}",
        address=res.peer or "?",
        measured=", ".join(n for n in _MEASURED if n not in not_measured) or "-",
        missing=", ".join(not_measured) or "-",
    )
    return Outcome(status, summary, metrics, tuple(facts))


_MEASURED = ("battery", "connection", "data_saver", "ice", "endpoints", "clock")


class PhoneCheck(Check):
    id = "phone"
    title = msg("Phone (measured on the customer's phone)")
    # It only reads a result already received: no network, no wait.
    timeout_s = 2.0

    async def run(self, ctx: Context) -> Outcome:
        got = inbox.latest()
        if got is None:
            return Outcome(
                "skip",
                msg("no result from a phone: run `diag phone` and open its page on the phone"),
            )
        return analyse(got.result, ctx.site, got.lan)
