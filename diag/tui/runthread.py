"""Runs a plan on its own event loop in a daemon thread, so no check can freeze the dashboard.

Checks are meant to be good asyncio citizens, but a third-party check that calls a blocking
function directly (a synchronous resolver, a scapy ``sr()``) would stall the event loop it runs
on. The dashboard's loop draws the screen and reads the keyboard, so the checks get a loop of their
own in a daemon thread: the screen stays live whatever a check does, and quitting never waits for
a probe stuck in a C call (daemon threads do not hold the process open). Loading the checks'
entry points happens there too: importing scapy takes about a second, which must not delay the
first paint.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from diag.checks.base import Registry, World, load_checks
from diag.model import CheckResult, Site
from diag.runner import DEFAULT_DEADLINE_S, EventSink, Plan, Runner, plan

# After a cancelled run, the check tasks get this long to unwind before the loop is dropped, s.
# Cancelled tasks waiting on a daemon thread end at once; this only bounds a check that ignores
# cancellation, and it runs in the background thread, so the screen never waits for it.
DRAIN_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class RunRequest:
    """What to run: the site, which checks (None: all), and the injected world and registry."""

    site: Site
    only: Sequence[str] | None = None
    # None: load the ``diag.checks`` entry points (in the background thread).
    registry: Registry | None = None
    world: World = field(default_factory=World)
    deadline_s: float = DEFAULT_DEADLINE_S
    deep: bool = False


PlanSink = Callable[[Registry, Plan], None]


def _resolve(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=DRAIN_TIMEOUT_S))
    # A check's daemon thread may still hold the loop to report a late result; closing the loop
    # under it would raise in that thread. Close only when none is left, else the GC closes it.
    me = threading.current_thread()
    others = [t for t in threading.enumerate() if t is not me and t.name.startswith("diag-")]
    if not any(t.is_alive() for t in others):
        loop.close()


async def run_in_thread(
    request: RunRequest, on_plan: PlanSink, on_event: EventSink
) -> tuple[CheckResult, ...]:
    """Plans and runs ``request`` in a daemon thread; cancelling this coroutine cancels the run.

    ``on_plan`` and ``on_event`` are called from the background thread: they must only hand the
    data over (Textual's ``post_message`` is thread-safe).
    """
    outer = asyncio.get_running_loop()
    done: asyncio.Future[tuple[CheckResult, ...]] = outer.create_future()
    lock = threading.Lock()
    state: dict[str, Any] = {"cancelled": False}

    def report(value: Any, exc: BaseException | None) -> None:
        try:
            outer.call_soon_threadsafe(_resolve, done, value, exc)
        except RuntimeError:
            pass  # the dashboard has already closed its loop: nobody is waiting any more

    def target() -> None:
        inner = asyncio.new_event_loop()
        try:
            registry = request.registry if request.registry is not None else load_checks()
            the_plan = plan(request.site, registry, request.only, root=request.world.is_root())
            on_plan(registry, the_plan)
            runner = Runner(
                registry, world=request.world, deadline_s=request.deadline_s, deep=request.deep
            )
            task = inner.create_task(runner.run(request.site, the_plan, on_event))
            with lock:
                state["task"], state["loop"] = task, inner
                if state["cancelled"]:
                    task.cancel()
            results = inner.run_until_complete(task)
        except BaseException as exc:
            report(None, exc)
        else:
            report(results, None)
        finally:
            _drain(inner)

    threading.Thread(target=target, name="diag-tui-run", daemon=True).start()
    try:
        return await done
    except asyncio.CancelledError:
        with lock:
            state["cancelled"] = True
            task, inner = state.get("task"), state.get("loop")
        if task is not None and inner is not None:
            try:
                inner.call_soon_threadsafe(task.cancel)
            except RuntimeError:
                pass  # the run has just ended and its loop is closed: nothing to cancel
        raise
