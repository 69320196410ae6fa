"""Per-target isolation inside a multi-target check: a whole-work time bound and a safe reason.

The runner isolates checks from each other; this does the same one level down. ``bounded()`` runs
one target's work (a device's login, a server's probe) under ``asyncio.timeout`` around the whole
of it, not per read: httpx's timeouts are per read, so a device trickling its headers or body at
1 byte/s never trips them and held the heartbeat check for its whole 20 s. Whatever the work
raises (a library choking on a hostile answer: ``ValueError``, ``KeyError``,
``NotImplementedError``, ``UnicodeEncodeError``...) or however long it takes, the result is that
target's error with a reason from a small fixed set, and the other targets' results are kept.

Reasons never carry text from the exception: an exception's message may quote what the device
sent, or worse, bytes of a secret (a decode error quotes the byte and its position). Only the
reason word and the exception's type name leave here.

Code deep inside the work (the Digest auth, the HTTP transport) can ``note()`` a more precise
reason for the target it runs for ("bad-challenge", "connect"), without any plumbing through the
device adapters in between: the current target travels in a context variable.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import httpx

from diag.model import Fact

T = TypeVar("T")

# Reasons, most telling first: when several were noted, the first of this order is reported.
Reason = Literal["bad-challenge", "timeout", "connect", "protocol", "crash"]
REASONS: tuple[Reason, ...] = ("bad-challenge", "timeout", "connect", "protocol", "crash")


@dataclass
class _Notes:
    reasons: set[str] = field(default_factory=set)


_current: contextvars.ContextVar[_Notes | None] = contextvars.ContextVar(
    "diag_net_target", default=None
)


def note(reason: Reason) -> None:
    """Records ``reason`` for the target whose work is running (no-op outside ``bounded``)."""
    notes = _current.get()
    if notes is not None:
        notes.reasons.add(reason)


def reason_of(exc: BaseException) -> Reason:
    """The safe reason word for an exception raised by a target's work."""
    from diag.net.digest import DigestChallengeError

    if isinstance(exc, DigestChallengeError):
        return "bad-challenge"
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        return "connect"
    if isinstance(exc, httpx.HTTPError):
        return "protocol"
    return "crash"


@dataclass(frozen=True)
class Bounded(Generic[T]):
    """One target's outcome: ``value`` when the work finished, else ``error`` (a reason word)."""

    target: str
    value: T | None = None
    error: Reason | None = None
    # The exception's type name (our code's or a library's class, never its message).
    error_type: str | None = None
    # What code inside the work noted (e.g. a malformed challenge it got past as an HTTP error).
    noted: tuple[Reason, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    def reason(self) -> Reason | None:
        """The most telling reason: the error's, else the first noted one."""
        found = {self.error, *self.noted} - {None}
        return next((r for r in REASONS if r in found), None)

    def error_facts(self, key: str = "device.error") -> list[Fact]:
        """``key`` = reason (and ``key_type`` = exception type) about this target; [] when ok."""
        if self.error is None:
            return []
        facts = [Fact(key, self.reason() or self.error, target=self.target)]
        if self.error_type:
            facts.append(Fact(f"{key}_type", self.error_type, target=self.target))
        return facts


async def bounded(target: str, work: Awaitable[T], timeout_s: float) -> Bounded[T]:
    """Runs ``work`` for ``target`` within ``timeout_s`` seconds (the whole of it); never raises
    for what the work does, only for cancellation from outside (the check's own deadline)."""
    notes = _Notes()
    token = _current.set(notes)
    timer: asyncio.Timeout | None = None
    try:
        async with asyncio.timeout(max(0.0, timeout_s)) as timer:
            value = await work
        return Bounded(target, value, noted=_sorted(notes))
    except TimeoutError as exc:
        # Ours (the bound expired) or the work's own: the same for the target, "timeout".
        kind = "TimeoutError" if timer is not None and timer.expired() else type(exc).__name__
        return Bounded(target, error="timeout", error_type=kind, noted=_sorted(notes))
    except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
        # Ctrl-C, and the runner cancelling the whole check at its deadline, are not this
        # target's doing: they go on up.
        raise
    except BaseException as exc:
        return Bounded(
            target, error=reason_of(exc), error_type=type(exc).__name__, noted=_sorted(notes)
        )
    finally:
        _current.reset(token)
        if asyncio.iscoroutine(work):
            # A coroutine that never started (the bound was 0) must not warn "never awaited".
            work.close()


def _sorted(notes: _Notes) -> tuple[Reason, ...]:
    return tuple(r for r in REASONS if r in notes.reasons)


class NotingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that notes why a request failed for the current target, then re-raises
    (adapters that turn every ``httpx.HTTPError`` into "error" keep doing so; the reason is
    kept for the target's error fact)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                note(reason_of(exc))
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()
