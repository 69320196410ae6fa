"""``diag phone``: QR code and URL on the terminal, the phone's result, then a run with it.

Serves the page on the laptop's site-facing address (``--bind`` overrides) at a random port
(``--port`` fixes one, e.g. for a router port forward when the phone is on mobile data), prints
the URL as a QR code and as text, says when the phone opened the page, and waits up to
``--wait`` seconds (5 minutes) for its result. The result becomes the ``phone`` check's facts
in the run that follows (``--only`` narrows it), with the usual summary, ``--json`` and
``--html``. Exit codes as ``diag run``; 6 when no phone sent a result in time.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
import time
from typing import Any

from diag.i18n import N_, msg, render
from diag.model import Site
from diag.net.addr import join_host_port
from diag.phone.server import PageConfig

# 5 is "unknown" (a device state not measured), as for `diag run`.
EXIT_NO_RESULT = 6


def add_arguments(p: argparse.ArgumentParser) -> None:
    from diag.cli import _deadline, _ids, add_site_args

    add_site_args(p)
    p.add_argument("--bind", metavar=N_("ADDR"), help="address to serve on (default: site-facing)")
    p.add_argument("--port", type=int, default=0, metavar="N", help="port (default: random)")
    p.add_argument(
        "--url-host",
        metavar=N_("HOST"),
        help="host to put in the URL instead of the bound address (a router's port forward)",
    )
    p.add_argument(
        "--https",
        action="store_true",
        help="serve over HTTPS with a throwaway self-signed certificate (the battery needs it)",
    )
    p.add_argument("--wait", type=_deadline, default=300.0, metavar=N_("S"), help="wait this long")
    p.add_argument(
        "--only", type=_ids, metavar=N_("ID,.."), help="run only these checks (and deps)"
    )
    p.add_argument("--no-run", action="store_true", help="only receive and show the result")
    p.add_argument("--json", metavar=N_("FILE"), help="write the run as JSON")
    p.add_argument("--html", metavar=N_("FILE"), help="write the HTML report")
    p.add_argument("--deadline", type=_deadline, default=None, metavar=N_("S"), help="run deadline")


def site_facing_address(site: Site) -> tuple[str, list[str]] | None:
    """The laptop's IPv4 address towards the site and its networks (no packet is sent).

    The interface ``diag.net`` picks as facing the site (the configured one, the one holding the
    devices or the gateway); else the source address the routing table picks for the gateway.
    """
    from diag.net.ifaces import local_interfaces, pick_interface
    from diag.net.route import local_ip_towards

    ifaces = local_interfaces()
    iface = pick_interface(site, ifaces)
    if iface is not None and iface.networks:
        gw = site.network.gateway
        addr = (iface.onlink(gw) if gw else None) or iface.networks[0]
        return str(addr.ip), [str(n.network) for n in iface.networks]
    if site.network.gateway:
        src = local_ip_towards(site.network.gateway)
        if src:
            nets = [str(n.network) for i in ifaces for n in i.networks if str(n.ip) == src]
            return src, nets
    return None


def endpoints_of(site: Site) -> list[str]:
    """The platform's HTTPS endpoints the phone should reach."""
    out: list[str] = []
    for s in site.profile.p2p_servers:
        if s.protocol == "https":
            out.append(f"https://{join_host_port(s.host, s.port)}/")
    url = site.profile.status_api_url
    if url and url.startswith("https://"):
        out.append(url)
    return list(dict.fromkeys(out))


def page_config_of(site: Site) -> PageConfig:
    """What the page tests: the profile's STUN servers and HTTPS endpoints, minus placeholders.

    A placeholder name (a profile not filled in yet) would read as "blocked" on the phone; left
    out, it is "not measured", as the platform checks skip for such a profile.
    """
    from diag.phone.server import page_config
    from diag.profiles import is_reserved

    test_net = site.profile.test_network

    def real(host: str) -> bool:
        return not is_reserved(host, test_net)

    stun = [(s.host, s.port) for s in site.profile.stun_servers if real(s.host)]
    urls = [u for u in endpoints_of(site) if real(u.split("://", 1)[1].split("/", 1)[0]
                                                 .rsplit(":", 1)[0].strip("[]"))]  # fmt: skip
    return page_config(stun, urls)


def _say(text: str) -> None:
    from diag.reports.terminal import printable

    print(printable(text), flush=True)


