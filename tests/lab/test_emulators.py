"""The lab's emulators as real processes on loopback: protocols, auth, reload, timing, robustness.

No root needed: every program is started the way the lab starts it (``python -m ...``), bound to
127.0.0.1 on free ports, and stopped with SIGTERM (which must give exit status 0).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diag.lab.emulators import MAGIC, Datagram, make, parse_datagram, parse_hostport
from diag.lab.emulators.pki import make_ca, make_server_cert

LO = "127.0.0.1"
# A second loopback address: the lockout test fails logins from here so the device stays usable
# from 127.0.0.1 for the other tests sharing it.
LO2 = "127.0.0.2"
REPO = Path(__file__).resolve().parents[2]
# Timing of the shared platform/device pair: short so the suite stays fast, the platform's
# timeout 2.5 x the device's interval as in the lab.
HB_INTERVAL = 0.2
HB_TIMEOUT = 0.5


# ------------------------------------------------------------------------------------------------
# Process helpers


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LO, 0))
        return int(s.getsockname()[1])


class Proc:
    """An emulator subprocess with its stderr in a file."""

    def __init__(self, module: str, args: list[str], log: Path) -> None:
        self.log = log
        self.fh = log.open("wb")
        self.started = time.monotonic()
        self.p = subprocess.Popen(
            [sys.executable, "-m", f"diag.lab.emulators.{module}", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.fh,
            cwd=REPO,
        )
        self.ready_after: float | None = None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready " in self.text():
                self.ready_after = time.monotonic() - self.started
                return self.ready_after
            if self.p.poll() is not None:
                pytest.fail(f"emulator exited with {self.p.returncode}:\n{self.text()}")
            time.sleep(0.01)
        pytest.fail(f"emulator not ready after {timeout} s:\n{self.text()}")

    def signal(self, sig: int) -> None:
        self.p.send_signal(sig)

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.fh.close()
        return self.p.returncode

    def alive(self) -> bool:
        return self.p.poll() is None


@contextlib.contextmanager
def running(module: str, args: list[str], log: Path) -> Iterator[Proc]:
    proc = Proc(module, args, log)
    try:
        proc.wait_ready()
        yield proc
    finally:
        rc = proc.stop()
    assert rc == 0, f"{module} did not exit cleanly on SIGTERM ({rc}):\n{proc.text()}"
    assert "Traceback" not in proc.text(), proc.text()


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if pred():
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# ------------------------------------------------------------------------------------------------
# Fixtures: one PKI, one platform and one device shared by the module.


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulators")


@pytest.fixture(scope="module")
def pki(workdir: Path) -> dict[str, Path]:
    ca = make_ca(workdir / "pki")
    cert, key = make_server_cert(workdir / "pki", ca, ["platform.lab.test", LO])
    return {"ca": ca[0], "cert": cert, "key": key}


def platform_args(
    pki: dict[str, Path], ports: dict[str, int], delay: float, timeout: float
) -> list[str]:
    return [
        "--bind",
        LO,
        "--udp-port",
        str(ports["udp"]),
        "--relay-port",
        str(ports["relay"]),
        "--api-port",
        str(ports["api"]),
        "--cert",
        str(pki["cert"]),
        "--key",
        str(pki["key"]),
        "--login-delay",
        str(delay),
        "--heartbeat-timeout",
        str(timeout),
    ]


@pytest.fixture(scope="module")
def platform(pki: dict[str, Path], workdir: Path) -> Iterator[dict[str, Any]]:
    ports = {
        "udp": free_port(socket.SOCK_DGRAM),
        "relay": free_port(),
        "api": free_port(),
    }
    dump = workdir / "platform-state.json"
    args = [*platform_args(pki, ports, 0.05, HB_TIMEOUT), "--state-dump", str(dump)]
    with running("platform", args, workdir / "platform.log") as proc:
        yield {"proc": proc, "dump": dump, **ports}


def lab_ca(pki: dict[str, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki["ca"]))


def api(platform: dict[str, Any], pki: dict[str, Path], path: str) -> httpx.Response:
    with httpx.Client(verify=lab_ca(pki), timeout=5) as client:
        return client.get(f"https://{LO}:{platform['api']}{path}")


def device_config(
    workdir: Path, name: str, platform_port: int, **over: Any
) -> tuple[Path, Path, dict[str, Any]]:
    pw = workdir / f"{name}.pw"
    pw.write_text("s3cret-pass\n", encoding="utf-8")
    cfg: dict[str, Any] = {
        "name": f"Rejestrator {name}",
        "serial": f"SN-{name}",
        "kind": "nvr",
        "channels": 4,
        "model": "DS-7604NI-K1",
        "mac": "00:00:5e:00:53:42",
        "bind": LO,
        "http_port": free_port(),
        "rtsp_port": free_port(),
        "username": "admin",
        "password_file": str(pw),
        "platform": f"{LO}:{platform_port}",
        "heartbeat_interval_s": HB_INTERVAL,
        "p2p_enabled": True,
        "reported": {
            "ip": "198.18.0.20",
            "mask": "255.255.255.0",
            "gateway": "198.18.0.1",
            "dns": ["198.18.0.1", "198.51.100.53"],
        },
        "lockout_s": 1.0,
        **over,
    }
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path, pw, cfg


@pytest.fixture(scope="module")
def device(platform: dict[str, Any], workdir: Path) -> Iterator[dict[str, Any]]:
    path, pw, cfg = device_config(workdir, "shared", platform["udp"])
    with running("device", ["--config", str(path)], workdir / "device.log") as proc:
        yield {"proc": proc, "cfg": cfg, "path": path, "pw": pw}


def isapi(
    dev: dict[str, Any], path: str, password: str = "s3cret-pass", local: str | None = None
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=local) if local else None
    with httpx.Client(
        auth=httpx.DigestAuth("admin", password), timeout=5, transport=transport
    ) as client:
        return client.get(f"http://{LO}:{dev['cfg']['http_port']}{path}")


def p2p_status(dev: dict[str, Any]) -> str:
    r = isapi(dev, "/ISAPI/System/Network/P2P")
    assert r.status_code == 200
    return ET.fromstring(r.content).findtext("status") or ""


# ------------------------------------------------------------------------------------------------
# PKI


def test_pki_issues_a_verifiable_cert_for_names_and_ips(tmp_path: Path) -> None:
    from cryptography import x509

    start = time.monotonic()
    ca = make_ca(tmp_path)
    cert, key = make_server_cert(tmp_path, ca, ["platform.lab.test", "198.51.100.10"])
    elapsed = time.monotonic() - start
    assert elapsed < 0.5, f"PKI took {elapsed:.3f} s"
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["platform.lab.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["198.51.100.10"]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(ca[1].stat().st_mode) == 0o600
    # The CA is reused, not replaced, so earlier certificates stay valid.
    assert make_ca(tmp_path) == ca
    assert x509.load_pem_x509_certificate(ca[0].read_bytes()).subject == loaded.issuer


PKI_CMD = [sys.executable, "-m", "diag.lab.emulators.pki"]


def test_pki_cli(tmp_path: Path) -> None:
    out = subprocess.run(
        [*PKI_CMD, "--out", str(tmp_path), "--san", "api.lab.test", "--ip", LO, "--name", "api"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    paths = json.loads(out.stdout)
    assert Path(paths["cert"]) == tmp_path / "api.crt"
    assert all(Path(p).exists() for p in paths.values())
    bad = subprocess.run(
        [sys.executable, "-m", "diag.lab.emulators.pki", "--out", str(tmp_path), "--ip", "nope"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode == 2 and "--ip" in bad.stderr


# ------------------------------------------------------------------------------------------------
# Platform: UDP, relay, API


def udp_exchange(port: int, data: bytes, timeout: float = 2.0) -> tuple[bytes, tuple[str, int]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        s.settimeout(timeout)
        s.sendto(data, (LO, port))
        reply, _ = s.recvfrom(2048)
        return reply, s.getsockname()


def test_hello_returns_the_callers_address(platform: dict[str, Any]) -> None:
    reply, me = udp_exchange(platform["udp"], b"DIAGP2P1 HELLO n0nce-1")
    assert reply.decode() == f"DIAGP2P1 WELCOME n0nce-1 {LO}:{me[1]}"


def test_heartbeat_without_login_gets_relogin_then_ack_after_login(
    platform: dict[str, Any], pki: dict[str, Path]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        s.settimeout(2)
        port = s.getsockname()[1]
        dst = (LO, platform["udp"])
        s.sendto(b"DIAGP2P1 HB RAW-1 1", dst)
        assert s.recv(512) == b"DIAGP2P1 RELOGIN RAW-1"
        s.sendto(b"DIAGP2P1 LOGIN RAW-1", dst)
        assert s.recv(512) == b"DIAGP2P1 OK RAW-1"
        s.sendto(b"DIAGP2P1 HB RAW-1 7", dst)
        assert s.recv(512).decode() == f"DIAGP2P1 ACK RAW-1 7 {LO}:{port}"
        # the same session from another source port: what a NAT that forgot the mapping does
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
            s2.bind((LO, 0))
            s2.settimeout(2)
            s2.sendto(b"DIAGP2P1 HB RAW-1 8", dst)
            port2 = s2.getsockname()[1]
            assert s2.recv(512).decode() == f"DIAGP2P1 ACK RAW-1 8 {LO}:{port2}"
    got = api(platform, pki, "/api/v1/devices/RAW-1").json()
    assert got["public_address"] == f"{LO}:{port2}"
    assert got["address_changes"] == 1 and got["logins"] == 1


def test_relay_banner_and_echo(platform: dict[str, Any]) -> None:
    with socket.create_connection((LO, platform["relay"]), timeout=3) as s:
        banner = s.recv(100)
        assert banner == b"DIAGP2P1 RELAY READY\r\n"
        s.sendall(b"ping over relay")
        got = b""
        while len(got) < 15:
            got += s.recv(100)
        assert got == b"ping over relay"


def test_relay_echo_is_bounded(platform: dict[str, Any]) -> None:
    from diag.lab.emulators.platform import RELAY_ECHO_LIMIT

    with socket.create_connection((LO, platform["relay"]), timeout=5) as s:
        s.settimeout(5)
        assert s.recv(100).startswith(b"DIAGP2P1 RELAY READY")
        payload = os.urandom(RELAY_ECHO_LIMIT + RELAY_ECHO_LIMIT // 2)

        def sender() -> None:
            with contextlib.suppress(OSError):  # the relay may close before it has all of it
                s.sendall(payload)

        t = threading.Thread(target=sender)
        t.start()
        got = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(1 << 16):
                got += chunk
        t.join(5)
    # echoed up to the bound, then closed
    assert len(got) == RELAY_ECHO_LIMIT
    assert got == payload[:RELAY_ECHO_LIMIT]


def test_api_health_verified_against_the_lab_ca(
    platform: dict[str, Any], pki: dict[str, Path]
) -> None:
    r = api(platform, pki, "/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = api(platform, pki, "/api/v1/devices/NEVER-SEEN")
    assert r.status_code == 404 and r.json() == {"error": "unknown device"}
    # Without the lab CA the certificate must not verify: the API really is HTTPS by that CA.
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=True, timeout=5) as client:
        client.get(f"https://{LO}:{platform['api']}/api/v1/health")


def test_platform_survives_malformed_datagrams(
    platform: dict[str, Any], pki: dict[str, Path]
) -> None:
    junk = [
        b"",
        b"\x00" * 600,
        os.urandom(300),
        b"DIAGP2P1",
        b"DIAGP2P1 LOGIN",
        b"DIAGP2P1 LOGIN a b c",
        b"DIAGP2P1 HB X notanumber",
        b"DIAGP2P1 HELLO \xff\xfe",
        "DIAGP2P1 LOGIN zażółć".encode(),
        b"DIAGP2P1 LOGIN " + b"A" * 400,
        b"DIAGP2P1 WELCOME x y",
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LO, 0))
        s.settimeout(0.3)
        for j in junk:
            s.sendto(j, (LO, platform["udp"]))
        with pytest.raises(TimeoutError):
            s.recv(512)  # malformed datagrams are ignored, never answered
    reply, _ = udp_exchange(platform["udp"], b"DIAGP2P1 HELLO still-alive")
    assert reply.startswith(b"DIAGP2P1 WELCOME still-alive ")
    assert platform["proc"].alive()
    # none of the junk created a device
    serials = [d["serial"] for d in api_devices(platform, pki)]
    assert not any(s.startswith(("a", "zaż", "A")) for s in serials)


def api_devices(platform: dict[str, Any], pki: dict[str, Path]) -> list[dict[str, Any]]:
    r = api(platform, pki, "/api/v1/devices")
    assert r.status_code == 200
    data = r.json()
    assert isinstance(data, list)
    return data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_parser_never_raises_on_bytes(data: bytes) -> None:
    msg = parse_datagram(data)
    if msg is not None:
        assert msg.encode() == data.rstrip(b"\r\n")


token = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["HELLO", "LOGIN", "OK", "RELOGIN", "HB", "ACK", "WELCOME"]),
    st.lists(token, min_size=3, max_size=3),
    st.integers(min_value=0, max_value=2**40),
)
def test_parser_round_trips_valid_messages(verb: str, toks: list[str], seq: int) -> None:
    arity = {"HELLO": 1, "LOGIN": 1, "OK": 1, "RELOGIN": 1, "HB": 2, "ACK": 3, "WELCOME": 2}
    args = toks[: arity[verb]]
    if verb in ("HB", "ACK"):
        args[1] = str(seq)
    data = make(verb, *args)
    assert parse_datagram(data) == Datagram(verb, tuple(args))
    assert parse_datagram(data + b"\r\n") == Datagram(verb, tuple(args))
    # one field too many or too few is not a message
    assert parse_datagram(data + b" extra") is None
    assert parse_datagram(data.replace(MAGIC.encode(), b"DIAGP2P2")) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_http_head_parser_never_crashes(data: bytes) -> None:
    import asyncio

    from diag.lab.emulators import BadRequest, read_head

    async def parse() -> None:
        reader = asyncio.StreamReader(limit=READ_LIMIT)
        reader.feed_data(data)
        reader.feed_eof()
        with contextlib.suppress(BadRequest, EOFError):
            req = await read_head(reader, (LO, 1))
            assert req.method.isupper() and req.path

    asyncio.run(parse())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_auth_param_parser_never_crashes(text: str) -> None:
    from diag.lab.emulators.device import parse_auth_params

    params = parse_auth_params(text)
    assert all(k == k.lower() for k in params)


def test_auth_param_parser_reads_quoted_values() -> None:
    from diag.lab.emulators.device import parse_auth_params

    got = parse_auth_params(r'username="ad\"min", realm="IP Camera", nc=00000001, qop=auth')
    assert got == {"username": 'ad"min', "realm": "IP Camera", "nc": "00000001", "qop": "auth"}


READ_LIMIT = 1 << 16


def test_parse_hostport() -> None:
    assert parse_hostport("198.51.100.10:32100") == ("198.51.100.10", 32100)
    assert parse_hostport("[2001:db8::1]:443") == ("2001:db8::1", 443)
    assert parse_hostport("p2p.lab.test", 32100) == ("p2p.lab.test", 32100)
    for bad in ("", ":80", "host:0", "host:99999", "host:x"):
        with pytest.raises(ValueError):
            parse_hostport(bad)


def line_time(line: str) -> float:
    """Seconds of the day of a log line's timestamp (``2026-...T12:00:01.234Z component ...``)."""
    clock = line.split(" ", 1)[0].split("T", 1)[1].rstrip("Z")
    h, m, sec = clock.split(":")
    return int(h) * 3600 + int(m) * 60 + float(sec)


