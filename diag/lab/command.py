"""`diag lab list|up|status|exec|down`: the site lab from the command line (SPEC section 6)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from diag.i18n import N_, msg, person_lang


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", required=True, metavar=N_("SUBCOMMAND"))
    p = sub.add_parser("list", help="the scenarios and the cause each injects")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p = sub.add_parser("up", help="build a lab and print its name")
    p.add_argument(
        "--scenario",
        default="healthy",
        metavar=N_("NAME[,NAME..]"),
        help="scenario(s) to inject (see `diag lab list`); several: a,b",
    )
    p.add_argument("--devices", type=int, default=None, metavar="N", help="number of devices")
    p.add_argument("--json", action="store_true", help="print the lab's state as JSON")
    p = sub.add_parser("status", help="namespaces, interfaces, addresses, site config")
    p.add_argument("--lab", metavar=N_("NAME"), help="which lab (optional when only one is up)")
    p.add_argument("--json", action="store_true", help="machine-readable status")
    p = sub.add_parser("exec", help="run a command in the lab's laptop namespace")
    p.add_argument("--lab", metavar=N_("NAME"), help="which lab (optional when only one is up)")
    p.add_argument("--role", default="laptop", help="namespace role (default: laptop)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar=N_("-- CMD..."))
    p = sub.add_parser("down", help="remove a lab (or every lab and leftover: --all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lab", metavar=N_("NAME"), help="which lab (optional when only one is up)")
    g.add_argument("--all", action="store_true", help="every lab and leftovers of crashed ones")


def _err(text: str) -> None:
    print(f"diag lab: {text}", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    from diag.lab import runtime

    try:
        return _dispatch(args, runtime)
    except runtime.LabError as exc:
        _err(exc.message.render(person_lang()))
        return exc.exit_code


def _dispatch(args: argparse.Namespace, runtime: Any) -> int:
    cmd = args.lab_command
    if cmd == "list":
        return cmd_list(args.json)
    runtime.require_root()
    if cmd == "up":
        state = runtime.up(args.scenario, args.devices)
        if args.json:
            print(json.dumps(state, indent=2))
        else:
            print(state["name"])
        return 0
    if cmd == "status":
        lab = runtime.resolve_lab(args.lab)
        st = runtime.status(lab)
        print(json.dumps(st, indent=2) if args.json else _status_text(st))
        return 0
    if cmd == "exec":
        lab = runtime.resolve_lab(args.lab)
        argv = list(args.cmd)
        if argv and argv[0] == "--":
            argv = argv[1:]
        if not argv:
            _err(msg("nothing to run: diag lab exec -- CMD...").render(person_lang()))
            return 2
        full = runtime.exec_argv(lab, args.role, argv)
        try:
            return subprocess.call(full, env=runtime.exec_env())
        except KeyboardInterrupt:
            return 130
    if cmd == "down":
        if args.all:
            labs = runtime.down_all()
            print(" ".join(labs) if labs else "no lab")
            return 0
        lab = runtime.resolve_lab(args.lab)
        runtime.down(lab)
        print(lab)
        return 0
    return 2


def cmd_list(as_json: bool) -> int:
    from diag.i18n import gettext
    from diag.lab.scenarios import SCENARIOS

    if as_json:
        print(json.dumps([s.to_json() for s in SCENARIOS], indent=2))
        return 0
    lang = person_lang()
    width = max(len(s.name) for s in SCENARIOS)
    cwidth = max(len(s.cause or "-") for s in SCENARIOS)
    for s in SCENARIOS:
        print(f"{s.name:<{width}}  {s.cause or '-':<{cwidth}}  {gettext(s.description, lang)}")
    return 0


def _status_text(st: dict[str, Any]) -> str:
    lines = [
        f"lab {st.get('name')}  scenario {','.join(st.get('scenarios', []))}  "
        f"status {st.get('status', '?')}",
        f"site config: {st.get('site_config')}",
    ]
    for f in st.get("faults", []):
        if f.get("cause"):
            on = f" ({f['device']})" if f.get("device") else ""
            lines.append(f"fault: {f['scenario']} -> {f['cause']}{on}")
    for ns in st.get("namespaces", []):
        addrs = "; ".join(
            f"{i['name']} {' '.join(i['addresses']) or '-'}{'' if i['up'] else ' (down)'}"
            for i in ns["interfaces"]
        )
        lines.append(f"  {ns['role']:<11} {ns['name']:<24} {addrs}")
    dead = [p["name"] for p in st.get("processes", []) if not p.get("alive")]
    if dead:
        lines.append(f"not running: {', '.join(dead)}")
    return "\n".join(lines)
