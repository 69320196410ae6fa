"""Heartbeat and vlan on real sockets in a small LAN of network namespaces built here (root).

Independent of the full site lab: a bridge, a laptop, devices that answer, one that is off, two
hosts sharing an address, one behind a lossy filter (nftables drops 30 % of echo requests: the
lab kernel has no netem), a host missing from the config, and a "device in VLAN 20" that only
speaks 802.1Q-tagged (the kernel here has no VLAN filtering: a packet socket plays the tagged
device) plus an LLDP sender on the switch port facing the laptop. Everything runs inside the
namespaces; the namespaces are removed at the end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

PY = sys.executable
LAPTOP_MAC = "02:00:5e:00:53:64"

TAGGED_DEVICE = r"""
import socket, struct, sys, time
sys.path.insert(0, {root!r})
from diag.net import addr as net_addr
from diag.net import arp as net_arp
from diag.net import icmp as net_icmp
from diag.net import ifaces as net_ifaces
from diag.net import l2 as net_l2
mac = open("/sys/class/net/eth0/address").read().strip()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(net_l2.ETH_P_ALL))
s.setsockopt(net_l2.SOL_PACKET, net_l2.PACKET_AUXDATA, 1)
s.bind(("eth0", net_l2.ETH_P_ALL))
me, vlan, chatty = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "chatty"
next_hello = 0.0 if chatty else float("inf")
while True:
    if time.monotonic() >= next_hello:
        # A camera in VLAN 20 keeps asking for its gateway (nobody answers it there).
        s.send(net_arp.build_arp_request(net_addr.mac_bytes(mac), me, "198.18.0.1", vlan))
        next_hello = time.monotonic() + 0.5
    for frame, vid, _ in net_l2.recv_frames(s, 0.05):
        l2 = net_l2.parse_frame(frame, vid)
        if l2 is None or l2.vid != vlan or l2.ethertype != net_l2.ETH_P_ARP:
            continue
        a = net_arp.parse_arp(l2.payload)
        if a is None or a.op != 1 or a.target_ip != me:
            continue
        peer = net_addr.mac_bytes(a.sender_mac)
        eth = peer + net_addr.mac_bytes(mac) + struct.pack("!HHH", 0x8100, vlan, 0x0806)
        body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, net_addr.mac_bytes(mac),
                           socket.inet_aton(me), peer, socket.inet_aton(a.sender_ip))
        s.send(eth + body)
"""

LLDP_SENDER = r"""
import socket, struct, time
def tlv(t, v): return struct.pack("!H", (t << 9) | len(v)) + v
mac = bytes.fromhex(open("/sys/class/net/{port}/address").read().strip().replace(":", ""))
oui = b"\x00\x80\xc2"
pdu = (tlv(1, b"\x04" + mac) + tlv(2, b"\x05swp1") + tlv(3, b"\x00\x78") + tlv(5, b"lab-switch")
       + tlv(127, oui + b"\x01" + struct.pack("!H", 1))
       + tlv(127, oui + b"\x03" + struct.pack("!HB", 20, 7) + b"cameras") + tlv(0, b""))
frame = bytes.fromhex("0180c200000e") + mac + b"\x88\xcc" + pdu
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("{port}", 0))
while True:
    s.send(frame)
    time.sleep(0.3)
"""

SITE = """
[site]
name = "mini lan"
profile = "loopback"
[network]
gateway = "198.18.0.1"
interface = "eth0"
[[devices]]
name = "web"
kind = "nvr"
added_via = "p2p"
address = "198.18.0.21"
ports = {{ http = 80 }}
[[devices]]
name = "twin"
kind = "ipc"
added_via = "p2p"
address = "198.18.0.22"
ports = {{ rtsp = 554 }}
[[devices]]
name = "vlan20"
kind = "ipc"
added_via = "p2p"
address = "198.18.0.23"
ports = {{ http = 80 }}
[[devices]]
name = "vlan30"
kind = "ipc"
added_via = "p2p"
address = "198.18.0.26"
ports = {{ http = 80 }}
[[devices]]
name = "off"
kind = "ipc"
added_via = "p2p"
address = "198.18.0.24"
ports = {{ http = 80 }}
[[devices]]
name = "radio"
kind = "ipc"
added_via = "p2p"
address = "198.18.0.25"
ports = {{ rtsp = 554 }}
"""

RUN = r"""
import asyncio, json, sys, time
from diag.config import load_site
from diag.checks.base import World, registry_from
from diag.checks.heartbeat import HeartbeatCheck
from diag.checks.vlan import VlanCheck
from diag.runner import Runner, plan
site = load_site(sys.argv[1])
checks = [c for c in (HeartbeatCheck(), VlanCheck()) if c.id in sys.argv[2].split(",")]
reg = registry_from(*checks)
root = sys.argv[3] == "root" if len(sys.argv) > 3 else True
p = plan(site, reg, [c.id for c in checks], root=root)
world = World(is_root=lambda: root)
res = asyncio.run(Runner(reg, world=world, deadline_s=20).run(site, p))
out = {r.check_id: {"status": r.status, "duration_s": r.duration_s,
       "summary": r.summary.render("en"),
       "facts": [[f.key, f.target, f.value] for f in r.facts]} for r in res}
