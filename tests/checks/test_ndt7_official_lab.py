"""The lab's ndt7 server checked with M-Lab's official JavaScript client (@m-lab/ndt7 from npm).

node runs the client inside the lab's laptop namespace (lab routes only) against the lab's ndt7
server; diag's bandwidth check measures the same link. The official client must complete both
subtests and its figures (download: the client's mean over the 10 s; upload: the server's
``BytesReceived`` over its ``ElapsedTime``, as M-Lab reports them) agree with diag's within 10 %.
scripts/setup.sh installs the client into the gitignored tools/node/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SRC = ROOT / "tools" / "node" / "node_modules" / "@m-lab" / "ndt7" / "src"
RUNNER = Path(__file__).with_name("ndt7_official.js")
SERVER = "198.51.100.80:8080"


def node_argv() -> list[str]:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/setup.sh installs nodejs)"
    assert (CLIENT_SRC / "ndt7.js").exists(), (
        f"{CLIENT_SRC} missing: scripts/setup.sh installs @m-lab/ndt7 into tools/node"
    )
    import subprocess

    has_ws = subprocess.run(
        [node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"], check=False
    )
    # Node 20 has WebSocket behind a flag; 22 and later have it always.
    return [node] + ([] if has_ws.returncode == 0 else ["--experimental-websocket"])


def test_official_client_passes_and_agrees_with_diag(lab_factory: Any) -> None:
    lab = lab_factory("healthy")
    res = lab.exec(*node_argv(), str(RUNNER), str(CLIENT_SRC), SERVER, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    js = json.loads(res.stdout.strip().splitlines()[-1])
    assert "error" not in js, js
    assert js["rc"] == 0
    run = lab.diag_run(only=["bandwidth"])
    c = next(c for c in run["checks"] if c["id"] == "bandwidth")
    f = {x["key"]: x["value"] for x in c["facts"]}
    assert f["bw.method"] == "ndt7"
    print(f"official: {js}; diag: down {f['bw.download_mbps']} up {f['bw.upload_mbps']}")
    assert js["download_client_mbps"] == pytest.approx(f["bw.download_mbps"], rel=0.1)
    assert js["download_server_mbps"] == pytest.approx(f["bw.download_mbps"], rel=0.1)
    assert js["upload_server_mbps"] == pytest.approx(f["bw.upload_mbps"], rel=0.1)
    # Both are the lab's 50/20 Mbit/s link less TCP/IP overhead.
    assert 0.85 * 50 <= js["download_client_mbps"] <= 1.02 * 50
    assert 0.85 * 20 <= js["upload_server_mbps"] <= 1.02 * 20
