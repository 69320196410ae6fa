"""One failing check never stops the run: exits, odd exceptions, wrong return types, blocking code.

Third-party checks are loaded from entry points; whatever one does, the other checks finish, the
run returns every check's result and diag itself does not exit.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import make_site

from diag.checks.base import Check, Context, registry_from
from diag.i18n import msg
from diag.model import CheckResult, Fact, Metric, Outcome, Site
from diag.runner import Runner, plan

SITE = make_site()


class CustomBase(BaseException):
    """A plugin's own BaseException subclass (not an Exception)."""


class Plugin(Check):
    title = msg("plugin")

    def __init__(self, cid: str, body: Callable[[Context], Any], timeout_s: float = 5.0) -> None:
        self.id = cid  # type: ignore[misc]
        self.body = body
        self.timeout_s = timeout_s  # type: ignore[misc]

    async def run(self, ctx: Context) -> Outcome:
        out = self.body(ctx)
        if asyncio.iscoroutine(out):
            out = await out
        return out  # type: ignore[no-any-return]


class Good(Check):
    id = "good"
    title = msg("good")
    depends_on = ("bad",)

    async def run(self, ctx: Context) -> Outcome:
        await asyncio.sleep(0.05)
        return Outcome("ok", msg("fine"), facts=(Fact("good.saw", sorted(ctx.results)),))


def run_checks(*checks: Check, deadline_s: float = 5.0) -> dict[str, CheckResult]:
    reg = registry_from(*checks)
    results = asyncio.run(Runner(reg, deadline_s=deadline_s).run(SITE, plan(SITE, reg)))
    return {r.check_id: r for r in results}


def _raise(exc: BaseException) -> Callable[[Context], Any]:
    def body(ctx: Context) -> Any:
        raise exc

    return body


@pytest.mark.parametrize(
    "exc",
    [
        SystemExit(3),
        SystemExit("bye"),
        CustomBase("odd"),
        GeneratorExit(),
        asyncio.CancelledError(),
    ],
    ids=["SystemExit(3)", "SystemExit(str)", "custom BaseException", "GeneratorExit", "Cancelled"],
)
def test_a_check_raising_a_base_exception_is_its_own_error(exc: BaseException) -> None:
    # Was: SystemExit from a plugin left asyncio.run() and ended diag without any output.
    res = run_checks(Plugin("bad", _raise(exc)), Good())
    assert res["bad"].status == "error"
    assert type(exc).__name__ in res["bad"].summary.render()
    assert res["bad"].fact("check.exception", "bad").value == type(exc).__name__  # type: ignore[union-attr]
    # The dependant ran, with the failed dependency's result.
    assert res["good"].status == "ok"
    assert res["good"].fact("good.saw").value == ["bad"]  # type: ignore[union-attr]


KEYBOARD = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from test_hostile_runner import Good, Plugin, _raise, run_checks
try:
    run_checks(Plugin("bad", _raise(KeyboardInterrupt())), Good())
except KeyboardInterrupt:
    print("stopped")
"""


def test_keyboard_interrupt_still_stops_the_run() -> None:
    # Ctrl-C is the person at the keyboard: it must end diag, not become a check result.
    # (In a child: a KeyboardInterrupt through asyncio.run() upsets CPython 3.11's parser state
    # for the rest of a pytest session.)
    here = str(Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", KEYBOARD, here], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "stopped", out.stderr


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "NoneType"),
        ({"status": "ok"}, "dict"),
        ("ok", "str"),
        (Outcome("bogus", msg("x")), "status"),  # type: ignore[arg-type]
    ],
    ids=["None", "dict", "str", "bad status"],
)
def test_a_check_returning_the_wrong_thing_is_an_error(value: Any, why: str) -> None:
    res = run_checks(Plugin("bad", lambda ctx: value), Good())
    assert res["bad"].status == "error"
    assert why in res["bad"].summary.render()
    assert res["good"].status == "ok"


def test_an_outcome_with_odd_parts_keeps_what_is_usable() -> None:
    out = Outcome(
        "warn",
        "plain string summary",  # type: ignore[arg-type]
        {"rtt": Metric(3.0, "ms"), "bad": 5},  # type: ignore[dict-item]
        (Fact("x.y", 1), "not a fact"),  # type: ignore[arg-type]
    )
    res = run_checks(Plugin("bad", lambda ctx: out), Good())
    r = res["bad"]
    assert r.status == "warn"
    assert r.summary.render() == "plain string summary"
    assert r.metrics == {"rtt": Metric(3.0, "ms")}
    assert r.facts == (Fact("x.y", 1),)


def test_a_plugin_whose_targets_raise_does_not_stop_the_plan() -> None:
    class BadTargets(Check):
        id = "bad"
        title = msg("bad")

        def targets(self, site: Site) -> tuple[str, ...]:
            raise ValueError("broken plugin")

        async def run(self, ctx: Context) -> Outcome:
            raise AssertionError("never runs")

    res = run_checks(BadTargets(), Good())
    assert res["bad"].status == "error"
    assert "ValueError: broken plugin" in res["bad"].summary.render()
    assert res["good"].status == "ok"


def test_a_check_that_blocks_the_event_loop() -> None:
    """time.sleep() in a coroutine holds the loop: asyncio cannot pre-empt it.

    What the runner guarantees: the run still ends, every check has a result, the blocking
    check is reported as over its budget (an error saying so), and the checks that the block
    starved are timed out, not lost. The deadline holds only to within the blocking time.
    """

    def blocker(ctx: Context) -> Outcome:
        time.sleep(1.6)
        return Outcome("ok", msg("slept"))

    class Waiter(Check):
        id = "waiter"
        title = msg("waiter")
        timeout_s = 0.3

        async def run(self, ctx: Context) -> Outcome:
            await asyncio.sleep(0.2)
            return Outcome("ok", msg("fine"))

    t0 = time.monotonic()
    res = run_checks(Plugin("bad", blocker, timeout_s=0.3), Waiter(), deadline_s=0.5)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5
    assert set(res) == {"bad", "waiter"}
    assert res["bad"].status == "error"
    assert "blocked" in res["bad"].summary.render()
    assert res["bad"].fact("check.blocked_s", "bad") is not None


def test_a_check_that_cleans_up_after_its_budget_is_not_called_blocking() -> None:
    """A check may catch its cancellation and return what it has after a short clean-up; that
    is cooperative, not a blocked loop."""

    async def late(ctx: Context) -> Outcome:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # closing sockets, collecting partial results
        return Outcome("warn", msg("partial"))

    res = run_checks(Plugin("late", late, timeout_s=0.2), deadline_s=5.0)
    assert res["late"].fact("check.blocked_s", "late") is None
    assert res["late"].status in ("warn", "error")
