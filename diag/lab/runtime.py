"""Bringing labs up and down: namespaces, veths, scripts, daemons, readiness, crash-safe cleanup.

A lab's state lives in ``/run/diag-lab/<lab>/lab.json`` (written *before* anything is created, so
a crash at any point leaves enough to clean up). ``down`` kills every process whose network
namespace belongs to the lab (found through ``/proc``, not only through pid files), deletes the
namespaces (their veths go with them) and removes the state. ``down_all`` does that for every
``diag-*`` namespace and state directory, whatever crashed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from diag.fileio import write_atomic
from diag.i18n import Message, msg
from diag.lab import plan as P
from diag.lab.scenarios import BY_NAME, ScenarioError, devices_needed, parse_names

NETNS_DIR = Path("/run/netns")
# Every daemon must have bound its sockets within this time (s): coturn and the Python emulators
# start in well under a second; the budget for the whole `up` is 5 s.
READY_TIMEOUT_S = 4.0
# After SIGTERM, processes get this long to exit before SIGKILL (s); the `down` budget is 2 s.
TERM_GRACE_S = 0.4
# Tools the lab runs, and the Debian package that provides each (for the error message).
TOOLS = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "tc": "iproute2",
    "nft": "nftables",
    "sysctl": "procps",
    "turnserver": "coturn",
    "dnsmasq": "dnsmasq-base",
    "miniupnpd": "miniupnpd",
    "lldpd": "lldpd",
    "ethtool": "ethtool",
}


# Daemons started by this process (it must reap them when it outlives them, e.g. in tests).
_CHILDREN: set[int] = set()


class LabError(RuntimeError):
    """A lab operation failed; ``message`` is for a person. ``exit_code`` 2: usage/permissions."""

    def __init__(self, message: Message, exit_code: int = 1) -> None:
        super().__init__(message.render())
        self.message = message
        self.exit_code = exit_code


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError(
            msg(
                "diag lab needs root: it creates network namespaces, veth pairs, nftables rules "
                "and tc qdiscs (CAP_NET_ADMIN and CAP_SYS_ADMIN). Run it with sudo."
            ),
            2,
        )


def missing_tools() -> list[str]:
    return [f"{t} (package {pkg})" for t, pkg in TOOLS.items() if shutil.which(t) is None]


def _run(argv: Sequence[str], input: str | None = None, timeout: float = 10) -> None:
    res = subprocess.run(
        argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if res.returncode != 0:
        raise LabError(
            msg("{cmd} failed: {error}", cmd=" ".join(argv[:4]), error=res.stderr.strip()[:500])
        )


# --- state ---------------------------------------------------------------------------------------


def state_dir(lab: str, root: Path = P.STATE_ROOT) -> Path:
    return root / lab


def read_state(lab: str, root: Path = P.STATE_ROOT) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((root / lab / "lab.json").read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


def _write_state(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=1).encode("utf-8"), tmp_name=path.name + ".tmp")


def list_labs(root: Path = P.STATE_ROOT) -> list[str]:
    """Labs with a state directory or namespaces, sorted."""
    labs: set[str] = set()
    if root.is_dir():
        labs |= {p.name for p in root.iterdir() if p.is_dir()}
    for ns in _diag_namespaces():
        rest = ns[len(P.NS_PREFIX) :]
        labs.add(rest.split("-", 1)[0])
    return sorted(labs)


def resolve_lab(name: str | None, root: Path = P.STATE_ROOT) -> str:
    labs = list_labs(root)
    if name:
        if name not in labs:
            raise LabError(
                msg(
                    "no lab named {name} (present: {labs})", name=name, labs=", ".join(labs) or "-"
                ),
                2,
            )
        return name
    if not labs:
        raise LabError(msg("no lab is up; start one with `diag lab up --scenario healthy`"), 2)
    if len(labs) > 1:
        raise LabError(
            msg("several labs are up ({labs}): name one with --lab", labs=", ".join(labs)), 2
        )
    return labs[0]


def _diag_namespaces() -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(P.NS_PREFIX))
    except OSError:
        return []


# --- processes -----------------------------------------------------------------------------------


def _ns_inode(ns: str) -> int | None:
    try:
        return os.stat(NETNS_DIR / ns).st_ino
    except OSError:
        return None


def pids_in_namespaces(namespaces: Iterable[str]) -> list[int]:
    """Every process whose network namespace is one of ``namespaces`` (like `ip netns pids`)."""
    inodes = {i for i in (_ns_inode(n) for n in namespaces) if i is not None}
    if not inodes:
        return []
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            link = os.readlink(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        # "net:[4026532301]"
        try:
            ino = int(link[link.index("[") + 1 : -1])
        except ValueError:
            continue
        if ino in inodes:
            out.append(int(entry))
    return out


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def _alive(pid: int, start: str | None = None) -> bool:
    st = _start_time(pid)
    if st is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        if state[state.rindex(")") + 2] == "Z":
            return False
    except OSError:
        return False
    return start is None or st == start


def kill_pids(pids: Iterable[int], grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM, a short grace period, then SIGKILL for what is left."""
    pids = [p for p in set(pids) if p != os.getpid()]
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    left = pids
    while left and time.monotonic() < deadline:
        _reap()
        left = [p for p in left if _alive(p)]
        if left:
            time.sleep(0.02)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 1.0
    while left and time.monotonic() < end:
        _reap()
        left = [p for p in left if _alive(p)]
        if left:
            time.sleep(0.01)