print(json.dumps(out))
"""


@dataclass
class MiniLan:
    prefix: str
    tmp: Path
    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def sh(self, *cmd: str, ns: str | None = None) -> str:
        full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
        return subprocess.run(full, check=True, capture_output=True, text=True, timeout=30).stdout

    def bg(self, ns: str, *cmd: str) -> None:
        self.procs.append(
            subprocess.Popen(
                ["ip", "netns", "exec", ns, *cmd],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def python(self, ns: str, code: str, *args: str, timeout: float = 60) -> str:
        script = self.tmp / f"s-{uuid.uuid4().hex[:6]}.py"
        script.write_text(code, encoding="utf-8")
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns(ns), PY, str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(Path(__file__).parents[2]),
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(5)
        for n in self.namespaces:
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale() -> None:
    """Removes mini-LANs (and their processes) left by a test run that was killed outright."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        parts = name.split("-")
        if len(parts) < 3 or parts[0] != "diagt" or not parts[1].isdigit():
            continue
        if _alive(int(parts[1])):
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@pytest.fixture(scope="module")
def minilan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLan]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    reap_stale()
    # The pid in the name lets a later run tell a leftover of a killed run from a live one.
    lan_ = MiniLan(
        f"diagt-{os.getpid()}-{uuid.uuid4().hex[:4]}", tmp_path_factory.mktemp("minilan")
    )
    try:
        sw = lan_.ns("sw")
        hosts = {
            "laptop": "198.18.0.100",
            "d1": "198.18.0.21",
            "d2": "198.18.0.22",
            "c2": "198.18.0.22",
            "v20": None,
            "v30": None,
            "d5": "198.18.0.25",
            "u": "198.18.0.50",
        }
        for role in ["sw", *hosts]:
            lan_.sh("ip", "netns", "add", lan_.ns(role))
            lan_.namespaces.append(lan_.ns(role))
        lan_.sh("ip", "link", "add", "br0", "type", "bridge", ns=sw)
        lan_.sh("ip", "link", "set", "br0", "up", ns=sw)
        for i, (role, ip) in enumerate(hosts.items()):
            ns = lan_.ns(role)
            port = f"p-{role}"
            lan_.sh("ip", "link", "add", port, "netns", sw, "type", "veth", "peer", "name", "eth0",
                    "netns", ns)  # fmt: skip
            lan_.sh("ip", "link", "set", port, "master", "br0", "up", ns=sw)
            if role == "laptop":
                lan_.sh("ip", "link", "set", "eth0", "address", LAPTOP_MAC, ns=ns)
            else:
                lan_.sh("ip", "link", "set", "eth0", "address", f"02:00:5e:00:54:{i:02x}", ns=ns)
            lan_.sh("ip", "link", "set", "lo", "up", ns=ns)
            lan_.sh("ip", "link", "set", "eth0", "up", ns=ns)
            if ip:
                lan_.sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
        lan_.bg(lan_.ns("d1"), PY, "-m", "http.server", "80", "--bind", "198.18.0.21")
        lan_.sh(
            "nft",
            "add table inet t; add chain inet t in { type filter hook input priority 0; }; "
            "add rule inet t in icmp type echo-request numgen random mod 100 < 30 drop",
            ns=lan_.ns("d5"),
        )
        root = str(Path(__file__).parents[2])
        script = lan_.tmp / "tagged.py"
        script.write_text(TAGGED_DEVICE.format(root=root), encoding="utf-8")
        lan_.bg(lan_.ns("v20"), PY, str(script), "198.18.0.23", "20", "chatty")
        # A quiet device in VLAN 30: it only answers, so only the VLAN id scan can find it.
        lan_.bg(lan_.ns("v30"), PY, str(script), "198.18.0.26", "30", "quiet")
        lldp = lan_.tmp / "lldp.py"
        lldp.write_text(LLDP_SENDER.replace("{port}", "p-laptop"), encoding="utf-8")
        lan_.bg(sw, PY, str(lldp))
        (lan_.tmp / "site.toml").write_text(SITE.format(), encoding="utf-8")
        # The HTTP server must be listening before the checks run.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                ["ip", "netns", "exec", lan_.ns("d1"), "ss", "-ltn"], capture_output=True, text=True
            )
            if "198.18.0.21:80" in probe.stdout:
                break
            time.sleep(0.1)
        yield lan_
    finally:
        lan_.close()


