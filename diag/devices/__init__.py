"""Device APIs as plugins: the ``diag.devices`` entry-point group.

Each entry point names an ``Adapter`` subclass whose ``name`` equals the entry point's name. The
built-ins (``onvif``, ``isapi``, ``dahua``) are registered in ``pyproject.toml`` exactly as a
third-party package would register its own; when the package metadata is missing (a frozen
build) the built-ins are loaded from ``BUILTIN`` instead. A site file's device names its API
(``api = "isapi"``) or leaves it ``auto``: ONVIF first, then the others, once each, and the one
that answered is recorded (``device.api``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from diag.devices.base import Adapter, DeviceReport, Target

__all__ = [
    "AUTO",
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "DeviceReport",
    "Target",
    "auto_order",
    "load_adapters",
    "read_device",
]

ENTRY_POINT_GROUP = "diag.devices"
AUTO = "auto"
# The built-ins as their entry points say (pyproject.toml); used when the metadata is absent.
BUILTIN: Mapping[str, str] = {
    "onvif": "diag.devices.onvif:OnvifAdapter",
    "isapi": "diag.devices.isapi:IsapiAdapter",
    "dahua": "diag.devices.dahua:DahuaAdapter",
}
# ``auto`` asks ONVIF first (every Profile S device speaks it), then the vendors' own APIs.
PREFERRED = ("onvif", "isapi", "dahua")


@dataclass(frozen=True)
class LoadError:
    name: str
    value: str
    error: str


def _load(name: str, value: str) -> type[Adapter]:
    module, _, attr = value.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise TypeError(f"{value} is not a diag.devices.Adapter subclass")
    if obj.name != name:
        raise ValueError(f"entry point name {name!r} != adapter name {obj.name!r}")
    return obj


_CACHE: tuple[dict[str, Adapter], tuple[LoadError, ...]] | None = None


def load_adapters(
    eps: Iterable[EntryPoint] | None = None,
) -> tuple[dict[str, Adapter], tuple[LoadError, ...]]:
    """Every adapter of the group, by name, and the plugins that failed to load."""
    global _CACHE
    if eps is None and _CACHE is not None:
        return _CACHE
    found = list(entry_points(group=ENTRY_POINT_GROUP)) if eps is None else list(eps)
    pairs = [(ep.name, ep.value) for ep in found]
    if eps is None and not pairs:
        pairs = list(BUILTIN.items())
    adapters: dict[str, Adapter] = {}
    errors: list[LoadError] = []
    for name, value in sorted(pairs):
        try:
            if name in adapters:
                raise ValueError(f"duplicate adapter name {name!r}")
            adapters[name] = _load(name, value)()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            errors.append(LoadError(name, value, f"{type(exc).__name__}: {exc}"))
    result = (adapters, tuple(errors))
    if eps is None:
        _CACHE = result
    return result


def auto_order(adapters: Mapping[str, Adapter]) -> list[str]:
    first = [n for n in PREFERRED if n in adapters]
    return first + sorted(n for n in adapters if n not in PREFERRED)


async def read_device(
    api: str, target: Target, adapters: Mapping[str, Adapter] | None = None
) -> DeviceReport:
    """The device read through ``api`` (or ``auto``). At most one login is refused per run: a
    ``rejected`` answer ends the search, whichever adapter got it."""
    if adapters is None:
        adapters = load_adapters()[0]
    if api != AUTO:
        adapter = adapters.get(api)
        if adapter is None:
            return DeviceReport(api, "unsupported", errors={api: "no such adapter"})
        return await adapter.read(target)
    last: DeviceReport | None = None
    order = auto_order(adapters)
    for i, name in enumerate(order):
        report = await adapters[name].read(target)
        if report.auth == "ok" and report.p2p is None:
            # ONVIF has no P2P switch: the vendor's own API, if the device has one, says. The
            # login just succeeded, so at most this one attempt can be refused this run.
            for other in order[i + 1 :]:
                extra = await adapters[other].read(target)
                if extra.auth == "ok" and extra.p2p is not None:
                    report.p2p = extra.p2p
                    report.p2p_api = other
                if extra.auth in ("ok", "rejected"):
                    break
        if report.auth in ("ok", "rejected"):
            return report
        if last is None or (report.auth == "error" and last.auth == "unsupported"):
            last = report
    return last or DeviceReport(AUTO, "unsupported")
