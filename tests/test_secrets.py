"""No device password in any output: terminal, JSON, HTML, Prometheus, the monitor's database, logs.

On the lab (healthy, and the NVR's password changed on the device), the site's passwords are random
per lab (``secrets/<dev>.pass``); the NVR's is handed over as ``env:``, the others as ``file:``.
``diag run`` (with ``--grey``), ``diag monitor`` (JSON, HTML, .prom, history), ``diag report``,
``diag history`` and error paths run in the laptop namespace; then every byte they wrote, every
emulator log and every stdout/stderr is searched for each password, its base64 ``user:password``
form (HTTP Basic) and its URL-encoded form. The run must also show that the passwords were used
(the NVR's login accepted, or rejected after the change), or the test would prove nothing.
"""

from __future__ import annotations

import base64
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from labkit import Lab

from diag.model import Credentials, SecretRef

pytestmark = pytest.mark.lab

ENV = "DIAG_TEST_NVR_PASSWORD"


def forms(secret: str) -> list[bytes]:
    """Every spelling of a password that could leak: raw, URL-encoded, HTTP Basic."""
    raw = secret.encode()
    return [
        raw,
        urllib.parse.quote(secret, safe="").encode(),
        base64.b64encode(f"admin:{secret}".encode()),
    ]


def scan(blobs: dict[str, bytes], secrets: list[str]) -> list[str]:
    return [
        f"{where}: {form!r}"
        for where, data in blobs.items()
        for s in secrets
        for form in forms(s)
        if form in data
    ]


@pytest.mark.parametrize("scenario", ["healthy", "device-password-changed"])
def test_no_password_in_any_output(lab_factory: Callable[..., Lab], scenario: str) -> None:
    lab = lab_factory(scenario)
    secrets_dir = lab.state_dir / "secrets"
    secrets = sorted({p.read_text().strip() for p in secrets_dir.glob("*.pass")})
    assert secrets and all(len(s) >= 12 for s in secrets)
    nvr_pw = (secrets_dir / "nvr.pass").read_text().strip()

    site_text = lab.site_path.read_text()
    file_ref = f"file:{secrets_dir / 'nvr.pass'}"
    assert file_ref in site_text
    site = lab.state_dir / "site-env.toml"
    site.write_text(site_text.replace(file_ref, f"env:{ENV}"))
    out = lab.state_dir / "audit"
    out.mkdir()
    db = out / "history.sqlite"
    env = ["env", f"{ENV}={nvr_pw}"]
    outputs: dict[str, bytes] = {}

    def diag(label: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        res = lab.exec(*env, "diag", *args, timeout=timeout)
        outputs[f"{label} stdout"] = res.stdout.encode()
        outputs[f"{label} stderr"] = res.stderr.encode()
        return res

    run = diag(
        "run",
        "run", "--site", str(site), "--json", str(out / "run.json"),
        "--html", str(out / "run.html"), "--grey", "nvr",
    )  # fmt: skip
    assert run.returncode in (0, 1, 3, 5), run.stderr
    mon = diag(
        "monitor",
        "monitor", "--site", str(site), "--db", str(db), "--json", str(out / "mon.json"),
        "--html", str(out / "mon.html"), "--prometheus", str(out / "diag.prom"),
    )  # fmt: skip
    assert mon.stdout.startswith("DIAG "), mon.stdout + mon.stderr
    rep = diag(
        "report",
        "report", "--from", str(out / "run.json"), "--html", str(out / "rep.html"),
        "--history", str(db), "--lang", "pl",
    )  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    assert diag("history", "history", "--db", str(db)).returncode == 0
    assert diag("history-json", "history", "--db", str(db), "--json").returncode == 0
    # Error paths: an unknown --grey name, a file: reference that cannot be read.
    assert diag("grey", "run", "--site", str(site), "--grey", "nosuch").returncode == 2
    broken = lab.state_dir / "site-broken.toml"
    broken.write_text(site_text.replace(file_ref, "file:/nonexistent/pw"))
    res = diag(
        "unreadable", "run", "--site", str(broken), "--only", "heartbeat", "--deadline", "20"
    )
    assert res.returncode in (0, 1, 3, 5), res.stderr

    # The passwords were really used: the NVR's login went through with the env: secret, or was
    # rejected because the device's own password changed.
    import json

    facts = [f for c in json.loads((out / "run.json").read_text())["checks"] for f in c["facts"]]
    auth = {f["target"]: f["value"] for f in facts if f["key"] == "device.auth"}
    assert auth.get("nvr") == ("ok" if scenario == "healthy" else "rejected"), auth
    assert auth.get("ipc1") == "ok", auth

    files = {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {"run.json", "run.html", "mon.json", "mon.html", "diag.prom", "rep.html"} <= {
        Path(p).name for p in files
    }
    assert any(Path(p).name.startswith("history.sqlite") for p in files)
    logs = {str(p): p.read_bytes() for p in (lab.state_dir / "logs").rglob("*") if p.is_file()}
    assert logs, "the lab's emulator logs are part of what is searched"
    leaks = scan({**outputs, **files, **logs}, secrets)
    assert not leaks, "\n".join(leaks)


def test_secret_refs_never_show_their_target_or_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "Zq8-very-secret")
    for ref in (SecretRef(f"env:{ENV}"), SecretRef("file:/etc/diag/nvr.pass")):
        creds = Credentials("admin", ref)
        for text in (repr(ref), str(ref), repr(creds), f"{creds}", f"{ref!r:>40}"):
            assert "Zq8-very-secret" not in text
            assert ENV not in text and "nvr.pass" not in text
    assert SecretRef(f"env:{ENV}").resolve() == "Zq8-very-secret"


def test_a_traceback_through_a_site_shows_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even an unexpected crash (DIAG_DEBUG re-raises) prints only the reference's kind."""
    import traceback

    from diag.config import parse_site

    monkeypatch.setenv(ENV, "Zq8-very-secret")
    site = parse_site(
        {
            "site": {"name": "S", "profile": "loopback"},
            "devices": [
                {"name": "nvr", "kind": "nvr", "added_via": "p2p",
                 "credentials": {"username": "admin", "password": f"env:{ENV}"}},
            ],
        }
    )  # fmt: skip
    try:
        raise RuntimeError(f"crash with {site!r}")
    except RuntimeError:
        text = traceback.format_exc()
    assert "SecretRef(env:…)" in text
    assert "Zq8-very-secret" not in text and ENV not in text
