"""A randomized fault campaign: faults nobody tuned the diagnosis for, injected into healthy labs.

Every case builds a fresh ``healthy`` lab (devices heartbeat every ``--heartbeat`` s, 3 by
default), injects one fault or two with plain tools (nft drop / reject / ``numgen random`` loss on
a hop and a direction, tbf shaping, links down, routes deleted, resolvers that lie, refuse, go
silent or answer slowly, conntrack timeouts, extra and duplicate hosts on the LAN, the platform
stopped or firewalled, a device's own route or firewall broken), lets the fault age 0 to 3
heartbeat intervals (more where the evidence needs the platform to notice), runs ``diag run``
(quick, and with ``--deep`` a deep run too) in the laptop namespace, and scores the verdict
against the causes the case declares. The seed of every case is printed, so a miss replays with
``--seed N --cases 1``.

Scores (docs/diagnosis.md, "Fault campaign"): accuracy (every declared cause at or above 0.5, the
top cause a declared one, and no other cause at or above 0.5 anywhere, devices included), recall
of pairs, false alarms on healthy-with-noise cases, grey/offline/degraded devices without a
cause at or above 0.5 (must be 0: ``unexplained`` counts as a cause), and a calibration table of
every reported cause per 0.1 confidence bin (right = a declared cause of the case).

Run as root: ``.venv/bin/python bench/campaign.py --cases 120 --deep --jobs 3 [--md FILE]``.
Traffic stays inside the labs' namespaces.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HEARTBEAT_S = 3
STRONG = 0.5
# A case's diag run is cut off after this long, s (a quick run takes 10-20 s on a loaded VM).
RUN_TIMEOUT_S = 240
# deep mode without the VLAN sniff (31 s of listening proves nothing for these faults).
DEEP_ONLY = "host,wan,dns,stun,p2p,ports,heartbeat,bandwidth"
P2P_DEVICES = ("nvr", "ipc2", "ipc3")
ALL_DEVICES = ("nvr", "ipc1", "ipc2", "ipc3")
EXTRA_ADDR = "198.18.0.150"
UDP_PORT, RELAY_PORT = 32100, 443
PLATFORM = "198.51.100.10"
DNS_ISP = "198.51.100.53"


# ---------------------------------------------------------------------------------------------
# Injections: what to run where, and what the diagnosis must say


@dataclass(frozen=True)
class Injection:
    """One fault: shell commands per lab role, and the causes it must produce.

    ``site``: groups of alternatives; each group needs one of its causes at or above 0.5 on the
    site (alternatives exist where the laptop cannot tell the places apart: a router dropping the
    platform's answers looks like the operator dropping the requests). ``devices``: device ->
    causes one of which must top it. ``allow``: causes that may reach 0.5 without being wrong.
    ``min_age``: heartbeat intervals the fault must age first (the platform notices a silent
    device after 2.5). ``quick_silent``: a quick run cannot measure it (the NAT mapping lifetime);
    then nothing wrong at or above 0.5 is right.
    """

    name: str
    cmds: tuple[tuple[str, str], ...]
    site: tuple[frozenset[str], ...] = ()
    devices: dict[str, frozenset[str]] = field(default_factory=dict)
    allow: frozenset[str] = frozenset()
    min_age: int = 0
    quick_silent: bool = False
    noise: bool = False
    kind: str = "site"  # "site", "device" (for pairing) or "heartbeat" (single only)
    # The platform ports the fault blocks ((proto, port)) and where: "router-out" (the router's
    # forwarding, requests going out), "isp" (the operator's), "" for any other fault.
    blocks: frozenset[tuple[str, int]] = frozenset()
    block_at: str = ""
    special: str = ""  # an action that is not a shell command: "kill-platform", "dns:<mode>"


def _fs(*ids: str) -> frozenset[str]:
    return frozenset(ids)


def _nft_table(family: str, hook: str, rules: Iterable[str], prio: int = -10) -> str:
    """An own nft table (``campaign``) with one chain on ``hook``: leaves the lab's rules alone."""
    return (
        f"nft add table {family} campaign && "
        f"nft add chain {family} campaign c '{{ type filter hook {hook} priority {prio}; "
        f"policy accept; }}' && "
        + " && ".join(f"nft add rule {family} campaign c {r}" for r in rules)
    )


def _loss(match: str, pct: float) -> str:
    return f"{match} numgen random mod 1000 \\< {round(pct * 10)} drop"


def _ports(rng: random.Random) -> list[tuple[str, int]]:
    return rng.choice(
        [[("udp", UDP_PORT)], [("tcp", RELAY_PORT)], [("udp", UDP_PORT), ("tcp", RELAY_PORT)]]
    )


def router_block(rng: random.Random) -> Injection:
    ports = _ports(rng)
    verdict = rng.choice(["drop", "drop", "reject"])
    inbound = rng.random() < 0.3 and verdict == "drop"
    if inbound:
        rules = [f'iifname "wan0" ip saddr {PLATFORM} {p} sport {n} drop' for p, n in ports]
        # The answers die on the way back: the walk's last answering hop is the operator's.
        site = (_fs("router-port-blocking", "isp-p2p-blocking"),)
    else:
        rules = [f"ip daddr {PLATFORM} {p} dport {n} {verdict}" for p, n in ports]
        site = (_fs("router-port-blocking"),)
    udp = any(p == "udp" for p, _ in ports)
    devs = {d: site[0] for d in P2P_DEVICES} if udp else {}
    desc = "+".join(f"{p}/{n}" for p, n in ports)
    return Injection(
        f"router-{verdict}-{'in' if inbound else 'out'}-{desc}",
        (("router", _nft_table("ip", "forward", rules)),),
        site,
        devs,
        min_age=3 if udp else 0,
        blocks=frozenset(ports),
        block_at="" if inbound else "router-out",
    )


def isp_block(rng: random.Random) -> Injection:
    ports = _ports(rng)
    verdict = rng.choice(["drop", "drop", "reject"])
    rules = [f'iifname "down0" ip daddr {PLATFORM} {p} dport {n} {verdict}' for p, n in ports]
    udp = any(p == "udp" for p, _ in ports)
    site = (_fs("isp-p2p-blocking"),)
    return Injection(
        f"isp-{verdict}-{'+'.join(f'{p}/{n}' for p, n in ports)}",
        (("isp", _nft_table("ip", "forward", rules)),),
        site,
        {d: site[0] for d in P2P_DEVICES} if udp else {},
        min_age=3 if udp else 0,
        blocks=frozenset(ports),
        block_at="isp",
    )


def udp_block(rng: random.Random) -> Injection:
    where = rng.choice(["out", "in"])
    rule = (
        'oifname "wan0" meta l4proto udp udp dport != 53 drop'
        if where == "out"
        else 'iifname "wan0" meta l4proto udp udp sport != 53 drop'
    )
    site = (_fs("nat-unfriendly"),)
    return Injection(
        f"router-udp-blocked-{where}",
        (("router", _nft_table("ip", "forward", [rule])),),
        site,
        {d: site[0] for d in P2P_DEVICES},
        min_age=3,
    )


def wan_loss(rng: random.Random) -> Injection:
    pct = rng.choice([25, 30, 35, 40])
    where = rng.choice(["router-both", "router-out", "router-in", "isp-both"])
    if where.startswith("router"):
        matches = {
            "router-both": ['oifname "wan0"', 'iifname "wan0"'],
            "router-out": ['oifname "wan0"'],
            "router-in": ['iifname "wan0"'],
        }[where]
        if len(matches) == 1:
            pct = min(60, pct * 2)  # one direction: the same round-trip loss
        cmd = ("router", _nft_table("ip", "forward", [_loss(m, pct) for m in matches]))
    else:
        cmd = (
            "isp",
            _nft_table(
                "ip", "forward", [_loss('iifname "down0"', pct), _loss('oifname "down0"', pct)]
            ),
        )
    site = (_fs("wan-loss-latency"),)
    return Injection(
        f"wan-loss-{where}-{pct}pct",
        (cmd,),
        site,
        {},
        allow=_fs(),
    )


def shaping(rng: random.Random) -> Injection:
    kbit = rng.choice([300, 500, 1000, 2000, 4000])
    burst = max(kbit * 1000 // 8 // 100, 3200)
    return Injection(
        f"upload-tbf-{kbit}kbit",
        (
            (
                "router",
                f"tc qdisc change dev wan0 root handle 10: tbf rate {kbit}kbit burst {burst} "
                "latency 50ms",
            ),
        ),
        (_fs("low-bandwidth"),),
    )


def link_down(rng: random.Random) -> Injection:
    how = rng.choice(["isp-link", "router-wan", "router-route", "isp-route"])
    cmd = {
        "isp-link": ("isp", "ip link set down0 down"),
        "router-wan": ("router", "ip link set wan0 down"),
        "router-route": ("router", "ip route del default"),
        "isp-route": ("isp", "ip route del 203.0.113.0/25"),
    }[how]
    site = (_fs("link-outage"),)
    return Injection(
        f"link-outage-{how}", (cmd,), site, {d: site[0] for d in P2P_DEVICES}, min_age=3
    )


def platform_down(rng: random.Random) -> Injection:
    how = rng.choice(["stopped", "firewall-drop", "firewall-reject"])
    site = (_fs("p2p-server-unavailable"),)
    devs = {d: site[0] for d in P2P_DEVICES}
    if how == "stopped":
        return Injection("platform-stopped", (), site, devs, min_age=3, special="kill-platform")
    verdict = how.split("-")[1]
    return Injection(
        f"platform-{how}",
        (("platform", _nft_table("ip", "input", [f"ip saddr != 127.0.0.0/8 {verdict}"])),),
        site,
        devs,
        min_age=3,
    )


def dns_fault(rng: random.Random) -> Injection:
    how = rng.choice(["lies", "refuses", "silent", "slow"])
    site = (_fs("dns-failure"),)
    if how in ("lies", "refuses"):
        return Injection(f"dns-isp-{how}", (), site, special=f"dns:{how}", allow=_fs())
    rule = (
        "udp dport 53 drop"
        if how == "silent"
        else _loss("udp dport 53", 70)  # every other query lost: answers come after a retry
    )
    return Injection(f"dns-isp-{how}", (("dns-isp", _nft_table("ip", "input", [rule])),), site)


def conntrack(rng: random.Random) -> Injection:
    t = rng.choice([1, 2])
    return Injection(
        f"conntrack-udp-timeout-{t}s",
        (
            (
                "router",
                f"sysctl -qw net.netfilter.nf_conntrack_udp_timeout={t} "
                f"net.netfilter.nf_conntrack_udp_timeout_stream={t}",
            ),
        ),
        (_fs("nat-mapping-expiry"),),
        quick_silent=True,
    )


def _extra_host(addr: str, mac: str) -> tuple[tuple[str, str], ...]:
    # A new namespace of this lab ("<ns prefix><lab>-xtra": removed with the lab) on the switch.
    return (
        ("@host", "ip netns add {prefix}xtra"),
        (
            "@host",
            "ip link add name p-xtra netns {ns:switch} type veth peer name eth0 netns {prefix}xtra",
        ),
        ("switch", "ip link set p-xtra master br0 && ip link set p-xtra up"),
        (
            "xtra",
            f"ip link set lo up && ip link set eth0 address {mac} && "
            f"ip addr add {addr}/24 dev eth0 && ip link set eth0 up",
        ),
    )


def duplicate_host(rng: random.Random) -> Injection:
    dev = rng.choice(["nvr", "ipc2", "ipc3"])
    addr = {"nvr": "198.18.0.10", "ipc2": "198.18.0.22", "ipc3": "198.18.0.23"}[dev]
    return Injection(
        f"duplicate-address-{dev}",
        _extra_host(addr, "02:00:5e:00:55:0" + str(rng.randint(1, 9))),
        (),
        {dev: _fs("ip-conflict")},
        kind="device",
    )


def power_off(rng: random.Random) -> Injection:
    dev = rng.choice(ALL_DEVICES)
    return Injection(
        f"device-off-{dev}",
        (("switch", f"ip link set p-{dev} down"),),
        (),
        {dev: _fs("device-no-power")},
        kind="device",
    )


def device_lan_loss(rng: random.Random) -> Injection:
    dev = rng.choice(ALL_DEVICES)
    pct = rng.choice([30, 35, 40])
    rules = [_loss(f'iifname "p-{dev}"', pct), _loss(f'oifname "p-{dev}"', pct)]
    return Injection(
        f"device-lan-loss-{dev}-{pct}pct",
        (("switch", _nft_table("bridge", "forward", rules, prio=0)),),
        (),
        {dev: _fs("radio-link-interference")},
        kind="device",
    )


def device_own_fault(rng: random.Random) -> Injection:
    dev = rng.choice(P2P_DEVICES)
    how = rng.choice(["route", "firewall"])
    cmd = (
        "ip route del default"
        if how == "route"
        else _nft_table("ip", "output", [f"udp dport {UDP_PORT} drop"])
    )
    # It answers on the LAN, logs in, reports sane settings; only its heartbeats do not leave:
    # nothing diag measures accounts for it, which is what `unexplained` says.
    return Injection(
        f"device-own-{how}-{dev}",
        ((dev, cmd),),
        (),
        {dev: _fs("unexplained")},
        min_age=3,
        kind="heartbeat",
    )


def noise(rng: random.Random) -> Injection:
    how = rng.choice(["wan-loss", "extra-host", "tbf", "dns-loss", "lan-loss"])
    if how == "wan-loss":
        pct = rng.choice([0.5, 1.0])
        cmds: tuple[tuple[str, str], ...] = (
            (
                "router",
                _nft_table(
                    "ip", "forward", [_loss('oifname "wan0"', pct), _loss('iifname "wan0"', pct)]
                ),
            ),
        )
    elif how == "extra-host":
        cmds = _extra_host(EXTRA_ADDR, "02:00:5e:00:55:50")
    elif how == "tbf":
        cmds = (
            (
                "router",
                "tc qdisc change dev wan0 root handle 10: tbf rate 16000kbit burst 20000 "
                "latency 50ms",
            ),
        )
    elif how == "dns-loss":
        cmds = (("dns-isp", _nft_table("ip", "input", [_loss("udp dport 53", 3)])),)
    else:
        dev = rng.choice(ALL_DEVICES)
        cmds = (
            ("switch", _nft_table("bridge", "forward", [_loss(f'oifname "p-{dev}"', 1)], prio=0)),
        )
    return Injection(f"noise-{how}", cmds, noise=True)


SITE_FAULTS: tuple[Callable[[random.Random], Injection], ...] = (
    router_block,
    isp_block,
    udp_block,
    wan_loss,
    shaping,
    link_down,
    platform_down,
    dns_fault,
    conntrack,
)
DEVICE_FAULTS: tuple[Callable[[random.Random], Injection], ...] = (
    power_off,
    duplicate_host,
    device_lan_loss,
    device_own_fault,
)
# Site faults that leave a second, independent site fault visible (no dead link, no silent
# platform hiding everything behind it).
PAIRABLE_SITE = (shaping, dns_fault, isp_block, router_block)


@dataclass
class Case:
    seed: int
    faults: list[Injection]
    age: int  # heartbeat intervals between injecting and the run

    @property
    def name(self) -> str:
        return " + ".join(f.name for f in self.faults)

    @property
    def noise(self) -> bool:
        return all(f.noise for f in self.faults)


def _unmask(faults: list[Injection]) -> list[Injection]:
    """A fault hidden behind another is declared as allowed, not required.

    A router dropping or rejecting the platform's ports outbound stops every probe before the
    operator's block on the same ports: nothing the laptop sends can reach the operator's rule
    (seed 110), so the operator's cause can be neither required nor wrong there.
    """
    routers = [f.blocks for f in faults if f.block_at == "router-out"]
    out: list[Injection] = []
    for f in faults:
        hidden = f.block_at == "isp" and any(f.blocks <= r for r in routers)
        if hidden:
            causes = frozenset(c for g in f.site for c in g)
            f = replace(f, site=(), devices={}, allow=f.allow | causes)
        out.append(f)
    return out


def make_case(seed: int) -> Case:
    """The case a seed gives (the same on every machine: replay with ``--seed``)."""
    rng = random.Random(seed)
    r = rng.random()
    if r < 0.12:
        faults = [noise(rng)]
    elif r < 0.72:
        faults = [rng.choice(SITE_FAULTS + DEVICE_FAULTS)(rng)]
    else:
        gen = rng.choice(PAIRABLE_SITE)
        a = gen(rng)
        if rng.random() < 0.7:
            b = rng.choice((power_off, duplicate_host, device_lan_loss))(rng)
        else:
            b = rng.choice([g for g in PAIRABLE_SITE if g is not gen])(rng)
        faults = _unmask([a, b])
    age = max([rng.randint(0, 3)] + [f.min_age for f in faults])
    return Case(seed, faults, age)


# ---------------------------------------------------------------------------------------------
# Running a case


def _ns_cmd(state: dict[str, Any], role: str, cmd: str, lab: str) -> list[str]:
    from diag.lab import plan as P

    prefix = f"{P.NS_PREFIX}{lab}-"
    text = cmd.replace("{prefix}", prefix)
    for r, ns in state["roles"].items():
        text = text.replace(f"{{ns:{r}}}", ns)
    if role == "@host":
        return ["sh", "-c", text]  # only `ip netns add` / `ip link ... netns`: nothing runs here
    ns = state["roles"].get(role) or f"{prefix}{role}"
    return ["ip", "netns", "exec", ns, "sh", "-c", text]


def _run(argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    from diag.lab import runtime

    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=runtime.exec_env(),
        check=False,
    )


def _special(state: dict[str, Any], lab: str, what: str) -> None:
    from diag.lab import plan as P

    if what == "kill-platform":
        for p in state["processes"]:
            if p["name"] == "platform":
                os.kill(int(p["pid"]), 9)
        return
    mode = what.split(":", 1)[1]
    # The lab's own resolver, rebuilt with another answer: the dns-failure scenario's lying
    # dnsmasq, or one that refuses every name of the zone.
    plan = P.build(lab, ["dns-failure" if mode == "lies" else "healthy"], python=sys.executable)
    argv = next(d.argv for d in plan.daemons if d.name == "dnsmasq-isp")
    if mode == "refuses":
        argv = tuple(
            f"--server=/{a.split('=', 1)[1].split(',')[0]}/#"
            if a.startswith("--host-record=")
            else a
            for a in argv
        )
    for p in state["processes"]:
        if p["name"] == "dnsmasq-isp":
            try:
                os.kill(int(p["pid"]), 9)
            except ProcessLookupError:
                pass
    time.sleep(0.3)
    ns = state["roles"]["dns-isp"]
    # Started in the lab's namespace: `lab down` ends every process there.
    subprocess.Popen(
        ["ip", "netns", "exec", ns, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.5)


def run_case(case: Case, deep: bool, heartbeat: int) -> dict[str, Any]:
    os.environ["DIAG_LAB_HEARTBEAT_S"] = str(heartbeat)
    from diag.lab import runtime

    t0 = time.monotonic()
    out: dict[str, Any] = {"seed": case.seed, "case": case.name, "age": case.age, "runs": {}}
    out["started"] = time.time()
    try:
        state = runtime.up("healthy")
    except Exception as exc:  # a lab that does not come up is no verdict on the diagnosis
        out["error"] = f"lab up: {exc}"
        return out
    lab = state["name"]
    try:
        state = runtime.status(lab)
        for f in case.faults:
            for role, cmd in f.cmds:
                res = _run(_ns_cmd(state, role, cmd, lab))
                if res.returncode != 0:
                    raise RuntimeError(f"{f.name}: {cmd}: {res.stderr.strip()[:300]}")
            if f.special:
                _special(state, lab, f.special)
        time.sleep(case.age * heartbeat)
        site_path = state["site_config"]
        modes = [("quick", [])] + ([("deep", ["--deep", "--only", DEEP_ONLY])] if deep else [])
        for mode, extra in modes:
            path = Path(state["state_dir"]) / f"campaign-{mode}.json"
            cmd = ["diag", "run", "--site", site_path, "--json", str(path), *extra]
            res = _run(["ip", "netns", "exec", state["roles"]["laptop"], *cmd], RUN_TIMEOUT_S)
            if not path.exists():
                out["runs"][mode] = {
                    "error": f"no JSON (exit {res.returncode}): {res.stderr[-500:]}"
                }
                continue
            out["runs"][mode] = summarize(json.loads(path.read_text(encoding="utf-8")))
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        runtime.down(lab)
    out["wall_s"] = round(time.monotonic() - t0, 1)
    out["ended"] = time.time()
    return out


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """What scoring needs of a run: causes (id, confidence) of the site and of every device."""
    return {
        "site": [(c["id"], c["confidence"]) for c in run["site"]["causes"]],
        "devices": {
            d["name"]: {
                "state": d["state"],
                "icon": d["icon"],
                "causes": [(c["id"], c["confidence"]) for c in d["causes"]],
            }
            for d in run["devices"]
        },
        "duration_s": run.get("duration_s"),
        # the site facts a miss is usually decided by (for reading a miss, not for scoring)
        "facts": {
            f"{f['key']}[{f['target']}]": f["value"]
            for c in run.get("checks", [])
            for f in c.get("facts", [])
            if f["key"].startswith(KEY_FACTS)
        },
        "details": [
            (c["id"], c.get("detail", "")) for c in run["site"]["causes"] if c["confidence"] >= 0.3
        ],
    }


KEY_FACTS = (
    "wan.loss",
    "wan.rtt",
    "wan.jitter",
    "wan.internet",
    "bw.",
    "dns.site.rcode",
    "p2p.reachable",
    "port.blocked_at",
    "nat.udp_blocked",
    "nat.mapping_lifetime",
)


# ---------------------------------------------------------------------------------------------
# Scoring


# Notes that state a fact of the site file, not a diagnosis: not part of the calibration.
NOT_DIAGNOSES = {"share-not-possible", "share-expired", "unexplained"}


def expected(case: Case) -> tuple[list[frozenset[str]], dict[str, frozenset[str]], set[str]]:
    groups: list[frozenset[str]] = []
    devices: dict[str, frozenset[str]] = {}
    allowed: set[str] = set()
    for f in case.faults:
        groups += f.site
        for d, ids in f.devices.items():
            devices[d] = devices.get(d, frozenset()) | ids
        allowed |= f.allow
        for g in f.site:
            allowed |= g
        for ids in f.devices.values():
            allowed |= ids
    site_ids = set().union(*groups) if groups else set()
    # In a pair, a device may be topped by the other fault's site cause.
    devices = {d: ids | site_ids for d, ids in devices.items()}
    return groups, devices, allowed


def score(case: Case, run: dict[str, Any], mode: str) -> dict[str, Any]:
    groups, devices, allowed = expected(case)
    site = run["site"]
    strong_site = {c for c, x in site if x >= STRONG}
    problems: list[str] = []
    quick_silent = mode == "quick" and any(f.quick_silent for f in case.faults)
    for g in groups:
        if not g & strong_site and not (
            quick_silent
            and g <= {c for f in case.faults if f.quick_silent for gg in f.site for c in gg}
        ):
            problems.append(f"site lacks {'/'.join(sorted(g))}")
    if groups and site and strong_site:
        top = max(site, key=lambda c: c[1])[0]
        if top not in allowed:
            problems.append(f"site top {top}")
    for d, ids in devices.items():
        dv = run["devices"].get(d)
        if dv is None:
            problems.append(f"{d} missing")
            continue
        top = dv["causes"][0] if dv["causes"] else None
        needs = (
            any(f.devices.get(d) and f.kind != "site" for f in case.faults)
            or dv["state"] != "online"
        )
        if needs and (top is None or top[0] not in ids or top[1] < STRONG):
            problems.append(f"{d} top {top[0] if top else None} ({dv['state']})")
    wrong: list[str] = []
    for cid, conf in site:
        if conf >= STRONG and cid not in allowed:
            wrong.append(f"site {cid} {conf:.2f}")
    unexplained_greys = 0
    for name, dv in run["devices"].items():
        for cid, conf in dv["causes"]:
            if conf >= STRONG and cid not in allowed:
                wrong.append(f"{name} {cid} {conf:.2f}")
        troubled = dv["icon"] == "grey" or dv["state"] in ("offline", "degraded")
        if troubled and not any(conf >= STRONG for _, conf in dv["causes"]):
            unexplained_greys += 1
    problems += [f"wrong {w}" for w in wrong]
    # Calibration: each cause id once per case (its highest confidence), right when declared.
    seen: dict[str, float] = {}
    for cid, conf in site + [c for dv in run["devices"].values() for c in dv["causes"]]:
        if cid not in NOT_DIAGNOSES:
            seen[cid] = max(conf, seen.get(cid, 0.0))
    declared = set().union(*groups) if groups else set()
    for ids in devices.values():
        declared |= ids
    # Every reported cause counts, the explained-away notes (0.05) too: they are in the lowest bin.
    calib = [(conf, cid in declared) for cid, conf in seen.items() if conf > 0]
    return {
        "right": not problems,
        "problems": problems,
        "false_alarm": case.noise and bool(wrong),
        "unexplained_greys": unexplained_greys,
        "calibration": calib,
    }


def report(
    results: list[dict[str, Any]], cases: dict[int, Case], modes: Sequence[str], wall: float
) -> str:
    lines: list[str] = []
    for mode in modes:
        scored = []
        for r in results:
            run = r.get("runs", {}).get(mode)
            if run is None or "error" in run or "error" in r:
                continue
            scored.append((r, score(cases[r["seed"]], run, mode)))
        errors = [
            r
            for r in results
            if "error" in r or "error" in r.get("runs", {}).get(mode, {"error": 1})
        ]
        n = len(scored)
        right = sum(1 for _, s in scored if s["right"])
        pairs = [(r, s) for r, s in scored if len(cases[r["seed"]].faults) == 2]
        noise_cases = [(r, s) for r, s in scored if cases[r["seed"]].noise]
        greys = sum(s["unexplained_greys"] for _, s in scored)
        fa = sum(1 for _, s in noise_cases if s["false_alarm"])
        lines.append(f"## {mode}: {right}/{n} right ({100 * right / max(n, 1):.1f} %)")
        lines.append("")
        lines.append(
            f"- pairs: {sum(1 for _, s in pairs if s['right'])}/{len(pairs)} fully recalled"
        )
        lines.append(f"- healthy-with-noise: {fa}/{len(noise_cases)} false alarms")
        lines.append(f"- grey/offline/degraded devices without a cause >= 0.5: {greys}")
        if errors:
            lines.append(
                f"- not scored (lab or run error): {len(errors)}: seeds "
                + ", ".join(str(e["seed"]) for e in errors)
            )
        misses = [(r, s) for r, s in scored if not s["right"]]
        if misses:
            lines.append("- misses:")
            for r, s in misses:
                lines.append(
                    f"  - seed {r['seed']} `{r['case']}` (age {r['age']}): "
                    + "; ".join(s["problems"])
                )
        lines.append("")
        # A reliability table: per 0.1 bin, the mean confidence reported and how often such
        # causes were right; "off" is the difference (calibrated: within 0.1).
        lines.append("| confidence | causes | mean confidence | right | rate | off |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        bins: dict[int, list[tuple[float, bool]]] = {}
        for _, s in scored:
            for conf, ok in s["calibration"]:
                bins.setdefault(min(9, int(conf * 10)), []).append((conf, ok))
        for b in sorted(bins):
            got = bins[b]
            right = sum(ok for _, ok in got)
            mean = sum(c for c, _ in got) / len(got)
            rate = right / len(got)
            lines.append(
                f"| {b / 10:.1f}–{(b + 1) / 10:.1f} | {len(got)} | {mean:.2f} | {right} "
                f"| {rate:.2f} | {rate - mean:+.2f} |"
            )
        lines.append("")
    lines.append(f"wall time: {wall / 60:.1f} min for {len(results)} cases")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1, help="first seed (cases use seed, seed+1, ...)")
    ap.add_argument("--seeds", help="comma-separated seeds (replay)")
    ap.add_argument("--deep", action="store_true", help="a deep run too, on the same fault")
    ap.add_argument("--jobs", type=int, default=3, help="labs at a time")
    ap.add_argument("--heartbeat", type=int, default=HEARTBEAT_S, help="lab heartbeat interval, s")
    ap.add_argument("--json", help="write every case's result here")
    ap.add_argument("--md", help="write the report (Markdown) here")
    ap.add_argument("--list", action="store_true", help="print the cases and exit")
    ap.add_argument(
        "--jsonl", help="append every finished case here as it ends (a long run can be cut short)"
    )
    ap.add_argument(
        "--report-from", metavar="JSONL", help="print the report of a (partial) --jsonl file"
    )
    args = ap.parse_args(argv)
    seeds = (
        [int(s) for s in args.seeds.split(",")]
        if args.seeds
        else list(range(args.seed, args.seed + args.cases))
    )
    if args.report_from:
        done = [json.loads(x) for x in Path(args.report_from).read_text().splitlines() if x]
        done.sort(key=lambda r: r["seed"])
        by_seed = {r["seed"]: make_case(r["seed"]) for r in done}
        modes = ["quick"] + (["deep"] if any("deep" in r.get("runs", {}) for r in done) else [])
        wall = max((r.get("ended", 0) for r in done), default=0) - min(
            (r.get("started", 0) for r in done), default=0
        )
        print(report(done, by_seed, modes, wall))
        return 0
    cases = {s: make_case(s) for s in seeds}
    if args.list:
        for s, c in cases.items():
            print(f"seed {s}: {c.name} (age {c.age})")
        return 0
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    with cf.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futs = {pool.submit(run_case, c, args.deep, args.heartbeat): s for s, c in cases.items()}
        for fut in cf.as_completed(futs):
            r = fut.result()
            results.append(r)
            if args.jsonl:
                with open(args.jsonl, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(r) + "\n")
            marks = []
            for mode, run in r.get("runs", {}).items():
                if "error" in run:
                    marks.append(f"{mode}: ERROR")
                    continue
                s = score(cases[r["seed"]], run, mode)
                marks.append(
                    f"{mode}: {'ok' if s['right'] else 'MISS ' + '; '.join(s['problems'])}"
                )
            print(
                f"seed {r['seed']:>5} {r['case']:<48} age {r['age']} {r.get('wall_s', '?')} s  "
                f"{r.get('error') or ' | '.join(marks)}",
                flush=True,
            )
    wall = time.monotonic() - t0
    results.sort(key=lambda r: r["seed"])
    modes = ["quick"] + (["deep"] if args.deep else [])
    text = report(results, cases, modes, wall)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.md:
        Path(args.md).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