def test_sequential_login_takes_n_times_the_delay(pki: dict[str, Path], workdir: Path) -> None:
    ports = {"udp": free_port(socket.SOCK_DGRAM), "relay": 0, "api": free_port()}
    delay, n = 0.2, 5
    log = workdir / "platform-seq.log"
    with running("platform", platform_args(pki, ports, delay, 10.0), log) as proc:
        socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((LO, 0))
            s.settimeout(5)
            socks.append(s)
        try:
            start = time.monotonic()
            for i, s in enumerate(socks):
                s.sendto(f"DIAGP2P1 LOGIN SEQ-{i}".encode(), (LO, ports["udp"]))
            # a repeated LOGIN while queued must not take a second slot
            socks[0].sendto(b"DIAGP2P1 LOGIN SEQ-0", (LO, ports["udp"]))
            arrivals = []
            for i, s in enumerate(socks):
                assert s.recv(512) == f"DIAGP2P1 OK SEQ-{i}".encode()
                arrivals.append(time.monotonic() - start)
        finally:
            for s in socks:
                s.close()
        total = arrivals[-1]
        assert n * delay * 0.9 <= total <= n * delay + 1.0, arrivals

        # One at a time: the platform's own log times (not disturbed by this process being slow to
        # read) show each login served at least one delay after the previous one.
        def served_at() -> list[float]:
            lines = proc.text().splitlines()
            return [line_time(line) for line in lines if " platform login " in line]

        wait_until(lambda: len(served_at()) == n, 3, "every login logged")
        served = served_at()
        gaps = [b - a for a, b in itertools.pairwise(served)]
        assert all(g >= delay * 0.95 for g in gaps), gaps
        devs = api_devices(ports, pki)
        assert sorted(d["serial"] for d in devs) == [f"SEQ-{i}" for i in range(n)]
        assert all(d["logins"] == 1 for d in devs)


