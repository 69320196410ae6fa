"""Benchmark: NAT classification by diag's stun check vs pystun3 vs coturn's turnutils_natdiscovery.

For every lab NAT behaviour and every tool, a fresh lab is built (NAT state such as the restricted
cone's peer set or conntrack entries must not leak from one measurement into the next), the tool
runs once in the laptop namespace against the lab's coturn (RFC 5780, two addresses), and its
answer is compared with the behaviour the lab's router was built with. Wall time is the tool's
whole process, start to exit, so interpreter start-up counts for the Python tools too; diag's own
in-check classification time is shown beside it.

Run as root (not part of pytest): ``.venv/bin/python bench/bench_nat.py [--runs 3] [--md FILE]``.
Traffic stays inside the lab's namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUN_IP = "198.51.100.20"
STUN_PORT = 3478
VENV_BIN = Path(sys.executable).parent
# A peer tool that hangs is cut off here, s (pystun3 needs ~8.4 s on a non-full-cone NAT).
TOOL_TIMEOUT_S = 60


@dataclass(frozen=True)
class Expect:
    nat: bool | None  # None: UDP blocked
    mapping: str | None
    filtering: str | None
    cgnat: bool = False


# What the lab's router does in each scenario (docs/lab.md, diag/lab/scenarios.py).
BEHAVIOURS: dict[str, Expect] = {
    "nat-none": Expect(False, "EIM", "EIF"),
    "nat-full-cone": Expect(True, "EIM", "EIF"),
    "nat-restricted": Expect(True, "EIM", "ADF"),
    "nat-port-restricted": Expect(True, "EIM", "APDF"),
    "nat-symmetric": Expect(True, "APDM", "APDF"),
    "nat-udp-blocked": Expect(None, None, None),
    "nat-cgnat": Expect(True, "EIM", "APDF", cgnat=True),
}


@dataclass
class Answer:
    """What a tool said, normalised: nat None means "UDP blocked"; unknown parts stay None."""

    said: str
    nat: bool | None = None
    mapping: str | None = None
    filtering: str | None = None
    blocked: bool = False
    cgnat: bool | None = None
    inner_s: float | None = None


def right(a: Answer, e: Expect, tool: str) -> bool:
    if e.nat is None:
        return a.blocked
    if a.blocked:
        return False
    if e.nat is False:
        # "No NAT" is the right answer; EIM+EIF is what RFC 4787 calls an open host, so a tool
        # that only knows the two axes (coturn) gets it right by that measure.
        # A tool that claims a NAT (pystun3's "Full Cone") is wrong.
        return a.nat is False or (a.nat is None and a.mapping == "EIM" and a.filtering == "EIF")
    ok = a.mapping == e.mapping and (a.filtering == e.filtering or a.filtering is None)
    if tool == "diag":
        # diag reports both axes; it must have them both, and CGNAT where there is one.
        ok = ok and a.filtering == e.filtering and (not e.cgnat or a.cgnat is True)
    elif a.filtering is None and e.mapping == "EIM":
        ok = False  # a cone NAT's name needs the filtering answer
    return ok


# --- the tools ----------------------------------------------------------------------------


def run_diag(ns: str, site: str) -> Answer:
    out = _exec(ns, [str(VENV_BIN / "python"), __file__, "--probe", site])
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Answer(said=f"no answer: {out[-200:]!r}")
    f = data["facts"]
    blocked = bool(f.get("nat.udp_blocked"))
    said = f.get("nat.rfc3489") or "?"
    if f.get("nat.mapping"):
        said += f" ({f.get('nat.mapping')}/{f.get('nat.filtering')})"
    if f.get("nat.cgnat"):
        said += ", CGNAT"
    return Answer(
        said=said,
        nat=f.get("nat.present"),
        mapping=f.get("nat.mapping"),
        filtering=f.get("nat.filtering"),
        blocked=blocked,
        cgnat=f.get("nat.cgnat"),
        inner_s=data.get("classification_s"),
    )


PYSTUN = {
    "Open Internet": (False, "EIM", "EIF"),
    "Full Cone": (True, "EIM", "EIF"),
    "Restric NAT": (True, "EIM", "ADF"),
    "Restric Port NAT": (True, "EIM", "APDF"),
    "Symmetric NAT": (True, "APDM", None),
    "Symmetric UDP Firewall": (False, "EIM", "APDF"),
}


def run_pystun3(ns: str, site: str) -> Answer:
    out = _exec(ns, [str(VENV_BIN / "pystun3"), "-H", STUN_IP, "-P", str(STUN_PORT)])
    m = re.search(r"NAT Type:\s*(.+)", out)
    said = m.group(1).strip() if m else f"no answer: {out[-120:]!r}"
    if said == "Blocked":
        return Answer(said=said, blocked=True)
    nat, mapping, filtering = PYSTUN.get(said, (None, None, None))
    return Answer(said=said, nat=nat, mapping=mapping, filtering=filtering)


COTURN_AXES = {
    "Endpoint Independent": "EI",
    "Address Dependent": "AD",
    "Address and Port Dependent": "APD",
}


def run_coturn(ns: str, site: str, flags: tuple[str, ...] = ("-m", "-f")) -> Answer:
    out = _exec(ns, ["turnutils_natdiscovery", *flags, STUN_IP])
    mapping = filtering = None
    for kind, axis in re.findall(
        r"NAT with (Endpoint Independent|Address and Port Dependent|Address Dependent) "
        r"(Mapping|Filtering)",
        out,
    ):
        code = COTURN_AXES[kind] + ("M" if axis == "Mapping" else "F")
        if axis == "Mapping":
            mapping = code
        else:
            filtering = code
    if mapping is None and filtering is None:
        return Answer(said="nothing (timed out)" if "timeout" in out else "nothing")
    return Answer(said=f"{mapping}/{filtering}", nat=None, mapping=mapping, filtering=filtering)


TOOLS = {"diag": run_diag, "pystun3": run_pystun3, "coturn": run_coturn, "coturn2": run_coturn}
# coturn2: turnutils_natdiscovery's mapping (-m) and filtering (-f) runs each in its own fresh
# lab, its best case (in one run its mapping test opens a per-host filter for the filtering test).


def _exec(ns: str, argv: list[str]) -> str:
    try:
        p = subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
        )
        return p.stdout + p.stderr
    except subprocess.TimeoutExpired as exc:
        return f"timeout after {TOOL_TIMEOUT_S} s {exc.stdout!r}"


# --- in-namespace probe: one run of the check, JSON on stdout -------------------------------


def probe(site_path: str, deep: bool = False) -> None:
    from diag.checks.base import Context
    from diag.checks.stun import StunCheck, facts
    from diag.config import load_site

    site = load_site(site_path)
    check = StunCheck()
    ctx = Context(site, "stun", check.targets(site), time.monotonic() + 30, deep=deep)
    obs = asyncio.run(check.observe(ctx))
    out = {f.key: f.value for f in facts(obs, site)}
    print(
        json.dumps(
            {
                "facts": out,
                "classification_s": obs.classification_s,
                "lifetime": [obs.lifetime_s, obs.lifetime_upper_s, obs.lifetime_proven],
                "lifetime_search_s": obs.lifetime_s_spent,
            }
        )
    )


# --- mapping lifetime: does a mapping survive the heartbeat interval? -----------------------

# The lab's heartbeat interval (diag.lab.plan.HEARTBEAT_INTERVAL_S) and what each scenario's
# router does to an idle UDP mapping within it.
HEARTBEAT_S = 10
LIFETIME_SCENARIOS = {"nat-mapping-expiry": False, "healthy": True}  # survives the heartbeat?


def lifetime_diag(ns: str, site: str) -> tuple[bool | None, str]:
    out = _exec(ns, [str(VENV_BIN / "python"), __file__, "--probe-deep", site])
    try:
        data = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"no answer: {out[-200:]!r}"
    lo, hi, proven = data["lifetime"]
    said = f"≥ {lo:.2f} s" if hi is None else f"{lo:.2f}–{hi:.2f} s"
    return proven, said


def lifetime_coturn(ns: str, site: str) -> tuple[bool | None, str]:
    out = _exec(ns, ["turnutils_natdiscovery", "-t", "-T", str(HEARTBEAT_S), STUN_IP])
    tail = out.split("Mapping Lifetime Behavior Discovery", 1)[-1]
    if "Response origin" not in tail:
        return None, "nothing"
    expired = "receive timeout" in tail
    return (not expired), ("expired" if expired else "alive") + f" after {HEARTBEAT_S} s"


def lifetime_bench(runs: int) -> str:
    lines = [
        "| behaviour | expected | tool | said | right | median s |",
        "|---|---|---|---|---|---|",
    ]
    for sc, survives in LIFETIME_SCENARIOS.items():
        for tool, fn in (("diag --deep", lifetime_diag), ("coturn -t", lifetime_coturn)):
            said, ok, times = [], 0, []
            for _ in range(runs):
                box: dict[str, Any] = {}

                def call(ns: str, site: str, fn: Any = fn, box: dict[str, Any] = box) -> Answer:
                    box["r"] = fn(ns, site)
                    return Answer(said="")

                _, wall = _in_fresh_lab(sc, call)
                verdict, text = box["r"]
                said.append(text)
                ok += verdict is survives
                times.append(wall)
            exp = f"{'≥' if survives else '<'} {HEARTBEAT_S} s"
            row = f"| {sc} | {exp} | {tool} | {'; '.join(sorted(set(said)))} | {ok}/{runs} | "
            row += f"{statistics.median(times):.2f} |"
            print(row, flush=True)
            lines.append(row)
    return "\n".join(lines)


# --- the benchmark -------------------------------------------------------------------------


def measure(scenario: str, tool: str) -> tuple[Answer, float]:
    if tool == "coturn2":
        m, tm = _in_fresh_lab(scenario, lambda ns, site: run_coturn(ns, site, ("-m",)))
        f, tf = _in_fresh_lab(scenario, lambda ns, site: run_coturn(ns, site, ("-f",)))
        both = Answer(said=f"{m.mapping}/{f.filtering}", mapping=m.mapping, filtering=f.filtering)
        if m.mapping is None and f.filtering is None:
            both.said = "nothing (timed out)"
        return both, tm + tf
    return _in_fresh_lab(scenario, TOOLS[tool])


def _in_fresh_lab(scenario: str, fn: Any) -> tuple[Answer, float]:
    from diag.lab import runtime

    state = runtime.up(scenario)
    lab = state["name"]
    try:
        st = runtime.status(lab)
        ns = st["roles"]["laptop"]
        t0 = time.monotonic()
        answer = fn(ns, st["site_config"])
        return answer, time.monotonic() - t0
    finally:
        runtime.down(lab)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe", metavar="SITE", help=argparse.SUPPRESS)
    ap.add_argument("--probe-deep", metavar="SITE", help=argparse.SUPPRESS)
    ap.add_argument("--lifetime", action="store_true", help="the mapping lifetime table instead")
    ap.add_argument("--runs", type=int, default=3, help="fresh labs per tool and behaviour")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--behaviours", default=",".join(BEHAVIOURS))
    ap.add_argument("--md", metavar="FILE", help="also write the table as Markdown")
    a = ap.parse_args()
    if a.probe:
        probe(a.probe)
        return
    if a.probe_deep:
        probe(a.probe_deep, deep=True)
        return
    if a.lifetime:
        table = lifetime_bench(a.runs)
        print(table)
        if a.md:
            Path(a.md).write_text(table + "\n", encoding="utf-8")
        return
    tools = a.tools.split(",")
    rows: list[dict[str, Any]] = []
    for sc in a.behaviours.split(","):
        for tool in tools:
            answers, times, inner = [], [], []
            for _ in range(a.runs):
                ans, wall = measure(sc, tool)
                answers.append(ans)
                times.append(wall)
                if ans.inner_s is not None:
                    inner.append(ans.inner_s)
            ok = sum(right(x, BEHAVIOURS[sc], tool) for x in answers)
            row = {
                "behaviour": sc,
                "tool": tool,
                "said": "; ".join(sorted({x.said for x in answers})),
                "right": f"{ok}/{len(answers)}",
                "median_s": round(statistics.median(times), 2),
                "check_s": round(statistics.median(inner), 2) if inner else None,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = render(rows, tools)
    print(table)
    if a.md:
        Path(a.md).write_text(table + "\n", encoding="utf-8")


def render(rows: list[dict[str, Any]], tools: list[str]) -> str:
    """The results table (as in docs/bench-nat.md), totals, and the time ratios to diag."""
    by = {(r["behaviour"], r["tool"]): r for r in rows}
    behaviours = list(dict.fromkeys(r["behaviour"] for r in rows))
    head = ["behaviour", "expected"]
    for t in tools:
        head += [f"{t} said", f"{t} right", f"{t} s"]
        if t == "diag":
            head.append("diag in-check s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    peers = [t for t in tools if t != "diag"]
    ratio_head = (
        ["behaviour"] + [f"{t}/diag" for t in peers] + [f"{t}/diag in-check" for t in peers]
    )
    ratios = ["| " + " | ".join(ratio_head) + " |", "|" + "---|" * len(ratio_head)]
    totals = {t: [0, 0] for t in tools}
    for b in behaviours:
        e = BEHAVIOURS[b]
        exp = "UDP blocked" if e.nat is None else f"{e.mapping}/{e.filtering}"
        if e.nat is False:
            exp = "no NAT"
        if e.cgnat:
            exp += " + CGNAT"
        cells = [b, exp]
        for t in tools:
            r = by.get((b, t))
            if r is None:
                cells += ["", "", ""] + ([""] if t == "diag" else [])
                continue
            n, d = (int(x) for x in r["right"].split("/"))
            totals[t][0] += n
            totals[t][1] += d
            cells += [r["said"], r["right"], f"{r['median_s']:.2f}"]
            if t == "diag":
                cells.append(f"{r['check_s']:.2f}" if r["check_s"] is not None else "")
        lines.append("| " + " | ".join(cells) + " |")
        rd = by.get((b, "diag"))
        if rd and peers:
            rc = [b]
            for key in ("median_s", "check_s"):
                for t in peers:
                    rt = by.get((b, t))
                    base = rd.get(key)
                    rc.append(f"{rt['median_s'] / base:.1f}×" if rt and base else "")
            ratios.append("| " + " | ".join(rc) + " |")
    summary = ", ".join(f"{t}: {n}/{d} right" for t, (n, d) in totals.items())
    out = "\n".join(lines) + f"\n\nTotals: {summary}."
    if len(ratios) > 2:
        out += "\n\n" + "\n".join(ratios)
    return out


if __name__ == "__main__":
    main()
