"""What the diagnosis needs from the monitor's history: the last outage of a device or the link.

The monitor (``diag/monitor/``) implements ``History`` on its SQLite database; the diagnosis only
reads it, so a run without history (the dashboard, ``diag run``) simply passes ``None``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# The site's internet link in ``History.last_outage``: not a device name.
SITE = ""

Outage = tuple[dt.datetime, dt.datetime | None]


@runtime_checkable
class History(Protocol):
    """Read-only view of past states, as the monitor recorded them.

    ``now`` is the time the history is read at (timezone-aware). ``last_outage(name)`` is the most
    recent period in which the device (or, for ``SITE``, the site's internet link) was offline:
    ``(start, end)``, with ``end`` None while the outage is still going on; None when the history
    holds no outage for it.
    """

    @property
    def now(self) -> dt.datetime: ...

    def last_outage(self, name: str, /) -> Outage | None: ...


@dataclass(frozen=True)
class StaticHistory:
    """A ``History`` from a fixed table: tests, and replaying a recorded incident."""

    now: dt.datetime
    outages: Mapping[str, Outage] = field(default_factory=dict)

    def last_outage(self, name: str, /) -> Outage | None:
        return self.outages.get(name)
