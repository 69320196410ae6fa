"""Plans which checks run on which targets (pure), then runs them concurrently under one deadline.

``plan()`` is a pure function of the site, the registry and what is known about the environment
(root or not, ``--only``): it orders checks so that dependencies come first and turns unmet needs
into skips with a reason. ``run()`` executes a plan: every check is a task that waits for the
checks it depends on, then runs under ``min(its own timeout, the run's deadline)``. An exception or
a timeout becomes that check's result; the others go on; a partial run is always returned.

Whatever a check does, it is that check's result: any exception (SystemExit and a plugin's own
BaseException subclasses too; only Ctrl-C's KeyboardInterrupt stops the run), a return value that
is no ``Outcome``, a ``targets()`` that raises. The deadline holds for checks that await: asyncio
cannot pre-empt a check that blocks the event loop (``time.sleep``, a blocking socket call), so the
run overruns by as long as it blocks; that check's result then says it blocked the run (status
error, fact ``check.blocked_s``) and the checks it starved end as timed out, none is lost.
Blocking code belongs in ``Context.run_blocking`` (a thread), which the deadline does bound.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from diag import __version__
from diag.checks.base import Check, Context, Progress, Registry, World
from diag.i18n import Message, msg
from diag.model import STATUSES, CheckResult, Fact, Metric, Outcome, Run, Site, Status
from diag.profiles import placeholders

T = TypeVar("T")

# The whole run must end in this many seconds even when checks hang: an installer waits for it.
DEFAULT_DEADLINE_S = 30.0
# What is left of the deadline for a check that starts late must still let it say something, s.
MIN_CHECK_BUDGET_S = 0.05
# A result that arrives this long after the check's budget means the check held the event loop
# (asyncio could not cancel it), s: well above scheduling jitter on a loaded 2-core machine and
# above the clean-up a cancelled check may do before it returns what it has.
BLOCKED_SLACK_S = 1.0


@dataclass(frozen=True)
class PlanItem:
    check_id: str
    targets: tuple[str, ...]
    depends_on: tuple[str, ...]
    timeout_s: float
    skip: Message | None = None
    # Set when planning the check already failed (its targets() raised): it runs as that error.
    error: Message | None = None


@dataclass(frozen=True)
class Plan:
    items: tuple[PlanItem, ...]
    unknown: tuple[str, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [i.check_id for i in self.items]

    def item(self, check_id: str) -> PlanItem:
        return next(i for i in self.items if i.check_id == check_id)


class PlanError(ValueError):
    pass


def plan(
    site: Site,
    registry: Registry,
    only: Sequence[str] | None = None,
    root: bool = False,
) -> Plan:
    """Which checks run, on what, in which order; pure (no I/O).

    ``only`` selects checks by id; their dependencies are pulled in. Unknown ids in ``only`` are
    returned in ``Plan.unknown`` for the caller to report. Dependency cycles raise ``PlanError``.
    """
    wanted: list[str] = list(registry.ids) if not only else [c for c in only if c in registry]
    unknown = tuple(c for c in (only or ()) if c not in registry)
    # Pull in dependencies of the selected checks (a dependency missing from the registry is
    # ignored: the check sees no result for it and must cope, as it must with a failed one).
    selected: set[str] = set()
    stack = list(wanted)
    while stack:
        cid = stack.pop()
        if cid in selected or cid not in registry:
            continue
        selected.add(cid)
        stack.extend(registry[cid].depends_on)

    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(cid: str, path: tuple[str, ...]) -> None:
        if state.get(cid) == 2:
            return
        if state.get(cid) == 1:
            raise PlanError("dependency cycle: " + " -> ".join((*path, cid)))
        state[cid] = 1
        for dep in sorted(registry[cid].depends_on):
            if dep in selected:
                visit(dep, (*path, cid))
        state[cid] = 2
        order.append(cid)

    for cid in sorted(selected):
        visit(cid, ())

    items = []
    for cid in order:
        check = registry[cid]
        try:
            missing = check.unmet_needs(site, root)
            targets = tuple(check.targets(site))
        except Exception as exc:
            # A plugin's broken targets() is that check's error, not the end of the run.
            items.append(
                PlanItem(
                    check_id=cid,
                    targets=(),
                    depends_on=tuple(d for d in check.depends_on if d in selected),
                    timeout_s=_timeout(check),
                    error=msg("check crashed: {error}", error=_describe(exc)),
                )
            )
            continue
        skip: Message | None = None
        if getattr(check, "names_platform", False) and placeholders(site.profile):
            # Reserved names (*.example, *.invalid, ...) cannot resolve: probing them would read
            # as the site's DNS failing. Not a finding, a profile to choose.
            skip = msg("the profile names no real platform: choose your vendor's profile")
        elif "root" in missing:
            skip = msg("needs root (CAP_NET_RAW)")
        elif missing:
            skip = msg("needs {needs}", needs=", ".join(missing))
        elif not targets:
            skip = msg("nothing to check on this site")
        items.append(
            PlanItem(
                check_id=cid,
                targets=targets,
                depends_on=tuple(d for d in check.depends_on if d in selected),
                timeout_s=_timeout(check),
                skip=skip,
            )
        )
    return Plan(tuple(items), unknown)


def _timeout(check: Check) -> float:
    """The check's ``timeout_s``; a plugin's unusable value (a string, NaN) means the default."""
    try:
        value = float(check.timeout_s)
    except (TypeError, ValueError):
        return DEFAULT_DEADLINE_S
    return value if value > 0 and math.isfinite(value) else DEFAULT_DEADLINE_S


@dataclass(frozen=True)
class CheckStarted:
    check_id: str


@dataclass(frozen=True)
class CheckFinished:
    result: CheckResult


@dataclass(frozen=True)
class RunFinished:
    results: tuple[CheckResult, ...]
    duration_s: float


Event = CheckStarted | Progress | CheckFinished | RunFinished
EventSink = Callable[[Event], None]


@dataclass
class Runner:
    """Executes plans; per-run state lives in ``run()``, the runner itself is reusable."""

    registry: Registry
    world: World = field(default_factory=World)
    deadline_s: float = DEFAULT_DEADLINE_S
    deep: bool = False

    async def run(
        self, site: Site, the_plan: Plan, on_event: EventSink | None = None
    ) -> tuple[CheckResult, ...]:
        world = self.world
        start = world.monotonic()
        deadline = start + self.deadline_s
        emit: EventSink = on_event or (lambda _e: None)
        tasks: dict[str, asyncio.Task[CheckResult]] = {}
        results: dict[str, CheckResult] = {}

        async def one(item: PlanItem) -> CheckResult:
            deps: dict[str, CheckResult] = {}
            for dep in item.depends_on:
                # A dependency's failure is its own result; waiting for it never raises here.
                # (Should its task itself have died, the dependant runs without its result.)
                try:
                    deps[dep] = await tasks[dep]
                except asyncio.CancelledError:
                    raise
                except Exception:
                    continue
            if item.error is not None:
                res = CheckResult(
                    item.check_id,
                    "error",
                    item.error,
                    facts=(Fact("check.exception", "plan", target=item.check_id),),
                )
                results[item.check_id] = res
                emit(CheckFinished(res))
                return res
            if item.skip is not None:
                res = CheckResult(item.check_id, "skip", item.skip, targets=item.targets)
                results[item.check_id] = res
                emit(CheckFinished(res))
                return res
            emit(CheckStarted(item.check_id))
            res = await self._run_one(
                self.registry[item.check_id], site, item, deps, deadline, emit
            )
            results[item.check_id] = res
            emit(CheckFinished(res))
            return res

        for item in the_plan.items:
            tasks[item.check_id] = asyncio.create_task(one(item), name=f"check-{item.check_id}")
        try:
            if tasks:  # asyncio.wait() refuses an empty set: a plan may have no checks
                await asyncio.wait(tasks.values())
        except asyncio.CancelledError:
            for t in tasks.values():
                t.cancel()
            raise
        ordered = tuple(results[i.check_id] for i in the_plan.items if i.check_id in results)
        emit(RunFinished(ordered, world.monotonic() - start))
        return ordered

    async def _run_one(
        self,
        check: Check,
        site: Site,
        item: PlanItem,
        deps: Mapping[str, CheckResult],
        run_deadline: float,
        emit: EventSink,
    ) -> CheckResult:
        world = self.world
        t0 = world.monotonic()
        budget = max(MIN_CHECK_BUDGET_S, min(item.timeout_s, run_deadline - t0))
        ctx = Context(
            site=site,
            check_id=item.check_id,
            targets=item.targets,
            deadline=t0 + budget,
            results=deps,
            world=world,
            deep=self.deep,
            on_progress=emit,
        )
        status: Status
        metrics: Mapping[str, Metric] = {}
        facts: tuple[Fact, ...] = ()
        try:
            out = await asyncio.wait_for(_contained(check.run(ctx)), timeout=budget)
            status, summary, metrics, facts = _usable(out)
            held = world.monotonic() - t0
            if held > budget + BLOCKED_SLACK_S:
                # The result came after the check's budget: only code that held the event loop
                # (time.sleep, a blocking socket) gets past wait_for. Its data is kept, but the
                # run says which check stalled every other one.
                status = "error"
                summary = msg(
                    "blocked the run for {seconds} s beyond its {budget} s budget",
                    seconds=round(held - budget, 2),
                    budget=round(budget, 2),
                )
                facts = (
                    *facts,
                    Fact("check.blocked_s", round(held - budget, 3), "s", item.check_id),
                )
        except TimeoutError as exc:
            ours = isinstance(exc.__cause__, asyncio.CancelledError)
            if not ours and world.monotonic() - t0 < budget * 0.9:
                # The check's own code raised TimeoutError (a socket timeout) well before its
                # budget ran out: that is a crash of the check, not the runner's timeout.
                # (wait_for's own TimeoutError is raised from the CancelledError it caused.)
                status = "error"
                summary = msg("check crashed: {error}", error=_describe(exc))
                facts = (Fact("check.exception", type(exc).__name__, target=item.check_id),)
            else:
                status = "error"
                summary = msg("timed out after {seconds} s", seconds=round(budget, 2))
                facts = (Fact("check.timeout", True, target=item.check_id),)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the run itself is being cancelled
            # The check raised CancelledError on its own (nobody cancelled it): a crash.
            status = "error"
            summary = msg("check crashed: {error}", error=_describe(exc))
            facts = (Fact("check.exception", type(exc).__name__, target=item.check_id),)
        except KeyboardInterrupt:
            raise  # Ctrl-C: the person wants diag to stop
        except BaseException as exc:
            # Exception, but also SystemExit, GeneratorExit or a plugin's own BaseException
            # subclass: one check must not end diag.
            if isinstance(exc, _Escaped):
                exc = exc.original
            status = "error"
            summary = msg("check crashed: {error}", error=_describe(exc))
            facts = (Fact("check.exception", type(exc).__name__, target=item.check_id),)
        return CheckResult(
            check_id=item.check_id,
            status=status,
            summary=summary,
            metrics=metrics,
            facts=facts,
            duration_s=round(world.monotonic() - t0, 4),
            targets=item.targets,
        )


class _Escaped(Exception):
    """Carries a check's SystemExit out of the task that ran it."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


