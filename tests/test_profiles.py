"""Platform profiles: lookup (user dir, entry points, shipped, a file), placeholders, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from diag.checks.base import load_checks
from diag.config import ConfigError, load_profile, parse_site
from diag.profiles import is_reserved, placeholders
from diag.runner import plan

ROOT = Path(__file__).resolve().parents[1]
VENDOR = """name = "acme"
extends = "generic"
dns_names = ["p2p.acme-cloud.com"]
[[p2p_servers]]
host = "p2p.acme-cloud.com"
port = 32100
protocol = "udp"
"""


def diag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diag.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_reserved_names() -> None:
    for name in ("x.example", "p2p.camera-cloud.example.com", "a.example.net", "b.invalid",
                 "localhost", "example", "p2p.lab-cloud.test", "X.EXAMPLE.ORG."):  # fmt: skip
        assert is_reserved(name), name
    for name in ("p2p.acme-cloud.com", "examples.com", "example.community", "testing.io"):
        assert not is_reserved(name), name
    # In a test network (the lab) .test names resolve; the others stay reserved.
    assert not is_reserved("p2p.lab-cloud.test", test_network=True)
    assert is_reserved("x.invalid", test_network=True)


def test_generic_profile_names_no_real_platform() -> None:
    generic = load_profile("generic")
    assert placeholders(generic) == [
        "p2p.camera-cloud.example.com",
        "relay.camera-cloud.example.com",
    ]
    # Its real-world defaults are there for users (never contacted by tests).
    assert generic.speedtest_locate_url == "https://locate.measurementlab.net/v2/nearest/ndt/ndt7"
    assert generic.speedtest_method == "ndt7"
    assert not placeholders(load_profile("loopback"))


def test_placeholder_profile_skips_the_platform_checks_in_both_languages() -> None:
    site = parse_site({"site": {"name": "s", "profile": "generic"}}, None)
    reg = load_checks()
    items = {i.check_id: i for i in plan(site, reg).items}
    for cid in ("p2p", "dns", "ports"):
        skip = items[cid].skip
        assert skip is not None, cid
        assert skip.render("en") == (
            "the profile names no real platform: choose your vendor's profile"
        )
        assert "wybierz profil swojego producenta" in skip.render("pl")
    # Checks that do not probe the platform's names still run.
    assert items["host"].skip is None


def test_site_overriding_the_placeholders_runs_the_platform_checks() -> None:
    site = parse_site(
        {
            "site": {"name": "s", "profile": "generic"},
            "profile": {"dns_names": ["p2p.acme-cloud.com"], "p2p_servers": [
                {"host": "p2p.acme-cloud.com", "port": 32100, "protocol": "udp"}]},
        },
        None,
    )  # fmt: skip
    reg = load_checks()
    items = {i.check_id: i for i in plan(site, reg, ["p2p", "dns"]).items}
    assert items["p2p"].skip is None and items["dns"].skip is None


def test_site_points_at_a_profile_file(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "acme.toml").write_text(VENDOR, encoding="utf-8")
    site_file = tmp_path / "site.toml"
    site_file.write_text('[site]\nname = "s"\nprofile = "profiles/acme.toml"\n', encoding="utf-8")
    from diag.config import load_site

    site = load_site(site_file)
    assert site.profile.name == "acme"
    assert site.profile.p2p_servers[0].host == "p2p.acme-cloud.com"
    # extends = "generic": the real-world defaults come along, the platform is the vendor's own.
    assert site.profile.stun_servers == load_profile("generic").stun_servers
    assert len(site.profile.p2p_servers) == 1 and not placeholders(site.profile)
    with pytest.raises(ConfigError, match=r"no profile 'nope\.toml'"):
        parse_site({"site": {"name": "s", "profile": "nope.toml"}}, str(site_file))


def test_user_dir_profile_by_name_wins_over_shipped(tmp_path: Path) -> None:
    (tmp_path / "acme.toml").write_text(VENDOR, encoding="utf-8")
    mine = VENDOR.replace("acme", "mine").replace('extends = "generic"\n', "")
    (tmp_path / "generic.toml").write_text(mine, encoding="utf-8")
    env = {"DIAG_PROFILE_DIR": str(tmp_path)}
    out = diag("profile", "list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["profiles"]}
    assert rows["acme"]["origin"] == "user" and rows["acme"]["placeholders"] == []
    assert rows["generic"]["origin"] == "user"  # the user's own generic wins
    assert rows["loopback"]["origin"] == "shipped"
    chk = diag("profile", "check", "acme", env=env)
    # acme extends "generic", which here is the user's own (it names no speed test).
    assert chk.returncode == 0 and "acme: no speed test" in chk.stdout
    (tmp_path / "generic.toml").unlink()
    chk = diag("profile", "check", "acme", env=env)
    assert chk.returncode == 0 and "acme: valid" in chk.stdout, chk.stdout


def test_profile_from_a_package_entry_point(tmp_path: Path) -> None:
    pkg = tmp_path / "acme_profiles"
    pkg.mkdir()
    (pkg / "acme.toml").write_text(VENDOR, encoding="utf-8")
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\nPROFILE = Path(__file__).with_name('acme.toml')\n"
        "def broken():\n    return 42\n",
        encoding="utf-8",
    )
    info = tmp_path / "acme_profiles-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-profiles\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[diag.profiles]\nacme = acme_profiles:PROFILE\nbroken = acme_profiles:broken\n",
        encoding="utf-8",
    )
    env = {"PYTHONPATH": str(tmp_path), "DIAG_PROFILE_DIR": str(tmp_path / "none")}
    out = diag("profile", "list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)["profiles"]}
    assert rows["acme"]["origin"] == "package:acme-profiles"
    assert rows["acme"]["error"] is None
    # A package's broken entry is that profile's error, not the end of the listing.
    assert "not a path" in rows["broken"]["error"]
    show = diag("profile", "show", "acme", "--json", env=env)
    assert json.loads(show.stdout)["p2p_servers"][0]["host"] == "p2p.acme-cloud.com"


def test_profile_check_exit_codes(tmp_path: Path) -> None:
    generic = diag("profile", "check", "generic")
    assert generic.returncode == 1
    assert "names no real platform" in generic.stdout and "example.com" in generic.stdout
    pl = diag("profile", "--lang", "pl", "check", "generic")
    assert "nie wskazuje prawdziwej platformy" in pl.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nspeedtest_url = "ftp://x"\n', encoding="utf-8")
    res = diag("profile", "check", str(bad))
    assert res.returncode == 2 and "speedtest_url" in res.stdout
    assert diag("profile", "check", "no-such-profile").returncode == 2
