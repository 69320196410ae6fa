"""Where a phone's result waits for the ``phone`` check of the next run (one per process).

``diag phone`` and the dashboard put the result here when the page posts it; the check reads the
latest one. A result belongs to the laptop's session with that phone, not to a site file, so it
lives in memory only and is never written anywhere unless the user saves a run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from diag.phone.result import PhoneResult


@dataclass(frozen=True)
class Delivery:
    result: PhoneResult
    # The networks (CIDR) of the laptop address the page was served from: the site's LAN.
    lan: tuple[str, ...] = ()


_lock = threading.Lock()
_latest: Delivery | None = None


def put(result: PhoneResult, lan: tuple[str, ...] = ()) -> None:
    global _latest
    with _lock:
        _latest = Delivery(result, lan)


def latest() -> Delivery | None:
    with _lock:
        return _latest


def clear() -> None:
    global _latest
    with _lock:
        _latest = None