def _reap() -> None:
    """Collects exited daemons this process started, so they do not linger as zombies.

    Only the lab's own children are waited for (never ``waitpid(-1)``): a test process that
    builds labs has other children whose exit status belongs to their owners.
    """
    for pid in list(_CHILDREN):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            _CHILDREN.discard(pid)


# --- readiness -----------------------------------------------------------------------------------


def _hexaddr(ip: str, port: int) -> str:
    a = [int(x) for x in ip.split(".")]
    return f"{a[3]:02X}{a[2]:02X}{a[1]:02X}{a[0]:02X}:{port:04X}"


def _bound(pid: int, proto: str, ip: str, port: int) -> bool:
    """Is ip:port bound (UDP) or listening (TCP) in ``pid``'s network namespace?"""
    try:
        text = Path(f"/proc/{pid}/net/{proto}").read_text()
        # A dual-stack listener (miniupnpd) shows up in the IPv6 table as [::]:port.
        text += Path(f"/proc/{pid}/net/{proto}6").read_text()
    except OSError:
        return False
    want = {_hexaddr(ip, port), _hexaddr("0.0.0.0", port), f"{'0' * 32}:{port:04X}"}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) > 3 and parts[1] in want and (proto == "udp" or parts[3] == "0A"):
            return True
    return False


# --- up ------------------------------------------------------------------------------------------


def new_lab_id(root: Path = P.STATE_ROOT) -> str:
    """A fresh lab id, claimed by creating its state directory (atomic against a parallel up)."""
    existing = set(list_labs(root))
    root.mkdir(parents=True, exist_ok=True)
    while True:
        lab = secrets.token_hex(2)
        if lab in existing or lab.isdigit():
            continue
        try:
            (root / lab).mkdir()
        except FileExistsError:
            continue
        return lab