async def _contained(coro: Coroutine[Any, Any, T]) -> T:
    """Awaits a check; its SystemExit leaves as an ordinary exception.

    asyncio re-raises a task's SystemExit straight out of the event loop (past every ``except``
    around the await), so ``sys.exit()`` in a plugin would end diag with no output at all.
    KeyboardInterrupt passes: that is Ctrl-C, the person wants diag to stop.
    """
    try:
        return await coro
    except SystemExit as exc:
        raise _Escaped(exc) from exc


class BadOutcome(TypeError):
    """A check returned something the runner cannot use as its result."""


def _usable(
    out: object,
) -> tuple[Status, Message, Mapping[str, Metric], tuple[Fact, ...]]:
    """The parts of a check's ``Outcome``; raises ``BadOutcome`` when it is none.

    A plugin's odd parts are mended where the meaning is clear (a plain-string summary), and
    entries that are no ``Metric``/``Fact`` are dropped so the rest of its data still counts.
    """
    if not isinstance(out, Outcome):
        raise BadOutcome(f"returned {type(out).__name__}, not an Outcome")
    if out.status not in STATUSES:
        raise BadOutcome(f"returned status {str(out.status)[:40]!r}, not one of the statuses")
    summary = out.summary if isinstance(out.summary, Message) else Message(str(out.summary))
    metrics = (
        {str(k): m for k, m in out.metrics.items() if isinstance(m, Metric)}
        if isinstance(out.metrics, Mapping)
        else {}
    )
    facts = (
        tuple(f for f in out.facts if isinstance(f, Fact))
        if isinstance(out.facts, list | tuple)
        else ()
    )
    return out.status, summary, metrics, facts


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    # Bounded: exception text can carry a hostile banner; the report escapes it, we keep it short.
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


async def execute(
    site: Site,
    registry: Registry,
    only: Sequence[str] | None = None,
    *,
    deadline_s: float = DEFAULT_DEADLINE_S,
    world: World | None = None,
    on_event: EventSink | None = None,
    deep: bool = False,
    lang: str | None = None,
    history: Any = None,
) -> Run:
    """Plans, runs and diagnoses: the whole of ``diag run`` without the terminal."""
    from diag.diagnosis import diagnose

    world = world or World()
    started = world.now()
    t0 = world.monotonic()
    the_plan = plan(site, registry, only, root=world.is_root())
    runner = Runner(registry, world=world, deadline_s=deadline_s, deep=deep)
    results = await runner.run(site, the_plan, on_event)
    verdicts, site_causes = diagnose(site, results, now=started, history=history)
    return Run(
        site=site.name,
        started_at=started.astimezone(dt.UTC),
        duration_s=round(world.monotonic() - t0, 4),
        checks=results,
        devices=verdicts,
        site_causes=site_causes,
        lang=lang or site.lang,
        site_path=site.path,
        tool_version=__version__,
    )
