"""The diag command: checks listing, a run on loopback fakes, exit codes, secrets kept out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeDNS, HelloResponder, HttpsServer, TcpListener, answer, make_ca, make_cert

from diag import cli
from diag.model import Verdict
from diag.reports.json import validate

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "loopback-site.toml"
MINE = "host,dns,p2p"


def loopback_site_text(
    sdns: FakeDNS,
    idns: FakeDNS,
    hello: HelloResponder,
    tcp: TcpListener,
    https: HttpsServer,
    ca: Path,
) -> str:
    """The loopback example with its ports rewritten to the running fakes' ports."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (
        ('"127.0.0.1:53535"', f'"{sdns.address}"'),
        ('"127.0.0.1:53536"', f'"{idns.address}"'),
        ("port = 32100", f"port = {hello.port}"),
        ("port = 34443", f"port = {tcp.port}"),
        ("port = 38443", f"port = {https.port}"),
        ("[profile]\n", f'[profile]\nca_file = "{ca}"\n'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def loopback_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The loopback example site with every platform server and resolver running as a fake."""
    d = tmp_path_factory.mktemp("loopback")
    ca = make_ca(d)
    cert = make_cert(d, ("localhost",), ("127.0.0.1",), ca)
    names = {"p2p.loopback.test": answer("127.0.0.1"), "relay.loopback.test": answer("127.0.0.1")}
    with (
        FakeDNS(names) as sdns,
        FakeDNS(names) as idns,
        HelloResponder() as hello,
        TcpListener() as tcp,
        HttpsServer(cert) as https,
    ):
        path = d / "site.toml"
        path.write_text(loopback_site_text(sdns, idns, hello, tcp, https, ca.cert))
        yield path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_checks_json_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "checks", "--json")
    assert rc == 0
    data = json.loads(out)
    by_id = {c["id"]: c for c in data["checks"]}
    assert {"host", "dns", "p2p"} <= set(by_id)
    assert by_id["dns"]["needs"] == ["profile.dns_names"]
    assert by_id["p2p"]["needs"] == ["profile.p2p_servers"]
    assert set(by_id["host"]) == {"id", "title", "needs", "depends_on", "timeout_s"}


def test_checks_plain_listing(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "checks")
    assert rc == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "needs: profile.dns_names" in lines["dns"]
    assert "Laptop" in lines["host"]


def test_run_on_loopback_fakes_writes_a_valid_run(
    capsys: pytest.CaptureFixture[str], loopback_site: Path, tmp_path: Path
) -> None:
    out_json = tmp_path / "run.json"
    rc, out, _ = run_cli(
        capsys, "run", "--site", str(loopback_site), "--only", MINE, "--json", str(out_json)
    )
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert validate(data) == []
    checks = {c["id"]: c for c in data["checks"]}
    assert set(checks) == {"host", "dns", "p2p"}
    assert checks["dns"]["status"] == "ok", checks["dns"]["summary"]
    assert checks["p2p"]["status"] == "ok", checks["p2p"]["summary"]
    reach = [f for f in checks["p2p"]["facts"] if f["key"] == "p2p.reachable"]
    assert [f["target"] for f in reach] == ["P2P login", "P2P relay", "Status API"]
    assert all(f["value"] is True for f in reach)
    assert [d["name"] for d in data["devices"]] == ["NVR loopback", "Camera loopback"]
    assert rc == cli.STATE_EXIT[data["site"]["worst_state"]]
    # The table: devices with state and icon, then each check with its status and summary.
    assert "Loopback lab" in out
    assert out.index("Device") < out.index("NVR loopback") < out.index("Check")
    for cid in ("dns", "host", "p2p"):
        assert any(line.startswith(cid) for line in out.splitlines())
    assert "all 3 platform servers reachable" in out
    assert f"JSON written to {out_json}" in out


def test_run_in_polish(capsys: pytest.CaptureFixture[str], loopback_site: Path) -> None:
    rc, out, _ = run_cli(
        capsys, "run", "--site", str(loopback_site), "--only", MINE, "--lang", "pl"
    )
    # Without heartbeat in --only nothing measured the devices: unknown, exit 5 (never 0).
    assert rc == cli.EXIT_UNKNOWN
    assert "stan nieznany" in out and "niezmierzone: test heartbeat nie został uruchomiony" in out
    assert "Urządzenie" in out and "Stan" in out
    assert "osiągalne wszystkie serwery platformy (3)" in out
    assert "Obiekt: Loopback lab" in out and "Wynik" in out


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ((), 0),
        (("online", "online"), 0),
        (("online", "degraded"), 1),
        (("degraded", "offline", "online"), 3),
    ],
)
def test_exit_code_is_the_worst_device_state(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    states: tuple[str, ...],
    code: int,
) -> None:
    def fake_diagnose(site: Any, results: Any, **_: Any) -> Any:
        icon = {"offline": "grey"}
        verdicts = tuple(
            Verdict(f"d{i}", "ipc", "p2p", s, icon.get(s, "colour"))  # type: ignore[arg-type]
            for i, s in enumerate(states)
        )
        return verdicts, ()

    monkeypatch.setattr("diag.diagnosis.diagnose", fake_diagnose)
    rc, _, _ = run_cli(capsys, "run", "--site", str(EXAMPLE), "--only", "host")
    assert rc == code


def test_bad_enum_exits_2_naming_file_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('added_via = "p2p"\n', 'added_via = "bluetooth"\n'))
    rc, _, err = run_cli(capsys, "run", "--site", str(bad))
    assert rc == 2
    assert f"{bad}: devices[1].added_via: 'bluetooth' is not one of" in err


def test_missing_site_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "run", "--site", str(tmp_path / "none.toml"))
    assert rc == 2 and "cannot read" in err


def test_unknown_check_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, "run", "--site", str(EXAMPLE), "--only", "host,warp-drive")
    assert rc == 2 and "warp-drive" in err


def test_unknown_grey_device_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, "run", "--site", str(EXAMPLE), "--grey", "Nope", "--only", "host")
    assert rc == 2 and "--grey" in err


def test_unwritable_json_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "run.json"
    rc, _, err = run_cli(
        capsys, "run", "--site", str(EXAMPLE), "--only", "host", "--json", str(target)
    )
    assert rc == 2 and "cannot write" in err


def test_internal_error_exits_4(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*a: Any, **k: Any) -> Any:
        raise RuntimeError("wires crossed")

    monkeypatch.setattr("diag.runner.execute", broken)
    rc, _, err = run_cli(capsys, "run", "--site", str(EXAMPLE), "--only", "host")
    assert rc == 4
    assert "internal error: RuntimeError: wires crossed" in err


SECRET = "Zebra-s3cret!pw#77"


def test_secrets_never_printed_and_unresolvable_refs_do_not_crash(
    loopback_site: Path, tmp_path: Path
) -> None:
    """A run with a real password in the environment and one reference that resolves to nothing.

    Only the core's own checks: other checks open raw sockets as root, which the network guard
    forbids in the host namespace; their own tests cover their secrets.
    """
    site = tmp_path / "site.toml"
    site.write_text(
        loopback_site.read_text().replace(
            'address = "127.0.0.11"\n',
            'address = "127.0.0.11"\n'
            'credentials = { username = "admin", password = "env:DIAG_LOOPBACK_UNSET_PW" }\n',
        )
    )
    env = dict(os.environ, DIAG_LOOPBACK_NVR_PASSWORD=SECRET)
    env.pop("DIAG_LOOPBACK_UNSET_PW", None)
    out_json = tmp_path / "run.json"
    proc = subprocess.run(
        [sys.executable, "-m", "diag.cli", "run", "--site", str(site), "--json", str(out_json),
         "--only", MINE, "--deadline", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode in (0, 1, 3, cli.EXIT_UNKNOWN), proc.stderr
    written = out_json.read_text()
    assert validate(json.loads(written)) == []
    for text in (proc.stdout, proc.stderr, written):
        assert SECRET not in text


def test_inline_password_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('"env:DIAG_LOOPBACK_NVR_PASSWORD"', f'"{SECRET}"'))
    rc, out, err = run_cli(capsys, "run", "--site", str(bad))
    assert rc == 2
    assert "devices[0].credentials.password" in err
    assert SECRET not in out + err
