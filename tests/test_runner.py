"""plan() as a table of named cases (pure), and run(): crashes, hangs, deadline, events, deps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from fakes import make_site

from diag.checks.base import (
    NEED_CREDENTIALS,
    NEED_ROOT,
    Check,
    Context,
    profile_need,
    registry_from,
)
from diag.i18n import msg
from diag.model import CheckResult, Fact, Metric, Outcome, Site
from diag.runner import (
    CheckFinished,
    CheckStarted,
    PlanError,
    Progress,
    RunFinished,
    Runner,
    execute,
    plan,
)


class Fake(Check):
    """A configurable check: declared needs/deps, and what its run does."""

    title = msg("fake")
    behaviour: ClassVar[str] = "ok"

    def __init__(
        self,
        cid: str,
        needs: Sequence[str] = (),
        deps: Sequence[str] = (),
        behaviour: str = "ok",
        targets: tuple[str, ...] = ("site",),
        timeout_s: float = 5.0,
        root_optional: bool = False,
    ) -> None:
        self.id = cid  # type: ignore[misc]
        self.needs = tuple(needs)  # type: ignore[misc]
        self.depends_on = tuple(deps)  # type: ignore[misc]
        self.behaviour = behaviour  # type: ignore[misc]
        self._targets = targets
        self.timeout_s = timeout_s  # type: ignore[misc]
        self.root_optional = root_optional  # type: ignore[misc]
        self.seen: dict[str, CheckResult] = {}

    def targets(self, site: Site) -> tuple[str, ...]:
        return self._targets

    async def run(self, ctx: Context) -> Outcome:
        self.seen = dict(ctx.results)
        ctx.progress(0.5, msg("half"))
        if self.behaviour == "raise":
            raise RuntimeError("boom\nsecond line")
        if self.behaviour == "hang":
            await asyncio.sleep(3600)
        if self.behaviour == "own-timeout":
            raise TimeoutError("socket timed out")
        if self.behaviour == "slow":
            await asyncio.sleep(0.2)
        return Outcome(
            "ok",
            msg("fine"),
            {"x": Metric(1.5, "ms")},
            (Fact("fake.deps", sorted(ctx.results), target=self.id),),
        )


SITE = make_site()
SITE_CREDS = make_site(
    devices=[
        {
            "name": "C",
            "kind": "ipc",
            "added_via": "p2p",
            "credentials": {"username": "a", "password": "env:X"},
        }
    ]
)
SITE_STUN = make_site({"stun_servers": [{"host": "127.0.0.1"}]})


@dataclass
class Case:
    name: str
    checks: list[Fake]
    only: list[str] | None = None
    root: bool = False
    site: Site = SITE
    order: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # id -> words of the skip reason
    unknown: tuple[str, ...] = ()


PLAN_CASES = [
    Case("all checks, sorted", [Fake("b"), Fake("a")], order=["a", "b"]),
    Case("dependency first", [Fake("a", deps=["z"]), Fake("z")], order=["z", "a"]),
    Case(
        "chain of dependencies",
        [Fake("a", deps=["b"]), Fake("b", deps=["c"]), Fake("c")],
        order=["c", "b", "a"],
    ),
    Case(
        "only pulls in dependencies",
        [Fake("a", deps=["b"]), Fake("b"), Fake("c")],
        only=["a"],
        order=["b", "a"],
    ),
    Case("only without deps", [Fake("a"), Fake("b")], only=["b"], order=["b"]),
    Case(
        "unknown ids reported",
        [Fake("a")],
        only=["a", "nope", "zzz"],
        order=["a"],
        unknown=("nope", "zzz"),
    ),
    Case(
        "missing dependency ignored",
        [Fake("a", deps=["not-installed"])],
        order=["a"],
    ),
    Case(
        "root needed, not root: skip",
        [Fake("a", needs=[NEED_ROOT])],
        order=["a"],
        skipped={"a": "needs root"},
    ),
    Case("root needed and root", [Fake("a", needs=[NEED_ROOT])], root=True, order=["a"]),
    Case(
        "root optional runs without root",
        [Fake("a", needs=[NEED_ROOT], root_optional=True)],
        order=["a"],
    ),
    Case(
        "profile field missing: skip",
        [Fake("a", needs=[profile_need("stun_servers")])],
        order=["a"],
        skipped={"a": "profile.stun_servers"},
    ),
    Case(
        "profile field present",
        [Fake("a", needs=[profile_need("stun_servers")])],
        site=SITE_STUN,
        order=["a"],
    ),
    Case(
        "credentials needed, none: skip",
        [Fake("a", needs=[NEED_CREDENTIALS])],
        order=["a"],
        skipped={"a": "credentials"},
    ),
    Case(
        "credentials present", [Fake("a", needs=[NEED_CREDENTIALS])], site=SITE_CREDS, order=["a"]
    ),
    Case(
        "no targets: skip",
        [Fake("a", targets=())],
        order=["a"],
        skipped={"a": "nothing to check"},
    ),
    Case("empty registry", [], order=[]),
]


@pytest.mark.parametrize("case", PLAN_CASES, ids=[c.name for c in PLAN_CASES])
def test_plan(case: Case) -> None:
    p = plan(case.site, registry_from(*case.checks), case.only, root=case.root)
    assert p.ids == case.order
    assert p.unknown == case.unknown
    for item in p.items:
        if item.check_id in case.skipped:
            assert item.skip is not None
            assert case.skipped[item.check_id] in item.skip.render()
        else:
            assert item.skip is None, item.skip


def test_plan_is_pure_and_carries_deps_and_timeouts() -> None:
    reg = registry_from(Fake("a", deps=["b"], timeout_s=2.5), Fake("b"))
    p1, p2 = plan(SITE, reg), plan(SITE, reg)
    assert p1 == p2
    assert p1.item("a").depends_on == ("b",)
    assert p1.item("a").timeout_s == 2.5
    assert p1.item("a").targets == ("site",)


def test_plan_cycle_raises() -> None:
    reg = registry_from(Fake("a", deps=["b"]), Fake("b", deps=["c"]), Fake("c", deps=["a"]))
    with pytest.raises(PlanError, match=r"dependency cycle: .*a -> b -> c -> a"):
        plan(SITE, reg)


def test_plan_self_cycle_raises() -> None:
    with pytest.raises(PlanError):
        plan(SITE, registry_from(Fake("a", deps=["a"])))


# --- run() -----------------------------------------------------------------------------------


async def run(
    checks: Sequence[Fake], deadline_s: float = 5.0, only: list[str] | None = None
) -> tuple[dict[str, CheckResult], list[Any], float]:
    reg = registry_from(*checks)
    events: list[Any] = []
    t0 = time.monotonic()
    results = await Runner(reg, deadline_s=deadline_s).run(
        SITE, plan(SITE, reg, only), events.append
    )
    return {r.check_id: r for r in results}, events, time.monotonic() - t0


async def test_raise_and_hang_are_their_own_results_and_others_finish() -> None:
    checks = [
        Fake("crash", behaviour="raise"),
        Fake("hang", behaviour="hang", timeout_s=30),
        Fake("good", behaviour="slow"),
    ]
    res, _, elapsed = await run(checks, deadline_s=1.0)
    assert res["crash"].status == "error"
    assert res["crash"].summary.render() == "check crashed: RuntimeError: boom"
    assert res["crash"].fact("check.exception", "crash").value == "RuntimeError"  # type: ignore[union-attr]
    assert res["hang"].status == "error"
    assert "timed out after 1 s" in res["hang"].summary.render()
    assert res["hang"].fact("check.timeout", "hang").value is True  # type: ignore[union-attr]
    assert res["good"].status == "ok"
    assert res["good"].metrics["x"] == Metric(1.5, "ms")
    # The whole run ends within its deadline (plus scheduling slack).
    assert elapsed < 1.5
    assert 0.9 <= res["hang"].duration_s < 1.5


async def test_per_check_timeout_shorter_than_deadline() -> None:
    res, _, elapsed = await run([Fake("hang", behaviour="hang", timeout_s=0.2)], deadline_s=5)
    assert res["hang"].status == "error"
    assert elapsed < 1.0


async def test_a_checks_own_timeout_error_is_a_crash_not_a_timeout() -> None:
    res, _, _ = await run([Fake("t", behaviour="own-timeout")])
    assert res["t"].status == "error"
    assert res["t"].fact("check.exception", "t").value == "TimeoutError"  # type: ignore[union-attr]
    assert res["t"].fact("check.timeout", "t") is None


async def test_dependency_results_are_passed() -> None:
    a, b = Fake("a", deps=["b", "c"]), Fake("b", behaviour="raise")
    c = Fake("c", behaviour="slow")
    res, _, _ = await run([a, b, c])
    assert set(a.seen) == {"b", "c"}
    assert a.seen["b"].status == "error"
    assert a.seen["c"].status == "ok"
    assert res["a"].fact("fake.deps", "a").value == ["b", "c"]  # type: ignore[union-attr]


async def test_dependant_starts_after_its_dependency_finished() -> None:
    a, b = Fake("a", deps=["b"]), Fake("b", behaviour="slow")
    _, events, _ = await run([a, b])
    kinds = [
        (type(e).__name__, getattr(e, "check_id", None) or getattr(e, "result", None))
        for e in events
    ]
    finished_b = next(
        i for i, e in enumerate(events) if isinstance(e, CheckFinished) and e.result.check_id == "b"
    )
    started_a = next(
        i for i, e in enumerate(events) if isinstance(e, CheckStarted) and e.check_id == "a"
    )
    assert finished_b < started_a, kinds


async def test_progress_events_in_order() -> None:
    _, events, _ = await run([Fake("a"), Fake("s", targets=())])
    per_check: dict[str, list[str]] = {}
    for e in events[:-1]:
        cid = e.result.check_id if isinstance(e, CheckFinished) else e.check_id
        per_check.setdefault(cid, []).append(type(e).__name__)
    assert per_check["a"] == ["CheckStarted", "Progress", "CheckFinished"]
    # A skipped check is finished without starting.
    assert per_check["s"] == ["CheckFinished"]
    assert isinstance(events[-1], RunFinished)
    assert [r.check_id for r in events[-1].results] == ["a", "s"]
    prog = next(e for e in events if isinstance(e, Progress))
    assert prog.fraction == 0.5 and prog.note is not None and prog.note.render() == "half"


async def test_skip_result_carries_reason() -> None:
    res, _, _ = await run([Fake("r", needs=[NEED_ROOT])])
    assert res["r"].status == "skip"
    assert res["r"].summary.render() == "needs root (CAP_NET_RAW)"


async def test_empty_plan_runs() -> None:
    res, events, _ = await run([])
    assert res == {}
    assert len(events) == 1 and isinstance(events[0], RunFinished)


async def test_execute_returns_a_run_with_verdicts() -> None:
    site = make_site(devices=[{"name": "C", "kind": "ipc", "added_via": "p2p"}])
    run_ = await execute(
        site, registry_from(Fake("a"), Fake("h", behaviour="hang")), deadline_s=0.5
    )
    assert [c.check_id for c in run_.checks] == ["a", "h"]
    assert [v.device for v in run_.devices] == ["C"]
    assert run_.duration_s < 1.5
    assert run_.started_at.tzinfo is not None
