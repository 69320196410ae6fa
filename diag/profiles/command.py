"""``diag profile list|show|check``: the platform profiles diag knows, one profile's fields, and
whether a profile (by name or file) is usable. Nothing here touches the network: ``check`` reads
and validates the file; ``diag run`` is what probes the servers it names."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from diag.i18n import DEFAULT_LANG, N_, Message, msg, render

EXIT_OK, EXIT_PLACEHOLDER, EXIT_BAD = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=("en", "pl"), help="language of the output")
    sub = p.add_subparsers(dest="profile_command", required=True, metavar=N_("ACTION"))
    ls = sub.add_parser("list", help="the profiles by name: shipped, from packages, your own")
    ls.add_argument("--json", action="store_true", help="machine-readable list")
    show = sub.add_parser("show", help="one profile's fields")
    show.add_argument("profile", metavar=N_("NAME|FILE"))
    show.add_argument("--json", action="store_true", help="machine-readable fields")
    check = sub.add_parser(
        "check", help="validate a profile; exit 1 if it names no real platform, 2 if invalid"
    )
    check.add_argument("profile", metavar=N_("NAME|FILE"))


def _say(text: Message, lang: str | None) -> None:
    print(render(text, lang or DEFAULT_LANG))


def _as_dict(profile: Any) -> dict[str, Any]:
    data: dict[str, Any] = dataclasses.asdict(profile)
    return data


def cmd_list(args: argparse.Namespace) -> int:
    from diag.config import ConfigError, load_profile
    from diag.profiles import ProfileError, placeholders, sources, user_dir

    rows = []
    for name, src in sorted(sources().items()):
        row: dict[str, Any] = {"name": name, "origin": src.origin, "file": None}
        try:
            path = src.file()
            row["file"] = str(path)
            prof = load_profile(str(path))
            row["placeholders"] = placeholders(prof)
            row["servers"] = len(prof.p2p_servers)
            row["error"] = None
        except (ProfileError, ConfigError) as exc:
            row["placeholders"] = []
            row["error"] = str(exc)
        rows.append(row)
    if args.json:
        print(json.dumps({"user_dir": str(user_dir()), "profiles": rows}, indent=2))
        return EXIT_OK
    lang = args.lang or DEFAULT_LANG
    for row in rows:
        if row["error"]:
            note = msg("cannot be loaded: {error}", error=row["error"])
        elif row["placeholders"]:
            note = msg("placeholder names: no real platform")
        elif not row.get("servers"):
            note = msg("names no platform servers (the site file names them)")
        else:
            note = msg("names a platform")
        print(f"{row['name']:<20} {row['origin']:<24} {render(note, lang)}")
    _say(msg("your own profiles go in {dir}", dir=str(user_dir())), lang)
    return EXIT_OK


def _load(arg: str, lang: str | None) -> Any:
    from diag.config import ConfigError, load_profile

    try:
        return load_profile(arg, Path.cwd())
    except ConfigError as exc:
        _say(msg("bad profile: {error}", error=str(exc)), lang)
        return None


def cmd_show(args: argparse.Namespace) -> int:
    prof = _load(args.profile, args.lang)
    if prof is None:
        return EXIT_BAD
    data = _as_dict(prof)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return EXIT_OK
    for key, value in data.items():
        if value in (None, (), [], ""):
            continue
        if isinstance(value, list | tuple) and value and isinstance(value[0], dict):
            print(f"{key}:")
            for item in value:
                print("  - " + ", ".join(f"{k}={v}" for k, v in item.items() if v not in ("",)))
        else:
            print(f"{key}: {value}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from diag.profiles import placeholders

    lang = args.lang
    prof = _load(args.profile, lang)
    if prof is None:
        return EXIT_BAD
    reserved = placeholders(prof)
    problems = 0
    if reserved:
        _say(
            msg(
                "{name}: the profile names no real platform: choose your vendor's profile "
                "(reserved names: {names})",
                name=prof.name,
                names=", ".join(reserved),
            ),
            lang,
        )
        return EXIT_PLACEHOLDER
    if not prof.p2p_servers:
        problems += 1
        _say(msg("{name}: no p2p_servers: the p2p and ports checks have nothing to probe",
                 name=prof.name), lang)  # fmt: skip
    if not prof.dns_names:
        problems += 1
        _say(msg("{name}: no dns_names: the dns check has nothing to resolve", name=prof.name),
             lang)  # fmt: skip
    if not (prof.speedtest_url or prof.speedtest_locate_url):
        problems += 1
        _say(msg("{name}: no speed test (speedtest_url or speedtest_locate_url)", name=prof.name),
             lang)  # fmt: skip
    if not problems:
        _say(msg("{name}: valid; names {count} platform servers", name=prof.name,
                 count=len(prof.p2p_servers)), lang)  # fmt: skip
    return EXIT_OK


def main(args: argparse.Namespace) -> int:
    cmd = {"list": cmd_list, "show": cmd_show, "check": cmd_check}[args.profile_command]
    rc = cmd(args)
    sys.stdout.flush()
    return rc
