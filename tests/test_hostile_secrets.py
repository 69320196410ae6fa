"""Secrets that cannot be read are a clear per-device finding, never a crash, a hang, a silent
"no credentials" or a byte of the secret in any output.

Cases: a cp1250 password file (Windows Notepad, "hasło"), a missing file, a FIFO, a character
device, a directory, a path through a file, an oversized file, an empty one, an unset ``env:``
variable. Then the whole way through ``diag run`` and ``diag monitor`` against the real device
emulator on loopback: the device is ``unknown`` with "credentials for … cannot be read: …" in
the terminal, the JSON, the HTML and the monitor's line, and no output holds the password, any
4-character piece of it, or any of its bytes written as an escape.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from device_emulator import Emulator, free_port

from diag.model import SecretRef
from diag.secrets import MAX_SECRET_BYTES, Secret, read_secret

# What a Windows laptop writes for a Polish password: cp1250, not UTF-8.
CP1250_PASSWORD = "Zażółć-hasło-x9Q"
ROOT = Path(__file__).resolve().parents[1]


def read_quickly(ref: str) -> Secret:
    """read_secret in a thread: a FIFO that blocked would fail the test instead of hanging it."""
    out: list[Secret] = []
    t = threading.Thread(target=lambda: out.append(read_secret(ref)), daemon=True)
    t.start()
    t.join(5.0)
    assert out, f"reading {ref} blocked"
    return out[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    cp = tmp_path / "cp1250.pass"
    cp.write_bytes(CP1250_PASSWORD.encode("cp1250"))
    fifo = tmp_path / "fifo.pass"
    os.mkfifo(fifo)
    big = tmp_path / "big.pass"
    big.write_bytes(b"x" * (MAX_SECRET_BYTES + 1))
    empty = tmp_path / "empty.pass"
    empty.write_text("  \n")
    bom = tmp_path / "bom.pass"
    bom.write_bytes("\ufeffhasło-ok\r\n".encode())
    plain = tmp_path / "plain"
    plain.write_text("x")
    return {
        "not-utf8": cp,
        "missing": tmp_path / "nope.pass",
        "not-regular": fifo,
        "too-large": big,
        "empty": empty,
        "bom": bom,
        "through-a-file": plain / "pw",
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not-utf8", "not-utf8"),
        ("missing", "missing"),
        ("not-regular", "not-regular"),
        ("too-large", "too-large"),
        ("empty", "empty"),
        ("through-a-file", "unreadable"),
    ],
)
def test_every_unreadable_file_is_one_reason_word(
    files: dict[str, Path], name: str, reason: str
) -> None:
    s = read_quickly(f"file:{files[name]}")
    assert s.value is None and s.error == reason
    assert CP1250_PASSWORD not in repr(s) and "0x" not in repr(s)


def test_devices_and_directories_are_not_regular(tmp_path: Path) -> None:
    for path in ("/dev/zero", "/dev/null", str(tmp_path)):
        s = read_quickly(f"file:{path}")
        assert s.error == "not-regular", path


def test_env_and_bom(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIAG_NO_SUCH_SECRET", raising=False)
    assert read_secret("env:DIAG_NO_SUCH_SECRET").error == "env-unset"
    monkeypatch.setenv("DIAG_EMPTY_SECRET", "")
    assert read_secret("env:DIAG_EMPTY_SECRET").error == "empty"
    assert read_secret(f"file:{files['bom']}").value == "hasło-ok"
    assert SecretRef(f"file:{files['bom']}").resolve() == "hasło-ok"
    assert repr(read_secret(f"file:{files['bom']}")) == "Secret(…)"
    assert read_secret("ldap:x").error == "bad-reference"


def leaks(text: str, secret: str) -> list[str]:
    """Every way ``secret`` could show in ``text``: whole, any 4-character piece, its bytes as
    escapes (how a decode error would quote them)."""
    found = [secret] if secret in text else []
    found += [secret[i : i + 4] for i in range(len(secret) - 3) if secret[i : i + 4] in text]
    for b in secret.encode("cp1250") + secret.encode("utf-8"):
        if b >= 0x80:
            for form in (f"0x{b:02x}", f"\\x{b:02x}"):
                if form in text:
                    found.append(form)
    if "can't decode" in text or "in position" in text:
        found.append("a decode error's text")
    return found


SITE = """
[site]
name = "Secrets site"
profile = "loopback"

[network]
site_resolver = "127.0.0.1:9"

[[devices]]
name = "cam-cp1250"
kind = "ipc"
added_via = "p2p"
address = "127.0.0.1"
ports = {{ http = {port}, rtsp = {rtsp} }}
credentials = {{ username = "admin", password = "file:{pw}" }}
api = "isapi"
"""


@pytest.mark.parametrize("case", ["not-utf8", "not-regular", "missing", "env-unset"])
def test_run_and_monitor_name_the_finding_and_leak_nothing(
    files: dict[str, Path], tmp_path: Path, case: str
) -> None:
    cam = Emulator(tmp_path)
    try:
        ref = "env:DIAG_SECRET_UNSET_HERE" if case == "env-unset" else f"file:{files[case]}"
        site = tmp_path / "site.toml"
        text = SITE.format(port=cam.port, rtsp=free_port(), pw="X").replace("file:X", ref)
        site.write_text(text, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "DIAG_SECRET_UNSET_HERE"}
        outs: list[str] = []
        run = subprocess.run(
            [sys.executable, "-m", "diag.cli", "run", "--site", str(site), "--only", "heartbeat",
             "--json", str(tmp_path / "run.json"), "--html", str(tmp_path / "run.html")],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        mon = subprocess.run(
            [sys.executable, "-m", "diag.cli", "monitor", "--site", str(site), "--only",
             "heartbeat", "--db", str(tmp_path / "h.sqlite"), "--prometheus",
             str(tmp_path / "diag.prom"), "--lang", "pl"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        outs += [run.stdout, run.stderr, mon.stdout, mon.stderr]
        outs += [(tmp_path / n).read_text() for n in ("run.json", "run.html", "diag.prom")]
        outs.append((tmp_path / "h.sqlite").read_bytes().decode("latin-1"))
    finally:
        outs.append(cam.stop())
    words = {
        "not-utf8": "file is not UTF-8 text",
        "not-regular": "not a regular file",
        "missing": "file missing",
        "env-unset": "environment variable not set",
    }[case]
    assert run.returncode == 5, run.stdout + run.stderr  # unknown: never 0
    assert f"credentials for cam-cp1250 cannot be read: {words}" in run.stdout
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["devices"][0]["state"] == "unknown"
    assert any(words in u for u in data["devices"][0]["unmeasured"])
    assert words in (tmp_path / "run.html").read_text()
    # Only device, not measured: UNKNOWN; the line names the finding (in Polish here).
    assert mon.returncode == 3 and mon.stdout.startswith("DIAG UNKNOWN - ")
    assert "nie można odczytać danych logowania do cam-cp1250" in mon.stdout
    for text in outs:
        assert leaks(text, CP1250_PASSWORD) == []
        assert "Traceback" not in text


def test_a_fifo_site_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "site.toml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli", "run", "--site", str(fifo)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert time.monotonic() - t0 < 20
    assert res.returncode == 2
    assert "not a regular file" in res.stderr and str(fifo) in res.stderr


def test_a_site_file_with_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    from diag.config import load_site

    site = tmp_path / "site.toml"
    text = (ROOT / "examples" / "loopback-site.toml").read_text(encoding="utf-8")
    site.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert load_site(site).name == "Loopback lab"