# ------------------------------------------------------------------------------------------------
# Device: digest auth, ISAPI, RTSP, heartbeats, reload


def test_isapi_endpoints_carry_the_config(device: dict[str, Any]) -> None:
    cfg = device["cfg"]
    info = ET.fromstring(isapi(device, "/ISAPI/System/deviceInfo").content)
    assert info.tag == "DeviceInfo"
    assert info.findtext("deviceName") == cfg["name"]
    assert info.findtext("serialNumber") == cfg["serial"]
    assert info.findtext("model") == cfg["model"]
    assert info.findtext("macAddress") == cfg["mac"]
    assert info.findtext("deviceType") == "NVR"
    assert info.findtext("channels") == "4"
    assert info.findtext("firmwareVersion")
    assert info.findtext("deviceID")

    net = ET.fromstring(isapi(device, "/ISAPI/System/Network/interfaces/1").content)
    assert net.tag == "NetworkInterface"
    assert net.findtext("IPAddress/ipAddress") == "198.18.0.20"
    assert net.findtext("IPAddress/subnetMask") == "255.255.255.0"
    assert net.findtext("IPAddress/DefaultGateway/ipAddress") == "198.18.0.1"
    assert net.findtext("IPAddress/PrimaryDNS/ipAddress") == "198.18.0.1"
    assert net.findtext("IPAddress/SecondaryDNS/ipAddress") == "198.51.100.53"

    wait_until(lambda: p2p_status(device) == "online", 5, "P2P online")
    p2p = ET.fromstring(isapi(device, "/ISAPI/System/Network/P2P").content)
    assert p2p.findtext("enabled") == "true"
    assert p2p.findtext("server") == cfg["platform"]

    assert isapi(device, "/ISAPI/Nope").status_code == 404