@pytest.fixture(scope="module")
def run_both(minilan: MiniLan) -> dict[str, Any]:
    out = minilan.python("laptop", RUN, str(minilan.tmp / "site.toml"), "heartbeat,vlan")
    return dict(json.loads(out))


def facts(result: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(k, t): v for k, t, v in result["facts"]}


def test_heartbeat_sees_each_device_as_it_is(run_both: dict[str, Any]) -> None:
    hb = run_both["heartbeat"]
    f = facts(hb)
    assert f[("device.reachable", "web")] is True
    assert f[("device.ports", "web")] == {"http": True}
    assert f[("device.auth", "web")] == "no-credentials"
    assert f[("device.arp_macs", "web")] == ["02:00:5e:00:54:01"]
    assert f[("device.ip_conflict", "web")] is False
    assert f[("device.icmp_loss_pct", "web")] == 0.0
    assert 0 <= f[("device.rtt_ms", "web")] < 50

    assert f[("device.ip_conflict", "twin")] is True
    assert sorted(f[("device.arp_macs", "twin")]) == ["02:00:5e:00:54:02", "02:00:5e:00:54:03"]

    assert f[("device.reachable", "off")] is False
    assert f[("device.arp_macs", "off")] == []
    assert f[("device.icmp_loss_pct", "off")] == 100.0

    # Only a tagged frame answers for it: not reachable from the laptop's VLAN.
    assert f[("device.reachable", "vlan20")] is False

    assert f[("device.reachable", "radio")] is True
    assert 0 < f[("device.icmp_loss_pct", "radio")] < 100

    assert f[("lan.unknown_hosts", "")] == [{"ip": "198.18.0.50", "mac": "02:00:5e:00:54:07"}]
    assert f[("lan.swept", "")] == ["198.18.0.0/24"]
    assert f[("lan.icmp", "")] == "raw"
    assert hb["status"] == "fail"
    # One /24 sweep (two passes), 20 pings and the TCP probes, all at once.
    assert hb["duration_s"] < 3.0, hb["duration_s"]


def test_vlan_sees_the_tagged_device_and_the_lldp_neighbour(run_both: dict[str, Any]) -> None:
    v = run_both["vlan"]
    f = facts(v)
    assert f[("vlan.tags_seen", "")] == [
        {"vid": 20, "macs": ["02:00:5e:00:54:04"]},
        {"vid": 30, "macs": ["02:00:5e:00:54:05"]},
    ]
    assert f[("vlan.device_vid", "vlan20")] == 20
    assert f[("vlan.device_vid", "vlan30")] == 30  # found by the VLAN id scan alone
    assert f[("vlan.device_l2_unreachable", "vlan30")] is True
    assert f[("vlan.device_l2_unreachable", "vlan20")] is True
    assert f[("vlan.device_l2_unreachable", "web")] is False
    assert f[("vlan.device_l2_unreachable", "off")] is True
    assert ("vlan.device_vid", "off") not in f
    n = f[("lldp.neighbor", "")]
    assert n["system"] == "lab-switch" and n["port"] == "swp1"
    assert n["pvid"] == 1 and n["vlans"] == [20] and n["vlan_names"] == {"20": "cameras"}
    assert v["status"] == "warn"
    assert v["duration_s"] < 3.0


