"""Site config validation: one case per rule; every error names the file, the field and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from diag.config import ConfigError, load_site, parse_resolver
from diag.model import SecretRef

DEVICE = 'name = "Cam 1"\nkind = "ipc"\nadded_via = "p2p"\n'


def site_text(
    device: str = DEVICE,
    site: str = "",
    network: str = "",
    profile: str = "",
    thresholds: str = "",
    top: str = "",
    extra: str = "",
) -> str:
    return (
        f'{top}[site]\nname = "T"\nprofile = "loopback"\n{site}\n'
        f"[network]\n{network}\n"
        f"[thresholds]\n{thresholds}\n"
        f"[profile]\n{profile}\n"
        f"[[devices]]\n{device}\n{extra}"
    )


P2P = '[[profile.p2p_servers]]\nhost = "127.0.0.1"\nport = 32100\nprotocol = "udp"\n'

# (case id, site file text, field the error must name, words the reason must contain)
CASES: list[tuple[str, str, str, str]] = [
    (
        "added_via not an enum value",
        site_text(device='name = "C"\nkind = "ipc"\nadded_via = "bluetooth"'),
        "devices[0].added_via",
        "'bluetooth' is not one of ip, p2p, p2p-account, shared",
    ),
    (
        "kind not an enum value",
        site_text(device='name = "C"\nkind = "dvr"\nadded_via = "p2p"'),
        "devices[0].kind",
        "not one of ipc, nvr",
    ),
    ("site name missing", "[site]\n", "site.name", "is required"),
    (
        "device name missing",
        site_text(device='kind = "ipc"\nadded_via = "p2p"'),
        "devices[0].name",
        "is required",
    ),
    (
        "device kind missing",
        site_text(device='name = "C"\nadded_via = "p2p"'),
        "devices[0].kind",
        "is required",
    ),
    (
        "device added_via missing",
        site_text(device='name = "C"\nkind = "ipc"'),
        "devices[0].added_via",
        "is required",
    ),
    (
        "device name empty",
        site_text(device='name = " "\nkind = "ipc"\nadded_via = "p2p"'),
        "devices[0].name",
        "must not be empty",
    ),
    (
        "wrong type",
        site_text(device='name = 5\nkind = "ipc"\nadded_via = "p2p"'),
        "devices[0].name",
        "expected a string, got int",
    ),
    (
        "boolean for a number",
        site_text(thresholds="rtt_ms = true"),
        "thresholds.rtt_ms",
        "got a boolean",
    ),
    (
        "bad IP address",
        site_text(device=DEVICE + 'address = "198.18.0.300"'),
        "devices[0].address",
        "is not an IP address",
    ),
    (
        "bad gateway",
        site_text(network='gateway = "router"'),
        "network.gateway",
        "is not an IP address",
    ),
    (
        "bad wan address",
        site_text(network='wan_address = "1.2.3"'),
        "network.wan_address",
        "is not an IP address",
    ),
    (
        "bad MAC",
        site_text(device=DEVICE + 'mac = "00:11:22:33:44"'),
        "devices[0].mac",
        "is not a MAC address",
    ),
    (
        "inline password refused",
        site_text(device=DEVICE + 'credentials = { username = "admin", password = "hunter2" }'),
        "devices[0].credentials.password",
        "must be a reference",
    ),
    (
        "credentials without username",
        site_text(device=DEVICE + 'credentials = { password = "env:X" }'),
        "devices[0].credentials.username",
        "is required",
    ),
    (
        "unknown field in credentials",
        site_text(device=DEVICE + 'credentials = { username = "a", password = "env:X", pin = 1 }'),
        "devices[0].credentials.pin",
        "unknown field",
    ),
    (
        "unknown device field",
        site_text(device=DEVICE + 'adress = "198.18.0.5"'),
        "devices[0].adress",
        "unknown field",
    ),
    ("unknown top-level table", site_text(top="[sitee]\nname = 1\n"), "sitee", "unknown field"),
    ("unknown site field", site_text(site='langage = "pl"'), "site.langage", "unknown field"),
    ("unknown network field", site_text(network="dns = 1"), "network.dns", "unknown field"),
    ("unknown threshold", site_text(thresholds="loss = 1"), "thresholds.loss", "unknown field"),
    (
        "unknown profile field",
        site_text(profile="servers = []"),
        "profile.servers",
        "unknown field",
    ),
    ("bad lang", site_text(site='lang = "de"'), "site.lang", "not one of en, pl"),
    (
        "port out of range",
        site_text(device=DEVICE + "ports = { http = 70000 }"),
        "devices[0].ports.http",
        "not a port number",
    ),
    (
        "port zero",
        site_text(device=DEVICE + "public_port = 0"),
        "devices[0].public_port",
        "not a port number",
    ),
    (
        "port bad protocol",
        site_text(device=DEVICE + 'ports = { sip = "5060/sctp" }'),
        "devices[0].ports.sip",
        "PORT/udp",
    ),
    (
        "ports not a table",
        site_text(device=DEVICE + "ports = [80]"),
        "devices[0].ports",
        "expected a table",
    ),
    (
        "bad public host",
        site_text(device=DEVICE + 'public_host = "bad host!"'),
        "devices[0].public_host",
        "neither an IP address nor a host name",
    ),
    (
        "IP-added device without an address",
        site_text(device='name = "C"\nkind = "ipc"\nadded_via = "ip"'),
        "devices[0].public_host",
        "needs public_host or address",
    ),
    (
        "share expiry on a non-shared device",
        site_text(device=DEVICE + "share_expires = 2026-12-01"),
        "devices[0].share_expires",
        'only devices with added_via = "shared"',
    ),
    (
        "share expiry not a date",
        site_text(device='name = "C"\nkind = "ipc"\nadded_via = "shared"\nshare_expires = "soon"'),
        "devices[0].share_expires",
        "expected a date",
    ),
    (
        "stream bitrate not positive",
        site_text(device=DEVICE + "streams_kbps = [2048, 0]"),
        "devices[0].streams_kbps[1]",
        "positive integer",
    ),
    (
        "channels not positive",
        site_text(device=DEVICE + "channels = 0"),
        "devices[0].channels",
        "out of range",
    ),
    (
        "threshold not positive",
        site_text(thresholds="dns_ms = -5"),
        "thresholds.dns_ms",
        "out of range",
    ),
    (
        "loss above 100 %",
        site_text(thresholds="loss_pct = 150"),
        "thresholds.loss_pct",
        "out of range (more than 0 to 100)",
    ),
    (
        "duplicate device names",
        site_text(extra=f"[[devices]]\n{DEVICE}"),
        "devices[1].name",
        "is already devices[0]",
    ),
    (
        "devices entry not a table",
        site_text(device="", top="devices = [1]\n").replace("[[devices]]\n\n", ""),
        "devices[0]",
        "expected a table",
    ),
    (
        "site resolver not an address",
        site_text(network='site_resolver = "dns.example"'),
        "network.site_resolver",
        "not IP, IPv4:PORT",
    ),
    (
        "site resolver bad port",
        site_text(network='site_resolver = "127.0.0.1:0"'),
        "network.site_resolver",
        "not a port number",
    ),
    (
        "bad subnet",
        site_text(network='subnets = ["198.18.0.0/33"]'),
        "network.subnets[0]",
        "is not a subnet",
    ),
    (
        "independent resolver not an address",
        site_text(profile='independent_resolvers = ["resolver.test"]'),
        "profile.independent_resolvers[0]",
        "not IP, IPv4:PORT",
    ),
    (
        "DNS name invalid",
        site_text(profile='dns_names = ["bad name"]'),
        "profile.dns_names[0]",
        "is not a host name",
    ),
    (
        "URL not http",
        site_text(profile='speedtest_url = "ftp://x"'),
        "profile.speedtest_url",
        "is not an http",
    ),
    (
        "heartbeat not positive",
        site_text(profile="heartbeat_interval_s = 0"),
        "profile.heartbeat_interval_s",
        "out of range",
    ),
    (
        "p2p server bad protocol",
        site_text(extra=P2P.replace('"udp"', '"sctp"')),
        "profile.p2p_servers[0].protocol",
        "not one of udp, tcp, https, http",
    ),
    (
        "p2p server bad probe",
        site_text(extra=P2P + 'probe = "ping"'),
        "profile.p2p_servers[0].probe",
        "not one of hello, connect, https, udp-echo",
    ),
    (
        "p2p server port missing",
        site_text(extra=P2P.replace("port = 32100\n", "")),
        "profile.p2p_servers[0].port",
        "is required",
    ),
    (
        "p2p server bad port",
        site_text(extra=P2P.replace("32100", "65536")),
        "profile.p2p_servers[0].port",
        "not a port number",
    ),
    (
        "p2p server unknown field",
        site_text(extra=P2P + "tls = true"),
        "profile.p2p_servers[0].tls",
        "unknown field",
    ),
    (
        "duplicate p2p servers",
        site_text(extra=P2P + P2P),
        "profile.p2p_servers[1]",
        "is already p2p_servers[0]",
    ),
    (
        "stun server without host",
        site_text(extra="[[profile.stun_servers]]\nport = 3478\n"),
        "profile.stun_servers[0].host",
        "is required",
    ),
    (
        "unknown profile name",
        site_text(site="").replace('"loopback"', '"nosuch"'),
        "site.profile",
        "no profile 'nosuch'",
    ),
]


@pytest.mark.parametrize(
    ("text", "field", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert err.value.field == field
    assert reason in err.value.reason
    # The message a person sees names the file, the field and the reason.
    assert str(err.value) == f"{path}: {field}: {err.value.reason}"


def test_base_text_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(site_text(), encoding="utf-8")
    site = load_site(path)
    assert site.devices[0].name == "Cam 1"
    assert site.profile.name == "loopback"


def test_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[site]\nname = "unterminated\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert err.value.file == str(path)
    assert "not valid TOML" in err.value.reason
    assert "line 2" in err.value.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_site(tmp_path / "nope.toml")


def test_bad_field_in_a_profile_file_names_that_file_and_field(tmp_path: Path) -> None:
    prof = tmp_path / "vendor.toml"
    prof.write_text('name = "v"\n[[p2p_servers]]\nhost = "x.test"\nport = "a"\nprotocol = "udp"\n')
    path = tmp_path / "site.toml"
    path.write_text(site_text().replace('"loopback"', '"vendor.toml"'))
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert err.value.file == str(path)
    assert err.value.field == "site.profile"
    assert str(prof) in err.value.reason
    assert "p2p_servers[0].port" in err.value.reason


def test_bad_toml_in_a_profile_file(tmp_path: Path) -> None:
    (tmp_path / "vendor.toml").write_text("name = \n")
    path = tmp_path / "site.toml"
    path.write_text(site_text().replace('"loopback"', '"vendor.toml"'))
    with pytest.raises(ConfigError) as err:
        load_site(path)
    assert err.value.field == "site.profile" and "not valid TOML" in err.value.reason


def test_profile_file_by_relative_path_and_site_overrides(tmp_path: Path) -> None:
    (tmp_path / "vendor.toml").write_text(
        'name = "vendor"\ndns_names = ["a.vendor.test"]\nheartbeat_interval_s = 20\n'
        'ca_file = "ca.pem"\n'
    )
    path = tmp_path / "site.toml"
    path.write_text(
        site_text(profile="heartbeat_interval_s = 45").replace('"loopback"', '"vendor.toml"')
    )
    site = load_site(path)
    assert site.profile.name == "vendor"
    assert site.profile.dns_names == ("a.vendor.test",)
    assert site.profile.heartbeat_interval_s == 45.0
    assert site.profile.ca_file == str((tmp_path / "ca.pem").resolve())


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    dev = (
        'name = "C"\nkind = "ipc"\nadded_via = "shared"\nmac = "AA-BB-CC-DD-EE-0F"\n'
        "share_expires = 2026-12-01T10:00:00\n"
        'ports = { http = 8080, sip = "5060/udp" }\n'
        'credentials = { username = "admin", password = "env:DIAG_TEST_PW" }\n'
    )
    path.write_text(site_text(device=dev, extra=P2P), encoding="utf-8")
    site = load_site(path)
    d = site.devices[0]
    assert d.mac == "aa:bb:cc:dd:ee:0f"
    assert d.share_expires == dt.date(2026, 12, 1)
    assert [(p.name, p.port, p.protocol) for p in d.ports] == [
        ("http", 8080, "tcp"),
        ("sip", 5060, "udp"),
    ]
    assert d.credentials is not None and d.credentials.password == SecretRef("env:DIAG_TEST_PW")
    # The udp protocol's default probe is the platform hello.
    assert site.profile.p2p_servers[0].probe == "hello"
    assert site.network.site_resolver == "system"
    assert site.thresholds.dns_ms == 500.0


def test_example_sites_load() -> None:
    root = Path(__file__).parent.parent / "examples"
    site = load_site(root / "site.toml")
    assert {d.added_via for d in site.devices} == {"ip", "p2p", "p2p-account", "shared"}
    lb = load_site(root / "loopback-site.toml")
    assert lb.profile.name == "loopback"
    hosts = [s.host for s in lb.profile.p2p_servers]
    assert all(h == "127.0.0.1" or h.endswith(".loopback.test") for h in hosts)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("198.51.100.53", ("198.51.100.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
    ],
)
def test_parse_resolver(spec: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(spec) == expected


@pytest.mark.parametrize("spec", ["dns.test", "127.0.0.1:", "127.0.0.1:99999", "[::1]", ""])
def test_parse_resolver_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_resolver(spec)


def test_secret_ref_never_shows_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIAG_TEST_PW", "correct horse")
    ref = SecretRef("env:DIAG_TEST_PW")
    assert ref.resolve() == "correct horse"
    assert "correct" not in repr(ref) and "DIAG_TEST_PW" not in str(ref)
    assert SecretRef("env:DIAG_NOT_SET_ANYWHERE").resolve() is None
    assert SecretRef("file:/nonexistent/pw").resolve() is None
