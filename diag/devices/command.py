"""``diag discover``: the devices on the site's LAN as a table, and a draft site file.

    diag discover [--interface IF | --site FILE] [--username U --password REF]
                  [--json FILE] [--write site.toml [--force]] [--lang en|pl]

Without ``--interface`` the interface comes from ``--site`` (the one facing the site) or else the
default route's. ARP needs root; without it only WS-Discovery answers are listed. Credentials are
optional and given by reference (``env:VAR``, ``file:PATH``): with them every camera-like host is
read through its API (one login each) for its serial and firmware.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from diag.i18n import DEFAULT_LANG, N_, Message, msg, render

if TYPE_CHECKING:
    # Imported when the command runs: `diag --help` and the other commands skip httpx & co.
    from diag.devices.discover import Discovery, Found

EXIT_OK, EXIT_USAGE = 0, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interface", metavar=N_("IF"), help="the interface that faces the site")
    p.add_argument("--site", metavar=N_("FILE"), help="take the interface from this site file")
    p.add_argument("--username", default="admin", help="user for the devices' APIs (admin)")
    p.add_argument(
        "--password",
        metavar=N_("REF"),
        help="the devices' password by reference: env:VAR or file:PATH (never the password)",
    )
    p.add_argument("--json", metavar=N_("FILE"), help="write what was found as JSON ('-': stdout)")
    p.add_argument("--write", metavar=N_("FILE"), help="write a draft site file to edit")
    p.add_argument("--force", action="store_true", help="overwrite the --write file")
    p.add_argument("--lang", choices=("en", "pl"), help="language of the output")


def _err(message: Message, lang: str) -> None:
    from diag.reports.terminal import printable

    print(f"diag: {printable(render(message, lang))}", file=sys.stderr)


def _interface(args: argparse.Namespace) -> tuple[Any, Message | None]:
    from diag.net.ifaces import local_interfaces, pick_interface
    from diag.net.route import default_route

    ifaces = local_interfaces()
    if args.interface:
        chosen = next((i for i in ifaces if i.name == args.interface), None)
        if chosen is None:
            return None, msg(
                N_("no interface {name} with an IPv4 address is up"), name=args.interface
            )
        return chosen, None
    if args.site:
        from diag.config import load_site

        chosen = pick_interface(load_site(args.site), ifaces)
        if chosen is None:
            return None, msg(N_("no interface faces the site of {path}"), path=args.site)
        return chosen, None
    name = default_route().interface
    chosen = next((i for i in ifaces if i.name == name), None)
    if chosen is None:
        return None, msg(N_("no default route: name the interface with --interface"))
    return chosen, None


def _credentials(args: argparse.Namespace) -> tuple[tuple[str, str] | None, Message | None]:
    if not args.password:
        return None, None
    from diag.model import SecretRef

    if not re.match(r"^(env|file):.+", args.password):
        return None, msg(N_("--password takes a reference (env:VAR or file:PATH), not a password"))
    secret = SecretRef(args.password).resolve()
    if not secret:
        return None, msg(
            N_("the password reference {kind}:… gives nothing"), kind=args.password.split(":")[0]
        )
    return (args.username, secret), None


def main(args: argparse.Namespace) -> int:
    lang = args.lang or DEFAULT_LANG
    if args.write and Path(args.write).exists() and not args.force:
        _err(msg(N_("{path} exists; use --force to overwrite it"), path=args.write), lang)
        return EXIT_USAGE
    try:
        iface, problem = _interface(args)
    except Exception as exc:  # a bad --site file: its own clear error
        from diag.config import ConfigError

        if isinstance(exc, ConfigError):
            _err(msg(N_("bad site file: {error}"), error=str(exc)), lang)
            return EXIT_USAGE
        raise
    if problem is not None:
        _err(problem, lang)
        return EXIT_USAGE
    creds, problem = _credentials(args)
    if problem is not None:
        _err(problem, lang)
        return EXIT_USAGE
    from diag.devices.discover import discover

    root = hasattr(os, "geteuid") and os.geteuid() == 0
    result = asyncio.run(discover(iface, root=root, credentials=creds))
    del creds
    print(table(result, lang))
    try:
        if args.json:
            text = json.dumps(to_json(result), indent=2)
            if args.json == "-":
                print(text)
            else:
                Path(args.json).write_text(text + "\n", encoding="utf-8")
        if args.write:
            Path(args.write).write_text(
                site_draft(result, args.username, args.password), encoding="utf-8"
            )
            print(render(msg(N_("draft site file written to {path}"), path=args.write), lang))
    except OSError as exc:
        _err(msg(N_("cannot write {path}: {error}"), path=exc.filename, error=exc.strerror), lang)
        return EXIT_USAGE
    return EXIT_OK


def to_json(d: Discovery) -> dict[str, Any]:
    return {
        "interface": d.iface,
        "networks": d.networks,
        "arp": d.arp,
        "wsd_answers": d.wsd_answers,
        "duration_s": d.duration_s,
        "gateway": d.gateway,
        "found": [f.to_json() for f in d.found],
    }


def _cell(value: str | None) -> str:
    from diag.reports.terminal import printable

    return printable(value) if value else "-"


def table(d: Discovery, lang: str) -> str:
    heads = [
        msg(N_("address")),
        msg(N_("MAC")),
        msg(N_("vendor")),
        msg(N_("model")),
        msg(N_("serial")),
        msg(N_("ONVIF")),
        msg(N_("open ports")),
    ]
    yes, no = render(msg(N_("yes")), lang), render(msg(N_("no")), lang)
    rows = [[render(h, lang) for h in heads]]
    for f in d.found:
        rows.append(
            [
                f.address,
                _cell(f.mac),
                _cell(f.vendor or f.mac_vendor),
                _cell(f.model),
                _cell(f.serial),
                yes if f.onvif else no,
                ", ".join(f.open_ports) or "-",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    cams = sum(1 for f in d.found if f.looks_like_camera)
    foot = msg(
        N_("{hosts} hosts on {iface} ({nets}), {cams} of them cameras or recorders; {s} s"),
        hosts=len(d.found),
        iface=d.iface,
        nets=", ".join(d.networks),
        cams=cams,
        s=d.duration_s,
    )
    lines.append(render(foot, lang))
    if d.arp == "needs-root":
        lines.append(
            render(msg(N_("ARP sweep skipped: needs root; only ONVIF answers listed")), lang)
        )
    elif d.arp == "no-packet-sockets":
        lines.append(
            render(
                msg(N_("ARP sweep skipped: this system has no raw Ethernet; only ONVIF answers")),
                lang,
            )
        )
    return "\n".join(lines)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "device"


def _toml(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def site_draft(d: Discovery, username: str, password_ref: str | None) -> str:
    """A documented site file for the installer to edit (it loads as it is)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cams = [f for f in d.found if f.looks_like_camera]
    others = [f for f in d.found if not f.looks_like_camera]
    lines = [
        f"# Drafted by `diag discover` on {now} from interface {d.iface} "
        f"({', '.join(d.networks)}).",
        "# Before use: give each device the name the customer knows it by, say how it was added",
        '# to the app (added_via: "p2p", "p2p-account", "shared" or "ip"; devices added by IP',
        "# also need public_host and public_port), fill in the platform serial the app shows,",
        "# and point each password at where it is kept: env:VARIABLE or file:PATH. This file",
        "# never holds a password.",
        "",
        "[site]",
        'name = "Site found by diag discover"',
        'profile = "generic"',
        'lang = "en"',
        "",
        "[network]",
        f"interface = {_toml(d.iface)}",
        f"subnets = [{', '.join(_toml(n) for n in d.networks)}]",
    ]
    if d.gateway:
        lines.append(f"gateway = {_toml(d.gateway)}")
    used: set[str] = set()
    for f in cams:
        kind = "nvr" if f.nvr else "ipc"
        name = _slug(f"{kind}-{f.address.rsplit('.', 1)[-1]}")
        while name in used:
            name += "-2"
        used.add(name)
        what = " ".join(x for x in (f.vendor or f.mac_vendor, f.model) if x) or "unknown model"
        ports = _ports(f)
        ref = password_ref or f"env:DIAG_PW_{name.upper().replace('-', '_')}"
        lines += [
            "",
            f"# {what}"
            + (f", firmware {f.firmware}" if f.firmware else "")
            + ("; answers ONVIF" if f.onvif else "")
            + f"; open ports: {', '.join(f.open_ports) or 'none'}",
            "[[devices]]",
            f"name = {_toml(name)}",
            f'kind = "{kind}"',
            'added_via = "p2p"  # how the app knows it: p2p, p2p-account, shared or ip',
            f"address = {_toml(f.address)}",
        ]
        if f.mac:
            lines.append(f"mac = {_toml(f.mac)}")
        if f.serial:
            lines.append(f"serial = {_toml(f.serial)}")
        if ports:
            lines.append("ports = { " + ", ".join(f"{n} = {p}" for n, p in ports.items()) + " }")
        if f.api:
            lines.append(f"api = {_toml(f.api)}  # the API that answered")
        lines.append(f"credentials = {{ username = {_toml(username)}, password = {_toml(ref)} }}")
    if others:
        lines += ["", "# Also on the LAN (not cameras or recorders by their ports):"]
        lines += [
            f"#   {f.address}  {f.mac or '-'}  {f.mac_vendor or '-'}  "
            f"ports: {', '.join(f.open_ports) or 'none'}"
            for f in others
        ]
    return "\n".join(lines) + "\n"


def _ports(f: Found) -> dict[str, int]:
    from diag.devices.discover import SERVICE_PORTS

    out: dict[str, int] = {}
    if f.ports.get("http"):
        out["http"] = SERVICE_PORTS["http"]
    if f.ports.get("rtsp"):
        out["rtsp"] = SERVICE_PORTS["rtsp"]
    return out
