"""The one interface every check implements, the context it runs in, and plugin discovery.

A check is a class registered in the ``diag.checks`` entry-point group (built-ins exactly like
third-party ones). It declares what it needs and which checks it depends on, picks its targets from
the site config (pure), and runs as a coroutine that returns an ``Outcome``; the runner owns the
timing, the deadline and the shared result fields.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from diag.i18n import Message, msg
from diag.model import CheckResult, Outcome, Site

if TYPE_CHECKING:
    from diag.net.backend import Backend

ENTRY_POINT_GROUP = "diag.checks"
# The built-in checks, for when package metadata is absent (a frozen single-file build has no
# entry points): the same names and classes as pyproject.toml's diag.checks group, which a test
# keeps equal.
BUILTIN_CHECKS: dict[str, str] = {
    "host": "diag.checks.host:HostCheck",
    "dns": "diag.checks.dns:DnsCheck",
    "p2p": "diag.checks.p2p:P2PCheck",
    "stun": "diag.checks.stun:StunCheck",
    "ports": "diag.checks.ports:PortsCheck",
    "vlan": "diag.checks.vlan:VlanCheck",
    "bandwidth": "diag.checks.bandwidth:BandwidthCheck",
    "heartbeat": "diag.checks.heartbeat:HeartbeatCheck",
    "wan": "diag.checks.wan:WanCheck",
    "phone": "diag.checks.phone:PhoneCheck",
    "mtu": "diag.checks.mtu:MtuCheck",
    "ipv6": "diag.checks.ipv6:Ipv6Check",
}
CHECK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
T = TypeVar("T")

# What a check may need; the plan turns unmet needs into a "skip" with the reason.
NEED_ROOT = "root"
NEED_CREDENTIALS = "credentials"


def profile_need(field_name: str) -> str:
    """A need for a profile field, e.g. ``profile.stun_servers``."""
    return f"profile.{field_name}"


def is_root() -> bool:
    """Whether this user may open raw sockets: root on POSIX, an Administrator on Windows."""
    from diag.net.backend import current

    return current().is_privileged()


def _current_net() -> Backend:
    from diag.net.backend import current

    return current()


@dataclass(frozen=True)
class Progress:
    """A check's own progress: fraction done (0..1) and what it is doing now."""

    check_id: str
    fraction: float
    note: Message | None = None


@dataclass
class World:
    """What a check touches outside itself, injectable so unit tests run on fakes.

    ``monotonic`` and ``now`` are the clocks; ``is_root`` says whether raw sockets are allowed;
    ``net`` is this OS's network backend (``diag.net.backend``: default route, interfaces,
    nameservers, ARP, ICMP, capabilities), which the foreign_os tests replace with Windows and
    macOS backends driven by recorded answers. Sockets are opened to the addresses the site
    config names, so a unit test points the config at loopback fakes.
    """

    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    is_root: Callable[[], bool] = is_root
    sleep: Callable[[float], Any] = asyncio.sleep
    net: Backend = field(default_factory=_current_net)


