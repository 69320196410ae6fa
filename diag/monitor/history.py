"""The history as the diagnosis sees it (outages just ended -> ``p2p-relogin-delay``).

``StoreHistory`` adapts the SQLite store to the small read-only interface the cause engine asks
for, so the engine never depends on SQLite and tests can hand it a plain fake.
"""

from __future__ import annotations

import datetime as dt

from diag.monitor.store import Outage, Store


class StoreHistory:
    def __init__(self, store: Store, now: dt.datetime | None = None) -> None:
        self.store = store
        self.now = now or dt.datetime.now(dt.UTC)

    def last_outage(self, device: str) -> tuple[dt.datetime, dt.datetime | None] | None:
        """Start and end (None while it goes on) of the device's most recent outage."""
        o = self.store.last_outage(device)
        return None if o is None else (o.start, o.end)

    def outages(self, device: str | None = None, since: dt.datetime | None = None) -> list[Outage]:
        return self.store.outages(device, since)