def test_arp_scan_alone_finds_every_host(minilan: MiniLan) -> None:
    code = textwrap.dedent(
        """
        import json
        from diag.net import addr as net_addr
        from diag.net import arp as net_arp
        from diag.net import icmp as net_icmp
        from diag.net import ifaces as net_ifaces
        from diag.net import l2 as net_l2
        i = next(x for x in net_ifaces.local_interfaces() if x.name == "eth0")
        targets, swept, _ = net_ifaces.sweep_targets(i, [])
        scan = net_arp.arp_scan(i, targets)
        print(json.dumps({"found": sorted(scan.by_ip()), "s": scan.duration_s, "sent": scan.sent}))
        """
    )
    out = json.loads(minilan.python("laptop", code))
    assert out["found"] == [
        "198.18.0.21",
        "198.18.0.22",
        "198.18.0.25",
        "198.18.0.50",
    ]
    # 253 asked, 249 silent asked again.
    assert out["sent"] == 253 + 249
    assert out["s"] < 1.5


def test_unprivileged_icmp_fallback(minilan: MiniLan) -> None:
    minilan.sh("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647", ns=minilan.ns("laptop"))
    code = textwrap.dedent(
        """
        import asyncio, json
        from diag.net import addr as net_addr
        from diag.net import arp as net_arp
        from diag.net import icmp as net_icmp
        from diag.net import ifaces as net_ifaces
        from diag.net import l2 as net_l2
        s = asyncio.run(net_icmp.ping("198.18.0.21", 5, 0.02, 0.5, root=False))
        print(json.dumps([s.mode, s.loss_pct, s.rtt_ms]))
        """
    )
    mode, loss, rtt = json.loads(minilan.python("laptop", code))
    assert mode == "unprivileged" and loss == 0.0 and rtt is not None


def test_without_root_heartbeat_still_runs_tcp_and_unprivileged_icmp(minilan: MiniLan) -> None:
    minilan.sh("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647", ns=minilan.ns("laptop"))
    out = json.loads(
        minilan.python("laptop", RUN, str(minilan.tmp / "site.toml"), "heartbeat,vlan", "user")
    )
    hb, v = out["heartbeat"], out["vlan"]
    f = facts(hb)
    assert f[("lan.arp_skipped", "")] == "needs-root"
    assert f[("lan.icmp", "")] == "unprivileged"
    assert ("device.arp_macs", "web") not in f and ("lan.unknown_hosts", "") not in f
    assert f[("device.ports", "web")] == {"http": True}
    assert f[("device.icmp_loss_pct", "web")] == 0.0
    assert f[("device.reachable", "web")] is True
    assert f[("device.reachable", "off")] is False
    assert hb["status"] == "fail"  # it ran: "off" is off
    assert v["status"] == "skip" and "root" in v["summary"]


def test_an_answer_from_another_vlan_is_not_an_untagged_arp_answer(minilan: MiniLan) -> None:
    """The kernel strips the tag of a frame from a VLAN the laptop has no interface for before a
    protocol-bound socket sees it; the ARP scan must still not count it (it did once, when the
    vlan check's tagged asks ran during the heartbeat's ARP)."""
    code = textwrap.dedent(
        """
        import json, threading, time
        from diag.net import addr as net_addr
        from diag.net import arp as net_arp
        from diag.net import icmp as net_icmp
        from diag.net import ifaces as net_ifaces
        from diag.net import l2 as net_l2
        i = next(x for x in net_ifaces.local_interfaces() if x.name == "eth0")
        tx = net_l2.open_packet_socket(i, net_l2.ETH_P_ALL)
        def ask_tagged():
            for _ in range(12):
                tx.send(net_arp.build_arp_request(net_addr.mac_bytes(i.mac), "198.18.0.100",
                                              "198.18.0.26", 30))
                time.sleep(0.05)
        t = threading.Thread(target=ask_tagged)
        t.start()
        scan = net_arp.arp_scan(i, ["198.18.0.26", "198.18.0.21"], passes=8, min_passes=2,
                            wait_s=0.1)
        t.join()
        print(json.dumps(scan.by_ip(untagged_only=False)))
        """
    )
    found = json.loads(minilan.python("laptop", code))
    assert found == {"198.18.0.21": ["02:00:5e:00:54:01"]}
