"""The picture of the path, as data: laptop → switch → each device, router → operator → platform
servers / STUN / DNS, each hop and link coloured by what the run measured, with marks where the
problem is (the hop that blocks the ports, the silent device, the lying resolver, the captive
portal, the NAT type) and the numbers (loss, round trip, upload) on the links.

``path_model(run)`` is a pure function of the run (its facts through ``diagnosis.facts.Facts``
and its verdicts); the HTML report draws it as inline SVG (``svg()``), the dashboard as text
(``diag.tui.widgets.path_view``). Marks come from measurements first; a strong cause of the
diagnosis adds its title where it places the problem, so both views point at the same element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from diag import text as dtext
from diag import vocab
from diag.diagnosis.catalog import title_of
from diag.diagnosis.facts import Facts
from diag.i18n import N_, Message, msg
from diag.model import Run, Thresholds
from diag.vocab import Level

NodeKind = Literal["laptop", "switch", "device", "router", "operator", "platform", "stun", "dns"]
# A strong cause is the diagnosis's answer; weaker ones are notes and mark nothing.
STRONG = 0.5
# The SVG shows at most this many devices (the worst first); the rest are counted in one box.
MAX_DEVICES = 12
# Where each site-wide cause puts the problem on the path (an element id of the model).
WAN = "link:router-operator"
CAUSE_PLACE: dict[str, str] = {
    "router-port-blocking": "router",
    "nat-unfriendly": "router",
    "nat-mapping-expiry": "router",
    "isp-p2p-blocking": "operator",
    "data-plan-exhausted": "operator",
    "cgnat": "operator",
    "link-outage": WAN,
    "low-bandwidth": WAN,
    "wan-loss-latency": WAN,
    "p2p-server-unavailable": "platform",
    "dns-failure": "dns",
}
# Where a blocked port is blocked (``port.blocked_at``) on the path.
BLOCKED_PLACE = {"router": "router", "isp": "operator", "beyond": "platform"}


@dataclass(frozen=True)
class Mark:
    """Something found at one element: what (``kind``), in words, how bad, and from where."""

    kind: str
    text: Message
    level: Level
    # "measured": read from the facts; "diagnosis": a strong cause placed here.
    source: Literal["measured", "diagnosis"] = "measured"


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    label: str
    level: Level = "unknown"
    marks: tuple[Mark, ...] = ()
    detail: str = ""  # an address, a resolver, a count: plain data, shown small
    state: str | None = None  # a device's state


@dataclass(frozen=True)
class Link:
    id: str
    a: str
    b: str
    level: Level = "unknown"
    numbers: tuple[Message, ...] = ()
    marks: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class PathModel:
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    hidden_devices: int = 0

    def elements(self) -> list[Node | Link]:
        return [*self.nodes, *self.links]

    def element(self, element_id: str) -> Node | Link | None:
        return next((e for e in self.elements() if e.id == element_id), None)

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def link(self, a: str, b: str) -> Link | None:
        """The link between two nodes, whichever way round it was built."""
        return next((x for x in self.links if {x.a, x.b} == {a, b}), None)

    def devices(self) -> list[Node]:
        return [n for n in self.nodes if n.kind == "device"]

    def culprits(self) -> list[str]:
        """Where the problem is: the elements a strong cause of the diagnosis points at, or,
        without one, every element with a measured problem (the other marks are what follows
        from it: devices grey behind a blocked router)."""
        placed = [e.id for e in self.elements() if any(m.source == "diagnosis" for m in e.marks)]
        return placed or self.marked("bad")

    def marked(self, level: Level = "bad") -> list[str]:
        """Ids of the elements with a mark of ``level`` (bad: where the problems are)."""
        return [e.id for e in self.elements() if any(m.level == level for m in e.marks)]


@dataclass
class _Builder:
    nodes: dict[str, Node] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    marks: dict[str, list[Mark]] = field(default_factory=dict)
    levels: dict[str, Level] = field(default_factory=dict)

    def level(self, element: str, level: Level) -> None:
        self.levels[element] = vocab.worse(self.levels.get(element, "unknown"), level)

    def mark(self, element: str, mark: Mark) -> None:
        have = self.marks.setdefault(element, [])
        if not any(m.kind == mark.kind for m in have):
            have.append(mark)
        self.level(element, mark.level)


def device_id(name: str) -> str:
    return f"device:{name}"


def link_id(a: str, b: str) -> str:
    return f"link:{a}-{b}"


def _list(items: Iterable[str], most: int = 3) -> str:
    items = list(dict.fromkeys(items))
    more = f" +{len(items) - most}" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def path_model(run: Run, thresholds: Thresholds | None = None) -> PathModel:
    """The path of ``run``: nodes, links, their levels and marks, the numbers on the links."""
    th = thresholds or Thresholds()
    f = Facts(run.checks)
    b = _Builder()
    gw = f.text("wan.gateway") or ""
    base: list[tuple[str, NodeKind, str, str]] = [
        ("laptop", "laptop", N_("this laptop"), ""),
        ("switch", "switch", N_("switch / LAN"), ""),
        ("router", "router", N_("router"), gw),
        ("operator", "operator", N_("operator / internet"), f.text("wan.public_ip") or ""),
        ("platform", "platform", N_("platform servers"), ""),
        ("stun", "stun", N_("STUN"), ""),
        ("dns", "dns", N_("DNS"), f.text("dns.resolver.site") or ""),
    ]
    _lan(f, b, th)
    # With the internet link down, UDP and the platform's ports fail at the router for that
    # reason alone: no NAT type nor blocked ports are marked then.
    link_down = f.flag("wan.internet_reachable") is False
    _router_and_nat(f, b, link_down)
    _wan(f, b, th)
    if not link_down:
        _ports(f, b)
    _platform(f, b)
    _dns(f, b)
    devices = _devices(run, f, b, th)
    _causes(run, b)
    nodes = [
        Node(i, k, label, b.levels.get(i, "unknown"), tuple(b.marks.get(i, ())), detail)
        for i, k, label, detail in base
    ]
    shown = sorted(devices, key=lambda d: (-_rank(b.levels.get(d[0], "unknown")), d[1]))
    hidden = max(0, len(shown) - MAX_DEVICES)
    keep = {d[0] for d in shown[:MAX_DEVICES]}
    for did, name, detail, state in devices:
        if did in keep:
            lvl = b.levels.get(did, "unknown")
            nodes.append(Node(did, "device", name, lvl, tuple(b.marks.get(did, ())), detail, state))
    links = [
        _link(b, "laptop", "switch", ()),
        _link(b, "switch", "router", _nums(f, ("wan.gateway_rtt_ms", N_("RTT {v} ms")))),
        _link(b, "router", "operator", _wan_numbers(f)),
        _link(b, "operator", "platform", _platform_numbers(f)),
        _link(b, "operator", "stun", ()),
        _link(b, "operator", "dns", _dns_numbers(f)),
    ]
    for did, name, _, _ in devices:
        if did in keep:
            links.append(
                _link(
                    b,
                    "switch",
                    did,
                    _nums(
                        f,
                        ("device.icmp_loss_pct", N_("loss {v} %"), name),
                        ("device.rtt_ms", N_("RTT {v} ms"), name),
                    ),
                )
            )
    return PathModel(tuple(nodes), tuple(links), hidden)


def _rank(level: Level) -> int:
    return {"unknown": 1, "ok": 0, "warn": 2, "bad": 3}[level]


def _link(b: _Builder, a: str, z: str, numbers: Sequence[Message]) -> Link:
    lid = link_id(a, z)
    return Link(
        lid, a, z, b.levels.get(lid, "unknown"), tuple(numbers), tuple(b.marks.get(lid, ()))
    )


def _nums(f: Facts, *specs: tuple[str, ...]) -> list[Message]:
    out = []
    for spec in specs:
        key, template, target = (*spec, "")[:3]
        v = f.num(key, target)
        if v is not None:
            out.append(msg(template, v=round(v, 1) if abs(v) < 100 else round(v)))
    return out


def _wan_numbers(f: Facts) -> list[Message]:
    out = _nums(f, ("wan.loss_pct", N_("loss {v} %")), ("wan.rtt_ms", N_("RTT {v} ms")))
    up = f.num("bw.upload_mbps")
    if up is not None:
        out.append(msg(N_("upload {v} Mbit/s"), v=round(up, 1)))
    return out


def _platform_numbers(f: Facts) -> list[Message]:
    rtts = [v for x in f.all("p2p.rtt_ms") if (v := f.num("p2p.rtt_ms", x.target)) is not None]
    return [msg(N_("RTT {v} ms"), v=round(max(rtts), 1))] if rtts else []


def _dns_numbers(f: Facts) -> list[Message]:
    times = [v for x in f.all("dns.site.time_ms") if (v := f.num(x.key, x.target)) is not None]
    return [msg(N_("{v} ms"), v=round(max(times), 1))] if times else []


def _lan(f: Facts, b: _Builder, th: Thresholds) -> None:
    if f.flag("wan.gateway_reachable") is not None or f.all("device.reachable"):
        b.level("laptop", "ok")
        b.level(link_id("laptop", "switch"), "ok")
        b.level("switch", "ok")
    tags = f.value("vlan.tags_seen")
    if isinstance(tags, list) and tags:
        vids = [str(t.get("vid")) for t in tags if isinstance(t, dict)]
        b.mark(
            "switch",
            Mark("vlan", msg(N_("tagged frames of VLAN {vids}"), vids=_list(vids)), "warn"),
        )


def _router_and_nat(f: Facts, b: _Builder, link_down: bool) -> None:
    gw = f.flag("wan.gateway_reachable")
    if gw is False:
        b.mark("router", Mark("silent", msg(N_("the gateway does not answer")), "bad"))
        b.level(link_id("switch", "router"), "bad")
    elif gw:
        b.level("router", "ok")
        b.level(link_id("switch", "router"), "ok")
    if link_down:
        pass
    elif f.flag("nat.udp_blocked"):
        b.mark("router", Mark("nat", msg(N_("UDP blocked")), "bad"))
    else:
        name = f.text("nat.rfc3489")
        mapping, filtering = f.text("nat.mapping"), f.text("nat.filtering")
        if f.flag("nat.present") is False:
            b.mark("router", Mark("nat", msg(N_("no NAT (public address)")), "ok"))
        elif name or mapping:
            mf = "/".join(x for x in (mapping, filtering) if x)
            words = f"{name or ''} ({mf})".strip() if mf else (name or "")
            bad = mapping in ("ADM", "APDM")
            b.mark(
                "router", Mark("nat", msg(N_("NAT: {type}"), type=words), "bad" if bad else "ok")
            )
    life, beat = f.num("nat.mapping_lifetime_s"), f.num("nat.heartbeat_interval_s")
    if life is not None and beat is not None and life < beat:
        text = msg(
            N_("forgets UDP mappings after {life} s (heartbeat {beat} s)"), life=life, beat=beat
        )
        b.mark("router", Mark("mapping-expiry", text, "bad"))
    if f.flag("nat.double_nat"):
        b.mark("router", Mark("double-nat", msg(N_("double NAT")), "warn"))
    if f.flag("nat.cgnat"):
        b.mark("operator", Mark("cgnat", msg(N_("carrier-grade NAT (CGNAT)")), "bad"))


def _wan(f: Facts, b: _Builder, th: Thresholds) -> None:
    wan = link_id("router", "operator")
    reach = f.flag("wan.internet_reachable")
    if reach is False and f.flag("wan.gateway_reachable") is not False:
        b.mark(wan, Mark("link-down", msg(N_("the internet link is down")), "bad"))
        b.level("operator", "bad")
    elif reach:
        b.level(wan, "ok")
        b.level("operator", "ok")
    if f.flag("wan.captive_portal"):
        where = f.text("wan.http_redirect") or ""
        text = msg(
            N_("captive portal: web traffic is redirected {to}"), to=f"→ {where}" if where else ""
        )
        b.mark("operator", Mark("captive-portal", text, "bad"))
    loss, rtt = f.num("wan.loss_pct"), f.num("wan.rtt_ms")
    if loss is not None and loss > th.loss_pct:
        b.mark(wan, Mark("loss", msg(N_("loses {v} % of packets"), v=round(loss, 1)), "bad"))
    if rtt is not None and rtt > th.rtt_ms:
        b.mark(wan, Mark("latency", msg(N_("slow: {v} ms round trip"), v=round(rtt)), "warn"))
    up, need = f.num("bw.upload_mbps"), f.num("bw.needed_upload_mbps")
    if up is not None and need is not None:
        if up < need:
            text = msg(
                N_("upload {up} Mbit/s, the streams need {need}"),
                up=round(up, 1),
                need=round(need, 1),
            )
            b.mark(wan, Mark("slow-uplink", text, "bad"))
        else:
            b.level(wan, "ok")


def _ports(f: Facts, b: _Builder) -> None:
    blocked: dict[str, list[str]] = {}
    opened = False
    for x in f.all("port.open"):
        if x.value is True:
            opened = True
            continue
        if x.value is False:
            place = BLOCKED_PLACE.get(str(f.value("port.blocked_at", x.target)), "")
            port = x.target.rsplit(":", 1)[-1] if ":" in x.target else x.target
            blocked.setdefault(place, []).append(port)
    for place, ports in blocked.items():
        if not place:
            continue
        hop = ""
        text = msg(N_("blocks ports {ports}"), ports=_list(ports))
        b.mark(place, Mark("blocked-ports", text, "bad"))
        del hop
    if opened and not blocked:
        b.level("router", "ok")


def _platform(f: Facts, b: _Builder) -> None:
    servers = f.all("p2p.reachable")
    if not servers:
        return
    ok = [s for s in servers if s.value is True]
    stun = [s for s in servers if "stun" in s.target.lower()]
    stun_level: Level = "unknown"
    if stun:
        stun_level = "ok" if all(s.value is True for s in stun) else "bad"
    elif f.value("nat.mapping") is not None or f.value("nat.rfc3489") is not None:
        stun_level = "ok"
    b.level("stun", stun_level)
    b.level(link_id("operator", "stun"), stun_level)
    if len(ok) == len(servers):
        b.level("platform", "ok")
        b.level(link_id("operator", "platform"), "ok")
        return
    down = [s.target for s in servers if s.value is not True]
    text = msg(
        N_("{ok} of {n} servers answer; not: {down}"),
        ok=len(ok),
        n=len(servers),
        down=_list(down, 2),
    )
    # All down while the internet works: the platform itself (or the path to it) is the problem.
    level: Level = "bad" if not ok else "warn"
    b.mark("platform", Mark("platform-down", text, level))
    b.level(link_id("operator", "platform"), level)


def _dns(f: Facts, b: _Builder) -> None:
    names = f.all("dns.site.rcode")
    if not names:
        return
    lies = [x.target for x in f.all("dns.mismatch") if x.value is True]
    failed = [
        x.target
        for x in names
        if x.value != "NOERROR" and f.value("dns.independent.rcode", x.target) == "NOERROR"
    ]
    if lies:
        b.mark(
            "dns",
            Mark("lying-resolver", msg(N_("lies about {names}"), names=_list(lies, 2)), "bad"),
        )
    if failed:
        b.mark(
            "dns",
            Mark("resolver-fails", msg(N_("fails for {names}"), names=_list(failed, 2)), "bad"),
        )
    if not lies and not failed:
        b.level("dns", "ok")
        b.level(link_id("operator", "dns"), "ok")


def _devices(run: Run, f: Facts, b: _Builder, th: Thresholds) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    for v in run.devices:
        did, name = device_id(v.device), v.device
        lid = link_id("switch", did)
        reach = f.flag("device.reachable", name)
        loss = f.num("device.icmp_loss_pct", name)
        if reach is False:
            b.mark(did, Mark("silent", msg(N_("silent: no answer on the LAN")), "bad"))
            b.level(lid, "bad")
        elif reach:
            b.level(lid, "ok")
            b.level(did, "ok")
        if reach and loss is not None and loss > th.loss_pct:
            b.mark(lid, Mark("loss", msg(N_("loses {v} % of packets"), v=round(loss, 1)), "bad"))
        if f.flag("device.ip_conflict", name):
            b.mark(did, Mark("ip-conflict", msg(N_("another host answers for its address")), "bad"))
        if f.text("device.auth", name) in ("rejected", "locked", "denied"):
            b.mark(did, Mark("auth", msg(N_("the site's password is rejected")), "bad"))
        if f.flag("device.gateway_ok", name) is False:
            b.mark(did, Mark("net-config", msg(N_("wrong gateway or DNS")), "bad"))
        if reach and f.flag("device.platform_online", name) is False:
            b.mark(did, Mark("not-at-platform", msg(N_("not online at the platform")), "bad"))
        if str(v.state) == "unknown":
            b.mark(did, Mark("unknown", msg(vocab.STATE_WORD["unknown"]), "unknown"))
        addr = f.text("device.address", name) or ""
        out.append((did, name, addr, v.state))
    return out


def _causes(run: Run, b: _Builder) -> None:
    """A strong cause adds its title where it places the problem (the diagnosis's answer)."""
    for c in run.site_causes:
        place = CAUSE_PLACE.get(c.id)
        if place and c.confidence >= STRONG:
            b.mark(place, Mark(f"cause:{c.id}", title_of(c.id), "bad", "diagnosis"))
    for v in run.devices:
        for c in v.causes:
            if c.confidence < STRONG or c.id in CAUSE_PLACE:
                continue
            place = (
                link_id("switch", device_id(v.device))
                if c.id == "radio-link-interference"
                else device_id(v.device)
            )
            b.mark(place, Mark(f"cause:{c.id}", title_of(c.id), "bad", "diagnosis"))
            if place != device_id(v.device):
                b.level(device_id(v.device), "warn")


# -- the SVG drawing ----------------------------------------------------------------------------

TITLE = N_("The path from this laptop to the platform")
W = 640  # viewBox width; the figure scales to its container (a phone's 340 px or a laptop's)
BOX_W, BOX_H = 180, 46
ROW = 96  # vertical distance between the rows of the drawing


def _esc(text: str) -> str:
    # Controls and bidi overrides from outside (device names) as escapes first (diag.text).
    text = dtext.printable(text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _cut(text: str, n: int) -> str:
    # Cut after escaping, by display width (a wide character is two cells).
    return dtext.cut(text, n)


def svg(model: PathModel, t: Callable[[str | Message], str], culprits: Iterable[str] = ()) -> str:
    """The path as an inline SVG (no external reference; escaped here, marked safe by the caller).

    ``t`` renders a message in the report's language. Rows from the top: platform / STUN / DNS,
    the operator, the router, the switch with the laptop, then the devices.
    """
    hot = set(culprits) if culprits else set(model.culprits())
    pos: dict[str, tuple[float, float]] = {}
    top = [("platform", 110.0), ("stun", 320.0), ("dns", 530.0)]
    for nid, x in top:
        pos[nid] = (x, 40.0)
    pos["operator"] = (320.0, 40.0 + ROW)
    pos["router"] = (320.0, 40.0 + 2 * ROW)
    pos["switch"] = (320.0, 40.0 + 3 * ROW)
    pos["laptop"] = (110.0, 40.0 + 3 * ROW)
    devices = model.devices()
    per_row = 3
    for i, d in enumerate(devices):
        row, col = divmod(i, per_row)
        pos[d.id] = (110.0 + col * 210.0, 40.0 + (4 + row) * ROW)
    rows = 4 + max(1, -(-len(devices) // per_row)) if devices else 4
    height = 40 + rows * ROW + (20 if model.hidden_devices else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0f}" '
        f'role="img" aria-labelledby="path-title" class="path-svg">',
        f'<title id="path-title">{_esc(t(TITLE))}</title>',
    ]
    for link in model.links:
        if link.a not in pos or link.b not in pos:
            continue
        (x1, y1), (x2, y2) = pos[link.a], pos[link.b]
        colour = vocab.LEVEL_COLOUR[link.level]
        dash = ' stroke-dasharray="6 5"' if link.level == "unknown" else ""
        width = 8 if link.id in hot else 5 if link.marks else 3
        out.append(
            f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" '
            f'stroke="{colour}" stroke-width="{width}"{dash}/>'
        )
        words = [t(n) for n in link.numbers] + [
            t(m.text) for m in link.marks if m.source == "measured"
        ]
        if words:
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            anchor = "start"
            lx = mx + 10
            if link.a == "switch" and link.b.startswith("device:"):
                lx, my, anchor = x2, y2 - BOX_H / 2 - 8, "middle"
            out.append(
                f'<text x="{lx:.0f}" y="{my + 4:.0f}" font-size="11" text-anchor="{anchor}" '
                f'fill="{vocab.LEVEL_COLOUR[link.level] if link.marks else "#33404d"}">'
                f"{_esc(_cut(' · '.join(words), 44))}</text>"
            )
    for node in model.nodes:
        if node.id not in pos:
            continue
        x, y = pos[node.id]
        colour = vocab.LEVEL_COLOUR[node.level]
        glyph = vocab.LEVEL_GLYPH[node.level]
        label = node.label if node.kind == "device" else t(node.label)
        out.append(
            f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" '
            f'width="{BOX_W}" height="{BOX_H}" '
            f'rx="9" fill="{"#fdecec" if node.id in hot else "#ffffff"}" stroke="{colour}" '
            f'stroke-width="{5 if node.id in hot else 2}"/>'
        )
        out.append(
            f'<circle cx="{x - BOX_W / 2 + 16:.0f}" cy="{y - 6:.0f}" r="8" fill="{colour}"/>'
            f'<text x="{x - BOX_W / 2 + 16:.0f}" y="{y - 2:.0f}" font-size="11" fill="#fff" '
            f'text-anchor="middle" font-weight="700">{_esc(glyph)}</text>'
        )
        out.append(
            f'<text x="{x - BOX_W / 2 + 30:.0f}" y="{y - 2:.0f}" font-size="13" font-weight="600" '
            f'fill="#1f2933">{_esc(_cut(label, 20))}</text>'
        )
        # The worst mark in the box (the list under the figure has them all).
        worst = sorted(node.marks, key=lambda m: -_rank(m.level))
        sub = [t(m.text) for m in worst] or ([node.detail] if node.detail else [])
        if sub:
            fill = (
                vocab.LEVEL_COLOUR[node.level] if node.marks and node.level != "ok" else "#66727f"
            )
            out.append(
                f'<text x="{x - BOX_W / 2 + 10:.0f}" y="{y + 15:.0f}" font-size="10.5" '
                f'fill="{fill}">{_esc(_cut(sub[0], 29))}</text>'
            )
    if model.hidden_devices:
        more = t(
            msg(
                N_("… and {n, plural, one {# more device} other {# more devices}}"),
                n=model.hidden_devices,
            )
        )
        out.append(
            f'<text x="{W / 2:.0f}" y="{height - 10:.0f}" font-size="12" text-anchor="middle" '
            f'fill="#66727f">{_esc(more)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def findings(model: PathModel, t: Callable[[str | Message], str]) -> list[dict[str, str]]:
    """Every mark as a line of text (the figure's words for screen readers, print and a list)."""
    rows = []
    names = {n.id: (n.label if n.kind == "device" else t(n.label)) for n in model.nodes}
    for e in model.elements():
        where = (
            names.get(e.id)
            if isinstance(e, Node)
            else f"{names.get(e.a, e.a)} – {names.get(e.b, e.b)}"
        )
        for m in e.marks:
            rows.append({"where": where or e.id, "what": t(m.text), "level": m.level, "id": e.id})
    order = {"bad": 0, "warn": 1, "unknown": 2, "ok": 3}
    return sorted(rows, key=lambda r: order[r["level"]])
