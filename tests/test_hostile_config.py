"""Broken site files the validation cases in test_config.py do not cover: each exits 2 naming the
field (or the file), through the real CLI, never with a traceback or exit 4."""

from __future__ import annotations

from pathlib import Path

import pytest

from diag import cli

HEAD = '[site]\nname = "T"\nprofile = "loopback"\n'
DEV = '[[devices]]\nname = "{name}"\nkind = "ipc"\nadded_via = "p2p"\n'


def dev(name: str, extra: str = "") -> str:
    return DEV.format(name=name) + extra


# (case id, file bytes, text the error must contain)
CASES: list[tuple[str, bytes, str]] = [
    (
        "duplicate MAC (dash and colon spellings)",
        (
            HEAD + dev("A", 'mac = "00:11:22:33:44:55"\n') + dev("B", 'mac = "00-11-22-33-44-55"\n')
        ).encode(),
        "devices[1].mac: '00:11:22:33:44:55' is already devices[0]",
    ),
    (
        "address is the network address of a site subnet",
        (
            HEAD + '[network]\nsubnets = ["198.18.0.0/24"]\n' + dev("A", 'address = "198.18.0.0"\n')
        ).encode(),
        "devices[0].address: '198.18.0.0' is the network address of 198.18.0.0/24",
    ),
    (
        "address is the broadcast address of a site subnet",
        (
            HEAD
            + '[network]\nsubnets = ["198.18.0.0/23"]\n'
            + dev("A", 'address = "198.18.1.255"\n')
        ).encode(),
        "devices[0].address: '198.18.1.255' is the broadcast address of 198.18.0.0/23",
    ),
    (
        "address is the limited broadcast",
        (HEAD + dev("A", 'address = "255.255.255.255"\n')).encode(),
        "devices[0].address: '255.255.255.255' is not the address of one device",
    ),
    (
        "address is multicast",
        (HEAD + dev("A", 'address = "239.255.255.250"\n')).encode(),
        "devices[0].address: '239.255.255.250' is not the address of one device",
    ),
    (
        "address is unspecified",
        (HEAD + dev("A", 'address = "0.0.0.0"\n')).encode(),
        "devices[0].address: '0.0.0.0' is not the address of one device",
    ),
    (
        "service port 0",
        (HEAD + dev("A", "ports = { http = 0 }\n")).encode(),
        "devices[0].ports.http: 0 is not a port number",
    ),
    (
        "service port 0 with protocol",
        (HEAD + dev("A", 'ports = { sip = "0/udp" }\n')).encode(),
        "devices[0].ports.sip: 0 is not a port number",
    ),
    (
        "p2p server port 0",
        (
            HEAD + '[[profile.p2p_servers]]\nhost = "127.0.0.1"\nport = 0\nprotocol = "udp"\n'
        ).encode(),
        "profile.p2p_servers[0].port: 0 is not a port number",
    ),
    (
        "streams_kbps as a string",
        (HEAD + dev("A", 'streams_kbps = "2048"\n')).encode(),
        "devices[0].streams_kbps: expected an array, got str",
    ),
    (
        "streams_kbps with a string inside",
        (HEAD + dev("A", 'streams_kbps = [2048, "512"]\n')).encode(),
        "devices[0].streams_kbps[1]: must be a positive integer",
    ),
    (
        "profile override: p2p server without host",
        (HEAD + '[[profile.p2p_servers]]\nport = 32100\nprotocol = "udp"\n').encode(),
        "profile.p2p_servers[0].host: is required",
    ),
    (
        "non-UTF-8 bytes",
        HEAD.encode() + b'[[devices]]\nname = "Kamera \xb3\xf3d\xbc"\n',
        "not UTF-8 text (byte 0xb3 on line 5)",
    ),
    (
        "arrays nested 100000 deep",
        (HEAD + "x = " + "[" * 100_000 + "]" * 100_000 + "\n").encode(),
        "nested too deeply",
    ),
    (
        "inline tables nested 5000 deep",
        (HEAD + "x = " + "{a=" * 5000 + "1" + "}" * 5000 + "\n").encode(),
        "nested too deeply",
    ),
    (
        "a 10 MB site file",
        (HEAD + "".join(dev(f"D{i}") for i in range(170_000))).encode(),
        "larger than 2 MB",
    ),
    (
        "a device name of 10 000 characters",
        (HEAD + dev("x" * 10_000)).encode(),
        "devices[0].name: is 10000 characters long; at most 200",
    ),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_site_file_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, expected: str
) -> None:
    site = tmp_path / "site.toml"
    site.write_bytes(data)
    rc = cli.main(["run", "--site", str(site), "--only", "host"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{site}: " in err
    assert expected in err
    assert "Traceback" not in err and "internal error" not in err
    assert len(err) < 500


def test_the_10_mb_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    import time

    from diag.config import ConfigError, load_site

    site = tmp_path / "site.toml"
    site.write_bytes(next(c[1] for c in CASES if c[0] == "a 10 MB site file"))
    assert site.stat().st_size > 10_000_000
    t0 = time.monotonic()
    with pytest.raises(ConfigError):
        load_site(site)
    # Parsing it took 18 s and 700 MB before the limit.
    assert time.monotonic() - t0 < 1.0


def test_a_broken_profile_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "platform.toml").write_bytes(b'name = "\xff"\n')
    site = tmp_path / "site.toml"
    site.write_text('[site]\nname = "T"\nprofile = "platform.toml"\n')
    rc = cli.main(["run", "--site", str(site)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "site.profile" in err and "platform.toml" in err and "not UTF-8" in err


def test_a_hostile_key_in_the_site_file_is_printed_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A quoted TOML key may hold any character; the "unknown field" error quotes it.
    site = tmp_path / "site.toml"
    site.write_text(HEAD + '"\\u001b[2Jx\\u202e" = 1\n')
    rc = cli.main(["run", "--site", str(site)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "\x1b" not in err and "\u202e" not in err
    assert "\\x1b[2Jx\\u202e" in err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_run_deadline_must_be_a_finite_positive_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    # Was: nan/negative were accepted and every check got 0.05 s (or an unbounded run for inf).
    site = tmp_path / "site.toml"
    site.write_text(HEAD)
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--site", str(site), "--deadline", value])
    assert exc.value.code == 2
    assert "--deadline" in capsys.readouterr().err