def test_digest_challenge_and_wrong_password(device: dict[str, Any]) -> None:
    url = f"http://{LO}:{device['cfg']['http_port']}/ISAPI/System/deviceInfo"
    r = httpx.get(url, timeout=5)
    assert r.status_code == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Digest ")
    assert 'realm="NVR"' in challenge and 'qop="auth"' in challenge and "nonce=" in challenge
    assert "x-lockout" not in r.headers
    assert isapi(device, "/ISAPI/System/deviceInfo", password="wrong").status_code == 401
    assert isapi(device, "/ISAPI/System/deviceInfo").status_code == 200
    # Basic auth is not digest: refused
    assert httpx.get(url, auth=("admin", "s3cret-pass"), timeout=5).status_code == 401


def test_digest_replayed_nonce_count_is_refused(device: dict[str, Any]) -> None:
    port = device["cfg"]["http_port"]
    path = "/ISAPI/System/deviceInfo"
    first = http_raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
    nonce = challenge_params(first)["nonce"]
    auth = digest_header("GET", path, nonce, "NVR", "s3cret-pass", nc="00000001")
    ok = http_raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
    assert ok.startswith("HTTP/1.1 200")
    again = http_raw(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n")
    assert again.startswith("HTTP/1.1 401")
    assert "stale=TRUE" in again


def test_lockout_after_five_failures_then_expiry(device: dict[str, Any]) -> None:
    path = "/ISAPI/System/deviceInfo"
    for i in range(4):
        r = isapi(device, path, password=f"guess{i}", local=LO2)
        assert r.status_code == 401 and "x-lockout" not in r.headers
    r = isapi(device, path, password="guess5", local=LO2)
    assert r.status_code == 401 and r.headers.get("x-lockout") == "1"
    # locked: even the right password is refused, from that client only
    r = isapi(device, path, local=LO2)
    assert r.status_code == 401 and r.headers.get("x-lockout") == "1"
    assert isapi(device, path).status_code == 200
    time.sleep(1.1)  # lockout_s is 1 s in this config
    assert isapi(device, path, local=LO2).status_code == 200


def http_raw(port: int, request: str | bytes, timeout: float = 3.0) -> str:
    data = request.encode("latin-1") if isinstance(request, str) else request
    with socket.create_connection((LO, port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return (head + b"\r\n\r\n" + rest).decode("latin-1")


def challenge_params(response: str) -> dict[str, str]:
    for line in response.split("\r\n"):
        if line.lower().startswith("www-authenticate:"):
            value = line.split(":", 1)[1].strip()
            assert value.startswith("Digest ")
            out = {}
            for part in value[7:].split(","):
                k, _, v = part.strip().partition("=")
                out[k] = v.strip('"')
            return out
    raise AssertionError(f"no challenge in {response!r}")


def digest_header(
    method: str, uri: str, nonce: str, realm: str, password: str, nc: str = "00000001"
) -> str:
    """RFC 7616 MD5 qop=auth, computed independently of the emulator's code."""

    def h(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    cnonce = "0a4f113b"
    ha1 = h(f"admin:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    resp = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="admin", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'qop=auth, nc={nc}, cnonce="{cnonce}", response="{resp}", algorithm=MD5'
    )


def rtsp(port: int, method: str, url: str, cseq: int, extra: str = "") -> str:
    return http_raw(port, f"{method} {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{extra}\r\n")


def test_rtsp_options_and_describe(device: dict[str, Any]) -> None:
    port = device["cfg"]["rtsp_port"]
    url = f"rtsp://{LO}:{port}/Streaming/Channels/101"
    opts = rtsp(port, "OPTIONS", url, 1)
    assert opts.startswith("RTSP/1.0 200 OK") and "CSeq: 1" in opts
    assert "DESCRIBE" in opts
    unauth = rtsp(port, "DESCRIBE", url, 2)
    assert unauth.startswith("RTSP/1.0 401") and "CSeq: 2" in unauth
    nonce = challenge_params(unauth)["nonce"]
    auth = digest_header("DESCRIBE", url, nonce, "NVR", "s3cret-pass")
    desc = rtsp(port, "DESCRIBE", url, 3, f"Authorization: {auth}\r\nAccept: application/sdp\r\n")
    assert desc.startswith("RTSP/1.0 200 OK"), desc
    assert "Content-Type: application/sdp" in desc
    sdp = desc.split("\r\n\r\n", 1)[1]
    assert sdp.startswith("v=0")
    assert sdp.count("m=video") == 4 and sdp.count("H264/90000") == 4
    # a channel the recorder does not have
    url9 = f"rtsp://{LO}:{port}/Streaming/Channels/901"
    auth9 = digest_header("DESCRIBE", url9, nonce, "NVR", "s3cret-pass", nc="00000002")
    assert rtsp(port, "DESCRIBE", url9, 4, f"Authorization: {auth9}\r\n").startswith("RTSP/1.0 404")
    bad = digest_header("DESCRIBE", url, nonce, "NVR", "wrong", nc="00000003")
    assert rtsp(port, "DESCRIBE", url, 5, f"Authorization: {bad}\r\n").startswith("RTSP/1.0 401")
    assert http_raw(port, b"\x16\x03\x01garbage\r\n\r\n").startswith("RTSP/1.0 400")
    assert rtsp(port, "PLAY", url, 6).startswith("RTSP/1.0 405")
    assert device["proc"].alive()


def test_device_heartbeats_make_it_online_at_the_platform_then_offline(
    platform: dict[str, Any], pki: dict[str, Path], workdir: Path
) -> None:
    path, _, cfg = device_config(workdir, "hb", platform["udp"], kind="ipc", channels=1)
    serial = cfg["serial"]

    def status() -> dict[str, Any]:
        r = api(platform, pki, f"/api/v1/devices/{serial}")
        return r.json() if r.status_code == 200 else {"online": None}

    with running("device", ["--config", str(path)], workdir / "device-hb.log"):
        wait_until(lambda: status()["online"] is True, 5, "device online at the platform")
        st_ = status()
        assert st_["logins"] == 1
        assert st_["public_address"].startswith(f"{LO}:")
        assert st_["last_heartbeat_s_ago"] < HB_TIMEOUT
        listed = {d["serial"]: d for d in api_devices(platform, pki)}
        assert listed[serial]["online"] is True
    # the device stopped: it goes offline once its last heartbeat is older than the timeout
    took = wait_until(lambda: status()["online"] is False, 5, "device offline at the platform")
    assert took <= HB_TIMEOUT + 1.5
    assert status()["last_heartbeat_s_ago"] >= HB_TIMEOUT

    def dumped() -> dict[str, Any]:
        data = json.loads(platform["dump"].read_text())
        return {d["serial"]: d for d in data["devices"]}.get(serial, {})

    # the state dump follows, also when nothing arrives any more
    wait_until(lambda: dumped().get("online") is False, 3, "offline in the state dump")
    assert dumped()["logins"] == 1


def test_device_goes_offline_and_logs_in_again_when_the_platform_returns(
    pki: dict[str, Path], workdir: Path
) -> None:
    ports = {"udp": free_port(socket.SOCK_DGRAM), "relay": 0, "api": free_port()}
    args = platform_args(pki, ports, 0.05, HB_TIMEOUT)
    path, _, cfg = device_config(workdir, "relogin", ports["udp"])
    dev = {"cfg": cfg}
    plat = Proc("platform", args, workdir / "platform-relogin-1.log")
    plat.wait_ready()
    try:
        with running("device", ["--config", str(path)], workdir / "device-relogin.log") as proc:
            wait_until(lambda: p2p_status(dev) == "online", 5, "online")
            assert plat.stop() == 0
            # 3 heartbeats (3 x 0.2 s) unanswered -> offline, and the device tries to log in again
            took = wait_until(lambda: p2p_status(dev) == "offline", 5, "offline")
            assert 2 * HB_INTERVAL - 0.05 <= took <= 4 * HB_INTERVAL + 0.6, took
            plat = Proc("platform", args, workdir / "platform-relogin-2.log")
            plat.wait_ready()
            wait_until(lambda: p2p_status(dev) == "online", 5, "online again")
            text = proc.text()
            assert "p2p-relogin" in text and text.count("p2p-login-ok") == 2
    finally:
        plat.stop()


def test_heartbeat_state_machine_without_answers() -> None:
    """Deterministic: 3 unanswered heartbeats -> offline and back to LOGIN; OK/ACK -> online."""
    import asyncio

    from diag.lab.emulators.device import Config, Heartbeat

    async def scenario() -> None:
        cfg = Config(serial="SM1", username="u", password_file="-", platform="127.0.0.1:9")
        hb = Heartbeat(cfg)
        sent: list[bytes] = []
        hb.send = sent.append  # type: ignore[method-assign]
        hb.tick()
        assert sent[-1] == b"DIAGP2P1 LOGIN SM1" and hb.status == "connecting"
        hb.on_reply(b"DIAGP2P1 OK SM1")
        hb.tick()
        assert sent[-1] == b"DIAGP2P1 HB SM1 1" and hb.status == "connecting"
        hb.on_reply(b"DIAGP2P1 ACK SM1 1 198.51.100.7:4000")
        assert hb.status == "online"
        hb.on_reply(b"DIAGP2P1 ACK OTHER 1 198.51.100.7:4000")  # not ours: ignored
        for seq in (2, 3, 4):
            hb.tick()
            assert sent[-1] == f"DIAGP2P1 HB SM1 {seq}".encode()
            assert hb.status == "online"  # 0, 1, 2 unanswered
        hb.tick()  # the third heartbeat went unanswered: offline, log in again
        assert hb.status == "offline" and sent[-1] == b"DIAGP2P1 LOGIN SM1"
        hb.on_reply(b"DIAGP2P1 OK SM1")
        hb.tick()
        hb.on_reply(b"DIAGP2P1 ACK SM1 5 198.51.100.7:4001")
        assert hb.status == "online"
        hb.on_reply(b"DIAGP2P1 RELOGIN SM1")
        assert hb.status == "connecting" and hb.wake.is_set()
        hb.tick()
        assert sent[-1] == b"DIAGP2P1 LOGIN SM1"

    asyncio.run(scenario())


def test_device_is_connecting_until_the_platform_answers(workdir: Path) -> None:
    silent = free_port(socket.SOCK_DGRAM)  # nothing listens there
    path, _, cfg = device_config(workdir, "conn", silent, heartbeat_interval_s=30)
    with running("device", ["--config", str(path)], workdir / "device-conn.log") as proc:
        assert p2p_status({"cfg": cfg}) == "connecting"
        assert "p2p-login-sent" in proc.text()


def test_sighup_reload_flips_p2p_and_password(
    platform: dict[str, Any], pki: dict[str, Path], workdir: Path
) -> None:
    path, pw, cfg = device_config(workdir, "reload", platform["udp"])
    dev = {"cfg": cfg}
    serial = cfg["serial"]

    def online_at_platform() -> bool | None:
        r = api(platform, pki, f"/api/v1/devices/{serial}")
        return r.json()["online"] if r.status_code == 200 else None

    with running("device", ["--config", str(path)], workdir / "device-reload.log") as proc:
        wait_until(lambda: p2p_status(dev) == "online", 5, "online")
        wait_until(lambda: online_at_platform() is True, 5, "online at the platform")

        # P2P off: status disabled, heartbeats stop, the platform sees it go offline
        path.write_text(json.dumps({**cfg, "p2p_enabled": False}))
        proc.signal(signal.SIGHUP)
        wait_until(lambda: p2p_status(dev) == "disabled", 5, "disabled")
        p2p = ET.fromstring(isapi(dev, "/ISAPI/System/Network/P2P").content)
        assert p2p.findtext("enabled") == "false"
        wait_until(lambda: online_at_platform() is False, 5, "offline at the platform")

        # new password: the old one is refused, the new one works
        pw.write_text("n3w-password\n")
        proc.signal(signal.SIGHUP)
        wait_until(
            lambda: isapi(dev, "/ISAPI/System/deviceInfo").status_code == 401, 5, "old pw refused"
        )
        r = isapi(dev, "/ISAPI/System/deviceInfo", password="n3w-password")
        assert r.status_code == 200

        # P2P back on
        path.write_text(json.dumps(cfg))
        proc.signal(signal.SIGHUP)
        wait_until(
            lambda: (
                ET.fromstring(
                    isapi(dev, "/ISAPI/System/Network/P2P", password="n3w-password").content
                ).findtext("status")
                == "online"
            ),
            5,
            "online after re-enabling",
        )

        # a broken config is refused and the running one kept
        path.write_text("{not json")
        proc.signal(signal.SIGHUP)
        wait_until(lambda: "reload-failed" in proc.text(), 5, "reload-failed logged")
        assert proc.alive()
        text = proc.text()
    assert "s3cret-pass" not in text and "n3w-password" not in text  # secrets never logged


def test_device_config_errors_name_the_field(workdir: Path) -> None:
    path, _, cfg = device_config(workdir, "bad", 1)
    for bad, field in (
        ({**cfg, "kind": "dvr"}, "kind"),
        ({**cfg, "channels": "4"}, "channels"),
        ({k: v for k, v in cfg.items() if k != "serial"}, "serial"),
        ({**cfg, "platform": "nohostport"}, "platform"),
        ({**cfg, "p2p_enabled": 1}, "p2p_enabled"),
        ({**cfg, "password_file": str(workdir / "missing.pw")}, "password_file"),
    ):
        path.write_text(json.dumps(bad))
        r = subprocess.run(
            [sys.executable, "-m", "diag.lab.emulators.device", "--config", str(path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=10,
        )
        assert r.returncode == 2, r.stderr
        assert f"{field}:" in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------------
# Garbage over HTTP


GARBAGE = [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),  # a TLS hello on plain HTTP
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 20000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(200)) + b"\r\n",
    b"POST /upload HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "GET /zażółć HTTP/1.1\r\n\r\n".encode(),
    b"\x00\xff" * 100 + b"\r\n\r\n",
]


def assert_survives_garbage(port: int, proc: Proc) -> None:
    for junk in GARBAGE:
        with socket.create_connection((LO, port), timeout=3) as s:
            s.sendall(junk)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_WR)
            reply = b""
            with contextlib.suppress(OSError):
                while chunk := s.recv(65536):
                    reply += chunk
        assert reply == b"" or reply.startswith(b"HTTP/1.1 "), (junk[:40], reply[:80])
        if reply:
            assert int(reply.split(b" ")[1]) in (302, 400, 401, 404, 405, 411), (junk[:40], reply)
    assert proc.alive()


def test_device_http_survives_garbage(device: dict[str, Any]) -> None:
    assert_survives_garbage(device["cfg"]["http_port"], device["proc"])
    assert isapi(device, "/ISAPI/System/deviceInfo").status_code == 200


def test_platform_api_survives_garbage_and_plain_http(
    platform: dict[str, Any], pki: dict[str, Path]
) -> None:
    assert_survives_garbage(platform["api"], platform["proc"])
    # garbage inside a proper TLS session too
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    for junk in GARBAGE[1:5]:
        with (
            socket.create_connection((LO, platform["api"]), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname=LO) as s,
        ):
            s.sendall(junk)
            assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert api(platform, pki, "/api/v1/health").status_code == 200


# ------------------------------------------------------------------------------------------------
# Speed test and captive portal


@pytest.fixture(scope="module")
def speedtest(workdir: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    with running("speedtest", ["--bind", LO, "--port", str(port)], workdir / "st.log") as proc:
        yield {"port": port, "proc": proc}


def test_speedtest_download_throughput(speedtest: dict[str, Any]) -> None:
    n = 200_000_000
    url = f"http://{LO}:{speedtest['port']}/download?bytes={n}"
    got = 0
    start = time.monotonic()
    with httpx.stream("GET", url, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(n)
        for chunk in r.iter_raw(1 << 20):
            got += len(chunk)
    secs = time.monotonic() - start
    mbit = got * 8 / secs / 1e6
    assert got == n
    assert mbit >= 100, f"{mbit:.0f} Mbit/s"
    print(f"download {mbit:.0f} Mbit/s")


def test_speedtest_upload_counts_bytes(speedtest: dict[str, Any]) -> None:
    base = f"http://{LO}:{speedtest['port']}"
    body = os.urandom(1 << 20) * 50
    r = httpx.post(f"{base}/upload", content=body, timeout=30)
    assert r.status_code == 200
    data = r.json()
    assert data["bytes"] == len(body) and data["seconds"] > 0

    def gen() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 100_000

    r = httpx.post(f"{base}/upload", content=gen(), timeout=30)  # chunked transfer coding
    assert r.status_code == 200 and r.json()["bytes"] == 1_000_000


def test_speedtest_ping_probe_and_errors(speedtest: dict[str, Any]) -> None:
    base = f"http://{LO}:{speedtest['port']}"
    with httpx.Client(timeout=5) as c:
        rtts = []
        for _ in range(20):  # keep-alive: one connection, many pings
            t = time.monotonic()
            assert c.get(f"{base}/ping").status_code == 204
            rtts.append(time.monotonic() - t)
        assert sorted(rtts)[10] < 0.2  # answered at once, not queued behind anything
        assert c.get(f"{base}/generate_204").status_code == 204
        assert c.get(f"{base}/download?bytes=abc").status_code == 400
        assert c.get(f"{base}/download?bytes={(1 << 30) + 1}").status_code == 400
        assert c.get(f"{base}/download?bytes=0").content == b""
        assert c.get(f"{base}/upload").status_code == 405
        assert c.get(f"{base}/other").status_code == 404
    assert_survives_garbage(speedtest["port"], speedtest["proc"])


def test_portal_redirects_everything_to_the_login_page(workdir: Path) -> None:
    port = free_port()
    with running("portal", ["--bind", LO, "--port", str(port)], workdir / "portal.log") as proc:
        base = f"http://{LO}:{port}"
        login = f"{base}/login"
        for path in ("/", "/generate_204", "/hotspot-detect.html", "/api/v1/health?x=1"):
            r = httpx.get(base + path, headers={"Host": "connectivitycheck.example"}, timeout=5)
            assert r.status_code == 302 and r.headers["location"] == login
        r = httpx.post(f"{base}/anything", content=b"data", timeout=5)
        assert r.status_code == 302
        page = httpx.get(login, timeout=5)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Pakiet danych wykorzystany" in page.text
        assert "Your data package has been used up" in page.text
        assert_survives_garbage(port, proc)
    port2 = free_port()
    custom = "http://portal.operator.test/topup"
    args = ["--bind", LO, "--port", str(port2), "--login-url", custom]
    with running("portal", args, workdir / "portal2.log"):
        r = httpx.get(f"http://{LO}:{port2}/generate_204", timeout=5)
        assert r.status_code == 302 and r.headers["location"] == custom


def test_sigterm_with_busy_connections_exits_at_once(pki: dict[str, Path], workdir: Path) -> None:
    """The lab stops emulators while clients are mid-transfer: exit at once, cleanly, quietly."""
    st_port = free_port()
    ports = {"udp": free_port(socket.SOCK_DGRAM), "relay": free_port(), "api": free_port()}
    procs = [
        Proc("speedtest", ["--bind", LO, "--port", str(st_port)], workdir / "busy-st.log"),
        Proc("platform", platform_args(pki, ports, 0.05, 1.0), workdir / "busy-plat.log"),
    ]
    socks = []
    try:
        for proc in procs:
            proc.wait_ready()
        slow = socket.create_connection((LO, st_port), timeout=3)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"GET /download?bytes=100000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.recv(100)  # the download runs, and the client reads no more of it
        half = socket.create_connection((LO, st_port), timeout=3)
        half.sendall(b"POST /upload HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nabc")
        relay = socket.create_connection((LO, ports["relay"]), timeout=3)
        api_half = socket.create_connection((LO, ports["api"]), timeout=3)  # no TLS hello
        socks = [slow, half, relay, api_half]
        time.sleep(0.2)
        for proc in procs:
            start = time.monotonic()
            rc = proc.stop()
            took = time.monotonic() - start
            assert rc == 0 and took < 1.5, (rc, took)  # was 2 s+ when it waited for clients
            assert "error" not in proc.text().split(" stopped", 1)[1], proc.text()
    finally:
        for proc in procs:
            proc.stop()
        for s in socks:
            s.close()


def test_emulators_start_fast(workdir: Path) -> None:
    """The lab starts many emulators: each must be listening well within a second."""
    port = free_port()
    with running("speedtest", ["--bind", LO, "--port", str(port)], workdir / "fast.log") as p:
        assert p.ready_after is not None and p.ready_after < 1.0, p.ready_after