@dataclass
class Context:
    """Everything one check run gets: the site, its targets, the deadline, its dependencies."""

    site: Site
    check_id: str
    targets: tuple[str, ...]
    deadline: float
    results: Mapping[str, CheckResult] = field(default_factory=dict)
    world: World = field(default_factory=World)
    deep: bool = False
    on_progress: Callable[[Progress], None] | None = None

    def remaining(self) -> float:
        """Seconds left before this check's deadline (never negative)."""
        return max(0.0, self.deadline - self.world.monotonic())

    def progress(self, fraction: float, note: Message | None = None) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(self.check_id, max(0.0, min(1.0, fraction)), note))

    def result(self, check_id: str) -> CheckResult | None:
        return self.results.get(check_id)

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Runs blocking code (scapy, pystun3) in a daemon thread.

        Not the default executor: a probe stuck in a C call cannot be cancelled, and the default
        executor's threads are joined at exit, so one hung probe would hang the whole program.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def target() -> None:
            try:
                value = fn(*args)
            except BaseException as exc:
                err = exc
                loop.call_soon_threadsafe(_set_exc, fut, err)
            else:
                loop.call_soon_threadsafe(_set_result, fut, value)

        threading.Thread(target=target, name=f"diag-{self.check_id}", daemon=True).start()
        return await fut


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _set_exc(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class Check(abc.ABC):
    """Base class of every check. Subclasses set the class attributes and implement ``run``."""

    id: ClassVar[str]
    title: ClassVar[Message]
    # Requirements: NEED_ROOT, NEED_CREDENTIALS, profile_need("stun_servers"), ...
    needs: ClassVar[tuple[str, ...]] = ()
    # Check ids whose results this check reads from ``Context.results``.
    depends_on: ClassVar[tuple[str, ...]] = ()
    # Upper bound of one run of this check, s; the run's deadline may cut it shorter.
    timeout_s: ClassVar[float] = 10.0
    # True when the check can do useful work without root but does more with it.
    root_optional: ClassVar[bool] = False
    # True for a check that probes the platform's own names (P2P servers, DNS names): it skips
    # when the profile names only placeholders (diag.profiles.placeholders), never diagnoses.
    names_platform: ClassVar[bool] = False

    def targets(self, site: Site) -> tuple[str, ...]:
        """What this check probes on ``site`` (pure). Empty means nothing to do: skip."""
        return ("site",)

    def unmet_needs(self, site: Site, root: bool) -> list[str]:
        """The needs ``site`` and the environment don't meet (pure)."""
        missing: list[str] = []
        for need in self.needs:
            if need == NEED_ROOT and not root and not self.root_optional:
                missing.append(need)
            elif need == NEED_CREDENTIALS and not any(d.credentials for d in site.devices):
                missing.append(need)
            elif need.startswith("profile.") and not getattr(
                site.profile, need.removeprefix("profile."), None
            ):
                missing.append(need)
        return missing

    @abc.abstractmethod
    async def run(self, ctx: Context) -> Outcome:
        """Probes the targets and reports facts; raise or hang and the runner reports it."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "id": cls.id,
            "title": cls.title.render("en"),
            "needs": list(cls.needs),
            "depends_on": list(cls.depends_on),
            "timeout_s": cls.timeout_s,
        }


@dataclass(frozen=True)
class LoadError:
    """An entry point that could not be loaded: shown by ``diag checks``, never fatal."""

    name: str
    value: str
    error: str


@dataclass(frozen=True)
class Registry:
    checks: Mapping[str, Check]
    errors: tuple[LoadError, ...] = ()

    def __contains__(self, check_id: object) -> bool:
        return check_id in self.checks

    def __getitem__(self, check_id: str) -> Check:
        return self.checks[check_id]

    @property
    def ids(self) -> list[str]:
        return sorted(self.checks)


def load_checks(eps: list[EntryPoint] | None = None) -> Registry:
    """Instantiates every check in the ``diag.checks`` group; a broken plugin is an error entry."""
    if eps is None:
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
        # No metadata (frozen build) or only third-party plugins: the built-ins are still here.
        named = {e.name for e in eps}
        eps += [
            EntryPoint(name, value, ENTRY_POINT_GROUP)
            for name, value in BUILTIN_CHECKS.items()
            if name not in named
        ]
    checks: dict[str, Check] = {}
    errors: list[LoadError] = []
    for ep in sorted(eps, key=lambda e: e.name):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Check)):
                raise TypeError(f"{ep.value} is not a diag.checks.base.Check subclass")
            inst = cls()
            if inst.id != ep.name:
                raise ValueError(f"entry point name {ep.name!r} != check id {inst.id!r}")
            if not isinstance(inst.id, str) or not CHECK_ID_RE.match(inst.id):
                # The id is a JSON key, a Prometheus label and a CLI word: the run schema's pattern.
                raise ValueError(f"check id {inst.id!r} must match {CHECK_ID_RE.pattern}")
            if inst.id in checks:
                raise ValueError(f"duplicate check id {inst.id!r}")
            checks[inst.id] = inst
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            errors.append(LoadError(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
    return Registry(checks, tuple(errors))


def registry_from(*checks: Check) -> Registry:
    """A registry from instances (tests and embedding)."""
    return Registry({c.id: c for c in checks})


def outcome(status: str, text: str, **args: Any) -> Outcome:
    """Shorthand for a metric-less outcome with a message."""
    return Outcome(status, msg(text, **args))  # type: ignore[arg-type]
