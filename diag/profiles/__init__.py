"""Platform profiles: where they come from, and whether they name a real platform.

A profile is a TOML file (fields: docs/profiles.md). By name, one is found in this order:

1. the user's config dir: ``<user_config_dir>/diag/profiles/NAME.toml`` (platformdirs: e.g.
   ``~/.config/diag/profiles`` on Linux, ``%APPDATA%\\diag\\profiles`` on Windows), so a support
   team's file dropped there wins over anything installed;
2. a package's entry point in the group ``diag.profiles`` (a vendor or distributor ships theirs):
   the entry point's object is a path to the TOML file (``str``, ``os.PathLike`` or an
   ``importlib.resources`` traversable) or a callable returning one;
3. the profiles shipped here (``generic``, ``loopback``).

A site file may also name a profile file by path (``profile = "vendor.toml"``, relative to the
site file). ``placeholders(profile)`` lists the platform names that are reserved for examples and
tests (RFC 2606, RFC 6761): ``*.example``, ``*.example.com/net/org``, ``*.invalid``,
``*.localhost`` and ``*.test`` (unless the profile says ``test_network = true``, as the lab's
does: there ``.test`` names resolve). Such a profile names no real platform: the platform checks
skip instead of reporting names that cannot exist as a DNS failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from diag.model import Profile

ENTRY_POINT_GROUP = "diag.profiles"
SHIPPED_DIR = Path(__file__).parent
# Reserved names (RFC 2606 section 2 and 3, RFC 6761 section 6): never a real platform.
RESERVED_SUFFIXES = (
    ".example",
    ".example.com",
    ".example.net",
    ".example.org",
    ".invalid",
    ".localhost",
)
TEST_SUFFIX = ".test"


@dataclass(frozen=True)
class Source:
    """Where a profile by this name comes from."""

    name: str
    origin: str  # "user", "package:<distribution>" or "shipped"
    path: Path | None
    # For an entry point: how to get its file (loaded only when the profile is used).
    loader: Callable[[], Any] | None = None

    def file(self) -> Path:
        """The TOML file; raises ``ProfileError`` when an entry point does not give one."""
        if self.path is not None:
            return self.path
        assert self.loader is not None
        try:
            obj = self.loader()
            if callable(obj):
                obj = obj()
        except Exception as exc:
            raise ProfileError(
                f"profile {self.name!r} from {self.origin} cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if isinstance(obj, str | os.PathLike):
            return Path(obj)
        # An importlib.resources traversable inside an installed package.
        if hasattr(obj, "read_bytes") and hasattr(obj, "name"):
            return Path(str(obj))
        raise ProfileError(
            f"profile {self.name!r} from {self.origin} is a {type(obj).__name__}, "
            "not a path to a TOML file"
        )


class ProfileError(Exception):
    """A profile that cannot be found or loaded (the message says which and why)."""


def user_dir() -> Path:
    """The user's own profiles: ``<user_config_dir>/diag/profiles`` (platformdirs)."""
    override = os.environ.get("DIAG_PROFILE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("diag")) / "profiles"


def _entry_point_sources(eps: Iterable[EntryPoint] | None = None) -> list[Source]:
    out = []
    for ep in entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps:
        dist = ep.dist.name if ep.dist is not None else "?"
        out.append(Source(ep.name, f"package:{dist}", None, ep.load))
    return out


def sources() -> dict[str, Source]:
    """Every profile by name; the user's dir wins over packages, packages over shipped ones."""
    found: dict[str, Source] = {}
    for p in sorted(SHIPPED_DIR.glob("*.toml")):
        found[p.stem] = Source(p.stem, "shipped", p)
    for src in _entry_point_sources():
        found[src.name] = src
    udir = user_dir()
    if udir.is_dir():
        for p in sorted(udir.glob("*.toml")):
            found[p.stem] = Source(p.stem, "user", p)
    return found


def find(name_or_path: str, relative_to: Path | None = None) -> Path:
    """The TOML file of a profile by name, or a profile file by path; raises ``ProfileError``."""
    looks_like_path = name_or_path.endswith(".toml") or any(c in name_or_path for c in "/\\")
    if not looks_like_path:
        src = sources().get(name_or_path)
        if src is not None:
            return src.file()
    candidate = Path(name_or_path)
    if not candidate.is_absolute() and relative_to is not None:
        candidate = relative_to / candidate
    if candidate.exists():
        return candidate
    known = ", ".join(sorted(sources()))
    raise ProfileError(f"no profile {name_or_path!r} (known: {known})")


def _hosts(profile: Profile) -> list[str]:
    """The platform's names: P2P servers, the DNS names it checks, the status API's host."""
    names = [s.host for s in profile.p2p_servers] + list(profile.dns_names)
    if profile.status_api_url:
        host = urlsplit(profile.status_api_url).hostname
        if host:
            names.append(host)
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n.rstrip(".").lower(), None)
    return list(seen)


def is_reserved(name: str, test_network: bool = False) -> bool:
    """A name reserved for documentation and tests (pure)."""
    n = name.rstrip(".").lower()
    suffixes = RESERVED_SUFFIXES if test_network else (*RESERVED_SUFFIXES, TEST_SUFFIX)
    return any(n == s[1:] or n.endswith(s) for s in suffixes)


def placeholders(profile: Profile) -> list[str]:
    """The platform names of ``profile`` that are reserved, i.e. no real platform's (pure)."""
    return [n for n in _hosts(profile) if is_reserved(n, profile.test_network)]


__all__ = [
    "ENTRY_POINT_GROUP",
    "ProfileError",
    "Source",
    "find",
    "is_reserved",
    "placeholders",
    "sources",
    "user_dir",
]