def up(
    scenario: str | Sequence[str] = "healthy",
    devices: int | None = None,
    *,
    root: Path = P.STATE_ROOT,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Builds a lab; returns its state (``lab.json``). On any failure the partial lab is removed."""
    require_root()
    missing = missing_tools()
    if missing:
        raise LabError(
            msg(
                "the lab needs these tools: {tools} (run scripts/setup.sh)",
                tools=", ".join(missing),
            ),
            2,
        )
    try:
        names = parse_names(scenario)
    except ScenarioError as exc:
        raise LabError(
            msg("unknown scenario {name}; see `diag lab list`", name=exc.args[0]), 2
        ) from None
    n = P.DEFAULT_DEVICES if devices is None else devices
    if not 1 <= n <= P.MAX_DEVICES:
        raise LabError(msg("--devices must be between 1 and {max}", max=P.MAX_DEVICES), 2)
    known = {"nvr", *(f"ipc{i}" for i in range(1, n))}
    lacking = sorted(devices_needed(names) - known)
    if lacking:
        raise LabError(
            msg(
                "scenario {scenario} breaks device {device}, which needs more devices "
                "(--devices {n} or more)",
                scenario=",".join(names),
                device=lacking[0],
                n=P.DEFAULT_DEVICES,
            ),
            2,
        )
    t0 = time.monotonic()
    lab = new_lab_id(root)
    site_pw = {d: secrets.token_urlsafe(12) for d in known}
    plan = P.build(lab, names, n, passwords=site_pw, python=sys.executable, state_root=root)
    sd = plan.state_dir
    (sd / "run").mkdir(parents=True, exist_ok=True)
    (sd / "logs").mkdir(exist_ok=True)
    state: dict[str, Any] = P.describe(plan)
    state.update({"status": "starting", "created": time.time(), "processes": [], "devices_n": n})
    # Written first: whatever happens next, `down` knows which namespaces are ours.
    _write_state(sd / "lab.json", state)
    try:
        _create(plan, site_pw, timings, t0)
        # Devices start once the platform listens: a LOGIN lost to a closed port is retried
        # only after a heartbeat interval, as on a real device.
        dev_roles = {d.name for d in plan.devices}
        first = [d for d in plan.daemons if d.role not in dev_roles]
        state["processes"] = _start_daemons(plan, first)
        _write_state(sd / "lab.json", state)
        _wait_ready(plan, state["processes"])
        later = _start_daemons(plan, [d for d in plan.daemons if d.role in dev_roles])
        state["processes"] += later
        _write_state(sd / "lab.json", state)
        _wait_ready(plan, later)
        _run_post(plan)
        if timings is not None:
            timings["ready"] = time.monotonic() - t0
        _wait_logins(plan)
        state["status"] = "up"
        state["up_s"] = round(time.monotonic() - t0, 3)
        _write_state(sd / "lab.json", state)
    except BaseException:
        # DIAG_LAB_KEEP_FAILED=1 leaves a failed lab in place to debug it (`down` removes it).
        if os.environ.get("DIAG_LAB_KEEP_FAILED") != "1":
            down(lab, root=root)
        raise
    if timings is not None:
        timings["total"] = time.monotonic() - t0
    return state


def _create(
    plan: P.Plan, site_pw: Mapping[str, str], timings: dict[str, float] | None, t0: float
) -> None:
    sd = plan.state_dir
    for rel, text in plan.files.items():
        path = sd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    sec = sd / "secrets"
    sec.mkdir(mode=0o700, exist_ok=True)
    for dev in plan.devices:
        pw = site_pw[dev.name]
        own = pw
        if "password-changed" in plan.faults.device_faults(dev.name):
            own = secrets.token_urlsafe(12)  # someone changed it on the device
        for fname, value in ((f"{dev.name}.pass", pw), (f"{dev.name}.device.pass", own)):
            fd = os.open(sec / fname, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(value + "\n")
    from diag.lab.emulators import pki

    ca = pki.make_ca(sd / "pki", f"diag lab {plan.lab} CA")
    pki.make_server_cert(sd / "pki", ca, [P.API_NAME, P.PLATFORM], name="api")
    for role, resolver in plan.resolv.items():
        etc = P.NETNS_ETC / plan.ns(role)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {resolver}\n", encoding="utf-8")
    if timings is not None:
        timings["files"] = time.monotonic() - t0
    batch = [f"netns add {plan.ns(r)}" for r in plan.roles]
    for ln in plan.links:
        a_mac = f" address {ln.a_mac}" if ln.a_mac else ""
        b_mac = f" address {ln.b_mac}" if ln.b_mac else ""
        batch.append(
            f"link add name {ln.a_if} netns {plan.ns(ln.a)}{a_mac} type veth "
            f"peer name {ln.b_if} netns {plan.ns(ln.b)}{b_mac}"
        )
    _run(["ip", "-batch", "-"], input="\n".join(batch) + "\n")
    if timings is not None:
        timings["links"] = time.monotonic() - t0
    procs = []
    for role in plan.roles:
        script = P.script_text(plan.scripts[role])
        (sd / "run" / f"setup-{role}.sh").write_text(script, encoding="utf-8")
        procs.append(
            (
                role,
                subprocess.Popen(
                    ["ip", "netns", "exec", plan.ns(role), "sh", "-c", script],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    errors = []
    for role, proc in procs:
        out, _ = proc.communicate(timeout=20)
        if proc.returncode != 0:
            errors.append(f"{role}: {out.strip()[:400]}")
    if errors:
        raise LabError(msg("lab set-up failed: {errors}", errors="; ".join(errors)))
    if timings is not None:
        timings["scripts"] = time.monotonic() - t0


def _start_daemons(plan: P.Plan, daemons: Sequence[P.Daemon]) -> list[dict[str, Any]]:
    out = []
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for d in daemons:
        log = open(plan.state_dir / "logs" / f"{d.name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            ["ip", "netns", "exec", plan.ns(d.role), *d.argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI that started it; no terminal signals
            env=env,
            cwd=str(plan.state_dir),
        )
        log.close()
        _CHILDREN.add(proc.pid)
        # The Popen object is dropped: the lab, not this handle, owns the process from now on.
        proc.returncode = 0
        out.append(
            {
                "name": d.name,
                "role": d.role,
                "pid": proc.pid,
                "start": _start_time(proc.pid),
                "ready": [list(r) for r in d.ready],
            }
        )
        (plan.state_dir / "run" / f"{d.name}.lab-pid").write_text(f"{proc.pid}\n")
    return out


def _wait_ready(plan: P.Plan, procs: list[dict[str, Any]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = [(p, tuple(r)) for p in procs for r in p["ready"]]
    while pending:
        _reap()
        pending = [(p, r) for p, r in pending if not _bound(p["pid"], r[0], r[1], r[2])]
        dead = [p for p, _ in pending if not _alive(p["pid"])]
        if dead:
            name = dead[0]["name"]
            tail = _log_tail(plan.state_dir / "logs" / f"{name}.log")
            raise LabError(msg("{name} exited while starting: {log}", name=name, log=tail))
        if not pending:
            break
        if time.monotonic() > deadline:
            p, r = pending[0]
            raise LabError(
                msg(
                    "{name} did not bind {proto} {addr} in {s} s",
                    name=p["name"],
                    proto=r[0],
                    addr=f"{r[1]}:{r[2]}",
                    s=READY_TIMEOUT_S,
                )
            )
        time.sleep(0.02)


# A post-start command (lldpcli) is retried this long while its daemon finishes starting (s).
POST_RETRY_S = 2.0


def _run_post(plan: P.Plan) -> None:
    for role, argv, stdin in plan.post:
        deadline = time.monotonic() + POST_RETRY_S
        while True:
            res = subprocess.run(
                ["ip", "netns", "exec", plan.ns(role), *argv],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            if res.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise LabError(
                    msg(
                        "{cmd} failed: {error}",
                        cmd=argv[0],
                        error=(res.stderr or res.stdout).strip()[:300],
                    )
                )
            time.sleep(0.05)


def _log_tail(path: Path, n: int = 400) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip()
    except OSError:
        return "(no log)"


# The platform serves logins one after another (LOGIN_DELAY_S each) and devices send their first
# LOGIN as they start; this bounds the wait for all of them (s), so `up` returns a site whose
# devices are already online at the platform.
LOGIN_WAIT_S = 1.0 + 0.3 * P.DEFAULT_DEVICES


def _wait_logins(plan: P.Plan) -> None:
    if not plan.expect_online:
        return
    serials = {d.serial for d in plan.devices if d.name in plan.expect_online}
    dump = plan.state_dir / "platform-state.json"
    deadline = time.monotonic() + LOGIN_WAIT_S + P.LOGIN_DELAY_S * len(serials)
    while time.monotonic() < deadline:
        try:
            data = json.loads(dump.read_text(encoding="utf-8"))
            online = {d.get("serial") for d in data.get("devices", []) if d.get("online")}
            if serials <= online:
                return
        except (OSError, ValueError, AttributeError):
            pass
        time.sleep(0.05)
    # Not fatal: a slow machine gets a lab whose devices log in a moment later.


# --- down ----------------------------------------------------------------------------------------


def _namespaces_of(lab: str, state: Mapping[str, Any] | None) -> list[str]:
    names = set(n for n in _diag_namespaces() if n.startswith(f"{P.NS_PREFIX}{lab}-"))
    if state:
        names |= set(state.get("roles", {}).values())
    return sorted(names)


def down(lab: str, *, root: Path = P.STATE_ROOT) -> None:
    """Removes one lab: its processes, namespaces, /etc/netns entries and state directory."""
    require_root()
    state = read_state(lab, root)
    namespaces = _namespaces_of(lab, state)
    _teardown(namespaces, [state] if state else [])
    shutil.rmtree(root / lab, ignore_errors=True)


def down_all(*, root: Path = P.STATE_ROOT) -> list[str]:
    """Removes every lab and every leftover of a crashed one; returns the labs removed."""
    require_root()
    labs = list_labs(root)
    states = [s for s in (read_state(lab, root) for lab in labs) if s]
    namespaces = set(_diag_namespaces())
    for s in states:
        namespaces |= set(s.get("roles", {}).values())
    _teardown(sorted(namespaces), states)
    for lab in labs:
        shutil.rmtree(root / lab, ignore_errors=True)
    # /etc/netns entries of namespaces that are already gone.
    if P.NETNS_ETC.is_dir():
        for entry in P.NETNS_ETC.iterdir():
            if entry.name.startswith(P.NS_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)
    return labs


def _teardown(namespaces: list[str], states: Sequence[Mapping[str, Any]]) -> None:
    pids = set(pids_in_namespaces(namespaces))
    for s in states:
        for p in s.get("processes", []):
            # A pid from the state file counts only if it is still the same process.
            if _alive(p["pid"], p.get("start")):
                pids.add(p["pid"])
    kill_pids(pids)
    existing = set(_diag_namespaces())
    batch = [f"netns del {n}" for n in namespaces if n in existing]
    if batch:
        # -force: go on after an error (a namespace deleted concurrently by another `down`).
        subprocess.run(
            ["ip", "-force", "-batch", "-"],
            input="\n".join(batch) + "\n",
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    for n in namespaces:
        shutil.rmtree(P.NETNS_ETC / n, ignore_errors=True)


# --- status and exec -----------------------------------------------------------------------------


def status(lab: str, *, root: Path = P.STATE_ROOT) -> dict[str, Any]:
    """The lab's state plus every namespace's live interfaces and addresses."""
    state = read_state(lab, root) or {"name": lab, "roles": {}}
    roles: dict[str, str] = dict(state.get("roles", {}))
    existing = set(_diag_namespaces())
    for ns in existing:
        if ns.startswith(f"{P.NS_PREFIX}{lab}-") and ns not in roles.values():
            roles[ns[len(f"{P.NS_PREFIX}{lab}-") :]] = ns
    procs = {
        role: subprocess.Popen(
            ["ip", "-n", ns, "-j", "addr", "show"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for role, ns in roles.items()
        if ns in existing
    }
    namespaces = []
    for role, ns in roles.items():
        ifaces = []
        if role in procs:
            out, _ = procs[role].communicate(timeout=10)
            try:
                data = json.loads(out or "[]")
            except ValueError:
                data = []
            for link in data:
                if link.get("ifname") == "lo":
                    continue
                ifaces.append(
                    {
                        "name": link.get("ifname"),
                        "mac": link.get("address"),
                        "up": "UP" in link.get("flags", []) and "LOWER_UP" in link.get("flags", []),
                        "addresses": [
                            f"{a['local']}/{a['prefixlen']}"
                            for a in link.get("addr_info", [])
                            if a.get("family") == "inet"
                        ],
                    }
                )
        namespaces.append(
            {"name": ns, "role": role, "exists": ns in existing, "interfaces": ifaces}
        )
    out_state = dict(state)
    out_state["namespaces"] = namespaces
    for p in out_state.get("processes", []):
        p["alive"] = _alive(p["pid"], p.get("start"))
    out_state["causes"] = sorted(
        {c for n in state.get("scenarios", []) if (c := BY_NAME[n].cause) if n in BY_NAME}
    )
    return out_state


def exec_argv(lab: str, role: str, cmd: Sequence[str], *, root: Path = P.STATE_ROOT) -> list[str]:
    """The argv that runs ``cmd`` in a lab namespace, with the venv's ``diag`` on PATH."""
    state = read_state(lab, root) or {}
    ns = state.get("roles", {}).get(role) or P.ns_name(lab, role)
    return ["ip", "netns", "exec", ns, *cmd]


def exec_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
    return env


def reload_device(lab: str, device: str, *, root: Path = P.STATE_ROOT, **changes: Any) -> None:
    """Changes a running device emulator's config (e.g. ``p2p_enabled=False``) and SIGHUPs it."""
    sd = root / lab
    cfg_path = sd / "devices" / f"{device}.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg.update(changes)
    write_atomic(cfg_path, json.dumps(cfg, indent=1).encode("utf-8"))
    state = read_state(lab, root) or {}
    for p in state.get("processes", []):
        if p["name"] == f"device-{device}" and _alive(p["pid"], p.get("start")):
            os.kill(p["pid"], signal.SIGHUP)