def main(args: argparse.Namespace) -> int:
    from diag.cli import EXIT_USAGE, STATE_EXIT
    from diag.config import load_site
    from diag.phone import inbox, qr
    from diag.phone.server import Events, PhoneServer

    site = load_site(args.site)
    lang = args.lang or site.lang

    def say(m: Any) -> None:
        _say(render(m, lang))

    if args.bind:
        try:
            bind = str(ipaddress.ip_address(args.bind))
        except ValueError:
            say(msg("diag: --bind must be an IP address"))
            return EXIT_USAGE
        lan = [str(ipaddress.ip_interface(f"{bind}/24").network)] if ":" not in bind else []
        found = site_facing_address(site)
        if found and found[0] == bind:
            lan = found[1]
    else:
        found = site_facing_address(site)
        if found is None:
            say(msg("diag: no site-facing address found; give one with --bind"))
            return EXIT_USAGE
        bind, lan = found
    if not 0 <= args.port < 65536:
        say(msg("diag: --port must be 0..65535"))
        return EXIT_USAGE
    cfg = page_config_of(site)
    t0 = time.monotonic()
    opened: list[float] = []

    def connected(peer: str, _ua: str) -> None:
        opened.append(time.monotonic())
        say(msg("The phone opened the page ({address}); measuring…", address=peer))

    def rejected(peer: str, exc: Exception) -> None:
        say(msg("Refused a result from {address}: {field}", address=peer, field=str(exc)))

    def received(_r: Any) -> None:
        now = time.monotonic()
        say(
            msg(
                "Result received {seconds} s after the QR code ({page} s after the page opened)",
                seconds=f"{now - t0:.1f}",
                page=f"{now - (opened[0] if opened else t0):.1f}",
            )
        )

    server = PhoneServer(
        bind,
        cfg,
        port=args.port,
        tls=args.https,
        events=Events(on_connect=connected, on_result=received, on_reject=rejected),
    )

    async def serve() -> Any:
        try:
            await server.start()
        except OSError as exc:
            say(msg("diag: cannot listen on {address}: {error}", address=bind, error=exc.strerror))
            return None
        url = server.url
        if args.url_host:
            url = url.replace(f"//{bind}:", f"//{args.url_host}:", 1)
        say(msg("Open this page on the customer's phone (scan the code):"))
        print(qr.terminal(url), flush=True)
        _say(url)
        say(msg("Waiting up to {seconds} s for the phone…", seconds=round(args.wait)))
        return await server.wait(args.wait)

    result = asyncio.run(serve())
    if result is None:
        if server.port:
            say(msg("No result from a phone within {seconds} s", seconds=round(args.wait)))
        return EXIT_NO_RESULT if server.port else EXIT_USAGE
    inbox.put(result, tuple(lan))
    if args.no_run:
        return _show_only(site, result, lan, lang)
    return _run(args, site, lang, STATE_EXIT)


def _show_only(site: Site, result: Any, lan: list[str], lang: str) -> int:
    from diag.checks.phone import analyse

    out = analyse(result, site, lan)
    _say(render(out.summary, lang))
    for f in out.facts:
        target = f" [{f.target}]" if f.target else ""
        _say(f"  {f.key}{target} = {f.value}{' ' + f.unit if f.unit else ''}")
    return 0


def _run(args: argparse.Namespace, site: Site, lang: str, state_exit: dict[str, int]) -> int:
    from diag.checks.base import load_checks
    from diag.diagnosis.catalog import title_of
    from diag.reports import save
    from diag.reports.terminal import summary_table
    from diag.runner import DEFAULT_DEADLINE_S, execute

    reg = load_checks()
    only = args.only
    if only and "phone" not in only:
        only = [*only, "phone"]
    run = asyncio.run(
        execute(site, reg, only, deadline_s=args.deadline or DEFAULT_DEADLINE_S, lang=lang)
    )
    print(summary_table(run, lang), flush=True)
    for cause in run.site_causes:
        if cause.id == "phone-side" and cause.detail is not None:
            _say(f"{render(title_of(cause.id), lang)}: {render(cause.detail, lang)}")
            for step in cause.fix:
                _say(f"  - {render(step, lang)}")
    try:
        save(run, lang, args.json, args.html, _say)
    except OSError as exc:
        print(f"diag: {exc}", file=sys.stderr)
        return 2
    return state_exit[run.worst_state]
