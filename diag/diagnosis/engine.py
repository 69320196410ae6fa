"""Turns check results into verdicts: per-device state, app icon and ranked causes, and site causes.

The engine evaluates the rule table (``rules.RULES`` plus third-party rules from the ``diag.rules``
entry-point group) on an index of the run's facts. Site rules give site-wide causes; device rules
give each device its own. A device's state comes from what the checks saw of it (LAN reachability,
the platform's view of its heartbeat) and from the effect of its causes; site causes that can turn
it grey (or slow) are attached to it when its state depends on them, so "the platform is down" is
the top cause on every P2P device it greys. Ranking: a device's own strong cause that accounts for
its state first, then confidence, severity and catalogue order, so the order is stable from run to
run.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points

from diag import vocab
from diag.checks.base import LoadError
from diag.diagnosis.catalog import CATALOG, EFFECT_RANK, P2P_VIA, Effect
from diag.diagnosis.facts import Facts
from diag.diagnosis.history import SITE, History
from diag.diagnosis.rules import RULES, Env, Hit, Rule
from diag.diagnosis.unmeasured import missing_evidence, unmeasured, with_gaps
from diag.i18n import Message, msg
from diag.model import (
    STATE_RANK,
    Cause,
    CheckResult,
    Device,
    DeviceState,
    Fact,
    Icon,
    Site,
    Verdict,
)

ENTRY_POINT_GROUP = "diag.rules"
# A cause at or above this confidence counts as "the" explanation: it sets the device's state,
# and a healthy site must have none.
STRONG = 0.5
# An explained-away cause stays as a note at most this confident: over the fault campaign of
# 2026-12-01 such notes were right 0 times in 132 (docs/diagnosis.md, reliability table), so
# they belong in the lowest bin (0.0-0.1), not at 0.1 (the 0.1-0.2 bin: right 10-20 %).
EXPLAINED_CAP = 0.05
_ORDER = {cid: i for i, cid in enumerate(CATALOG)}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    errors: tuple[LoadError, ...] = ()


def _as_rules(obj: object) -> list[Rule]:
    if isinstance(obj, Rule):
        return [obj]
    if callable(obj) and not isinstance(obj, type):
        obj = obj()
        if isinstance(obj, Rule):
            return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        items = list(obj)
        if all(isinstance(r, Rule) for r in items):
            return items
    raise TypeError("expected a diag.diagnosis.rules.Rule, an iterable of them, or a factory")


def load_rules(eps: list[EntryPoint] | None = None) -> RuleSet:
    """The built-in rules plus every rule in the ``diag.rules`` entry-point group.

    An entry point names a ``Rule``, an iterable of rules, or a function returning either. Rules
    must use catalogue cause ids (reports and the JSON schema name causes by those only); a
    plugin that fails to load is an error entry, never fatal.
    """
    if eps is None:
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
    rules = list(RULES)
    errors: list[LoadError] = []
    for ep in sorted(eps, key=lambda e: e.name):
        try:
            found = _as_rules(ep.load())
            for r in found:
                if r.cause not in CATALOG:
                    raise ValueError(f"unknown cause id {r.cause!r} (see docs/diagnosis.md)")
            rules.extend(found)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            # BaseException: a plugin that calls sys.exit() on import must not end diag.
            errors.append(LoadError(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
    return RuleSet(tuple(rules), tuple(errors))


@functools.cache
def installed_rules() -> RuleSet:
    """``load_rules()`` once per process: entry points do not change while we run."""
    return load_rules()


def icon_for(state: DeviceState, observed_grey: bool | None = None) -> Icon:
    """The app shows a device grey when it has no connection to it (or the installer saw it so)."""
    return "grey" if state == "offline" or observed_grey is True else "colour"


@dataclass(frozen=True)
class _Found:
    cause: Cause
    effect: Effect
    # The symptoms this occurrence observed (catalog.SYMPTOMS ids).
    shows: frozenset[str] = frozenset()
    # What this occurrence accounts for (the catalogue's predictions, or the hit's narrower ones).
    predicts: frozenset[str] = frozenset()


def _evaluate(rule: Rule, env: Env, device: Device | None) -> _Found | None:
    try:
        hit: Hit | None = rule.when(env, device)
        return None if hit is None else _found(rule, hit, env, device)
    except KeyboardInterrupt:
        raise
    except BaseException:
        # One broken rule (often a plugin's: it raised, even SystemExit, or returned a Hit of
        # the wrong shape) must not lose the whole diagnosis, nor end diag.
        _log.exception("rule %s/%s failed", rule.cause, rule.name)
        return None


def _found(rule: Rule, hit: Hit, env: Env, device: Device | None) -> _Found:
    """The cause a hit gives; raises TypeError on a hit the reports could not show."""
    if not isinstance(hit, Hit):
        raise TypeError(f"returned {type(hit).__name__}, not a Hit")
    info = CATALOG[rule.cause]
    conf = rule.confidence if hit.confidence is None else hit.confidence
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not math.isfinite(conf):
        raise TypeError(f"confidence {conf!r} is not a number")
    conf = round(max(0.0, min(1.0, conf)), 2)
    if hit.detail is not None and not isinstance(hit.detail, Message):
        raise TypeError(f"detail is {type(hit.detail).__name__}, not a Message")
    if hit.effect is not None and hit.effect not in EFFECT_RANK:
        raise TypeError(f"effect {hit.effect!r} is not one of {', '.join(EFFECT_RANK)}")
    shows = rule.shows if hit.shows is None else hit.shows
    if isinstance(shows, str) or not all(isinstance(x, str) for x in shows):
        raise TypeError("shows is not a tuple of symptom ids")
    predicts = frozenset(info.predicts)
    if hit.predicts is not None:
        if isinstance(hit.predicts, str) or not all(isinstance(x, str) for x in hit.predicts):
            raise TypeError("predicts is not a tuple of symptom ids")
        predicts &= frozenset(hit.predicts)  # narrower only: a hit cannot claim more
    if hit.evidence is not None:
        if not isinstance(hit.evidence, tuple | list) or not all(
            isinstance(f, Fact) for f in hit.evidence
        ):
            raise TypeError("evidence is not a tuple of Facts")
        evidence = tuple(hit.evidence)
    else:
        target = device.name if device is not None else None
        evidence = env.facts.pick(rule.keys, target)
        if device is not None:
            # Site facts a device rule reads (e.g. the gateway) belong to its evidence too.
            evidence += tuple(f for f in env.facts.pick(rule.keys, "") if f not in evidence)
    if hit.fix is not None and (
        not isinstance(hit.fix, tuple | list) or not all(isinstance(x, str) for x in hit.fix)
    ):
        raise TypeError("fix is not a tuple of str")
    fixes = tuple(hit.fix) if hit.fix is not None else (rule.fix or info.fix)
    cause = Cause(
        id=rule.cause,
        confidence=conf,
        evidence=evidence,
        fix=tuple(msg(f) for f in fixes),
        detail=hit.detail,
    )
    return _Found(cause, hit.effect or info.effect, frozenset(shows), predicts)


def _merge(found: dict[str, _Found], new: _Found | None) -> None:
    if new is None:
        return
    old = found.get(new.cause.id)
    if old is None or new.cause.confidence > old.cause.confidence:
        found[new.cause.id] = new


def _rank(items: Iterable[_Found]) -> list[_Found]:
    return sorted(
        items,
        key=lambda f: (-f.cause.confidence, -EFFECT_RANK[f.effect], _ORDER.get(f.cause.id, 99)),
    )


def explains(d: _Found, c: _Found) -> bool:
    """True when the strong cause ``d`` accounts for every symptom ``c`` observed.

    ``d`` must predict all of ``c``'s observed symptoms; when ``c`` predicts all of ``d``'s too
    (the facts cannot tell them apart), the likelier one (higher confidence) explains the other.
    A cause that observed no symptom (a plugin's that declares none) is never explained away.
    """
    if d.cause.id == c.cause.id or d.cause.confidence < STRONG or not c.shows:
        return False
    if not c.shows <= d.predicts:
        return False
    mutual = d.shows <= c.predicts
    return not mutual or d.cause.confidence > c.cause.confidence


def _arbitrate(items: Sequence[_Found], by: Sequence[_Found] = ()) -> dict[str, str]:
    """Which of ``items`` are explained away, and by which cause id: ``{explained: explainer}``.

    Rivals are ``items`` themselves and ``by`` (standing causes of a wider scope: the site's for a
    device). A cause that is itself explained away explains nothing; iterated to a fixed point
    (bounded: a cycle of mutual explanations settles on the likelier ones).
    """
    out: dict[str, str] = {}
    for _ in range(len(items) + 1):
        standing = [f for f in items if f.cause.id not in out] + list(by)
        new: dict[str, str] = {}
        for c in items:
            d = next((d for d in _rank(standing) if explains(d, c)), None)
            if d is not None:
                new[c.cause.id] = d.cause.id
        if new == out:
            break
        out = new
    return out


def _demote(f: _Found) -> _Found:
    """An explained-away site cause stays as a note (the other reading, named second)."""
    return replace(f, cause=replace(f.cause, confidence=min(f.cause.confidence, EXPLAINED_CAP)))


def _worse(a: DeviceState, b: DeviceState) -> DeviceState:
    return a if STATE_RANK[a] >= STATE_RANK[b] else b


_EFFECT_STATE: dict[Effect, DeviceState] = {
    "none": "online",
    "degraded": "degraded",
    "offline": "offline",
}


def _device_symptoms(d: Device, facts: Facts, site: Site) -> frozenset[str]:
    """What the checks show of the device itself, as symptoms (site causes that predict one of
    them are attached to the device)."""
    out: set[str] = set()
    reach = facts.flag("device.reachable", d.name)
    if reach is False:
        out.add("device.silent")
    if d.added_via in P2P_VIA and facts.flag("device.platform_online", d.name) is False:
        if reach is not False:
            out.add("device.no-heartbeat")
    loss = facts.num("device.icmp_loss_pct", d.name)
    if loss is not None and reach is not False and loss > site.thresholds.loss_pct:
        out.add("device.lan-loss")
    if d.app_shows_grey is True:
        out.add("device.app-grey")
    return frozenset(out)


def _device_state(
    d: Device, facts: Facts, own: Sequence[_Found], site: Sequence[_Found]
) -> DeviceState:
    """What the app would show: from direct observations, then the causes' effects."""
    reach = facts.flag("device.reachable", d.name)
    platform = facts.flag("device.platform_online", d.name) if d.added_via in P2P_VIA else None
    state: DeviceState = "online"
    if platform is False or (reach is False and platform is not True):
        state = "offline"
    elif reach is False and platform is True:
        # The platform hears it, the laptop does not: the app works, the LAN view disagrees.
        state = "degraded"
    for f in own:
        if f.cause.confidence >= STRONG:
            state = _worse(state, _EFFECT_STATE[f.effect])
    for f in site:
        if f.cause.confidence >= STRONG and d.added_via in CATALOG[f.cause.id].affects:
            effect = _EFFECT_STATE[f.effect]
            if platform is True and effect == "offline":
                # The platform sees its heartbeat right now: the site problem slows it at most.
                effect = "degraded"
            state = _worse(state, effect)
    return state


def diagnose(
    site: Site,
    results: Sequence[CheckResult],
    now: dt.datetime | None = None,
    history: History | None = None,
    rules: Sequence[Rule] | None = None,
) -> tuple[tuple[Verdict, ...], tuple[Cause, ...]]:
    """Verdicts for every device of ``site`` and the site-wide causes, from the checks' results.

    ``now`` is the time of the run (share expiry, history windows); it defaults to the history's
    clock, then the wall clock. ``rules`` replaces the installed rule set (tests).
    """
    if now is None:
        now = history.now if history is not None else dt.datetime.now(dt.UTC)
    table = tuple(rules) if rules is not None else installed_rules().rules
    env = Env(site=site, facts=Facts(results), now=now, history=history)

    site_found: dict[str, _Found] = {}
    dev_found: dict[str, dict[str, _Found]] = {d.name: {} for d in site.devices}
    for phase in sorted({r.phase for r in table}):
        if phase > 1:
            env = Env(
                site=site,
                facts=env.facts,
                now=now,
                history=history,
                found={
                    **{n: tuple(f.cause for f in fs.values()) for n, fs in dev_found.items()},
                    SITE: tuple(f.cause for f in site_found.values()),
                },
            )
        for rule in (r for r in table if r.phase == phase):
            if rule.cause not in CATALOG:
                continue
            if rule.scope == "site":
                _merge(site_found, _evaluate(rule, env, None))
                continue
            for d in site.devices:
                if d.added_via in rule.applies_to:
                    _merge(dev_found[d.name], _evaluate(rule, env, d))

    site_all = list(site_found.values())
    site_expl = _arbitrate(site_all)
    standing = [f for f in site_all if f.cause.id not in site_expl]
    strong_site = [f for f in standing if f.cause.confidence >= STRONG]
    site_ranked = _rank(standing + [_demote(f) for f in site_all if f.cause.id in site_expl])
    strong_ids = {f.cause.id for f in strong_site}
    verdicts: list[Verdict] = []
    for d in site.devices:
        own_all = list(dev_found[d.name].values())
        expl = _arbitrate(own_all, strong_site)
        # Explained by a site cause: that cause is the device's (attached below), no second one
        # for the same symptoms. Explained by another of its own causes: kept as a note.
        own = _rank(
            [f for f in own_all if f.cause.id not in expl]
            + [_demote(f) for f in own_all if expl.get(f.cause.id) not in (None, *strong_ids)]
        )
        # Fail closed: what could not be measured turns the state into "unknown" (never online).
        gaps = unmeasured(d, env.facts, results)
        state = with_gaps(_device_state(d, env.facts, own, site_ranked), gaps)
        symptoms = _device_symptoms(d, env.facts, site) | {
            sym for f in own_all if f.cause.id in expl for sym in f.shows
        }
        attached = list(own)
        if state != "online":
            for f in strong_site:
                info = CATALOG[f.cause.id]
                by_effect = (
                    d.added_via in info.affects
                    and EFFECT_RANK[f.effect] >= EFFECT_RANK["degraded"]
                    and (state == "degraded" or f.effect == "offline")
                )
                # A site cause that predicts what is seen on the device accounts for it.
                by_symptom = bool(symptoms & f.predicts) and (
                    d.added_via in info.affects or f.cause.id in expl.values()
                )
                if by_effect or by_symptom:
                    attached.append(f)
        # The device's own strong cause that accounts for its state comes before any site cause:
        # a dead camera is grey whatever the DNS does.
        explaining = [
            f for f in own if f.cause.confidence >= STRONG and _EFFECT_STATE[f.effect] == state
        ]
        ranked = _rank(explaining) + _rank(f for f in attached if f not in explaining)
        icon = icon_for(state, d.app_shows_grey)
        causes = [f.cause for f in ranked]
        # An unknown device's why is what could not be measured (``unmeasured``), not a cause.
        if (state not in ("online", "unknown") or icon == "grey") and not any(
            c.confidence >= STRONG for c in causes
        ):
            # Never silent on a grey icon: say what was measured and what it rules out.
            causes.insert(0, _unexplained(d, env, state, symptoms))
        verdicts.append(
            Verdict(
                device=d.name,
                kind=d.kind,
                added_via=d.added_via,
                state=state,
                icon=icon,
                causes=tuple(causes),
                # What was not measured: why the state is unknown, and for every state the
                # evidence a device cause needs that is missing (never read as "all clear").
                unmeasured=gaps + missing_evidence(d, env.facts),
            )
        )
    return (
        tuple(replace(v, causes=tuple(calibrated(c) for c in v.causes)) for v in verdicts),
        tuple(calibrated(f.cause) for f in site_ranked),
    )


# Calibration (docs/diagnosis.md, "Calibration"): a rule's confidence is the strength of its
# evidence; what is reported is how often a cause of that strength was right over the fault
# campaign. The 2026-12-02 campaign (240 runs) found the strong causes right 99-100 % of the time
# at a mean strength of 0.86-0.90: each point of strength above STRONG is worth 1.2 points of
# probability, up to a cap below certainty (a site is messier than the lab); a rule that claims
# more keeps its own figure. Below STRONG (notes) the
# campaign's rates match (0.05 notes right 0 %, 0.3 notes 17-22 %): unchanged, so the 0.5 line,
# the ranking and every arbitration are the same before and after.
CALIBRATION_SLOPE = 1.2
CALIBRATION_CAP = 0.97


def calibrated(c: Cause) -> Cause:
    """``c`` with its evidence strength mapped to the probability it is right (monotone)."""
    if c.confidence <= STRONG:
        return c
    p = min(CALIBRATION_CAP, STRONG + (c.confidence - STRONG) * CALIBRATION_SLOPE)
    return replace(c, confidence=round(max(p, c.confidence), 2))


UNEXPLAINED = "unexplained"
_UNEXPLAINED_EVIDENCE = (
    "device.reachable",
    "device.auth",
    "device.settings",
    "device.gateway_ok",
    "device.platform_online",
    "device.platform_last_seen_s",
    "device.icmp_loss_pct",
)


def _unexplained(d: Device, env: Env, state: DeviceState, symptoms: frozenset[str]) -> Cause:
    """The ``unexplained`` verdict: what was measured, what it rules out, what to do next."""
    f = env.facts
    reach = f.flag("device.reachable", d.name)
    if reach is True:
        lan = msg("it answers on the local network")
    elif reach is False:
        lan = msg("it does not answer on the local network")
    else:
        lan = msg("its local network reachability was not measured")
    if d.added_via in P2P_VIA:
        heard = f.flag("device.platform_online", d.name)
        if heard is False:
            platform = msg("the platform hears no heartbeat from it")
        elif heard is True:
            platform = msg("the platform hears its heartbeat")
        else:
            platform = msg("the platform's view of it was not measured")
    else:
        platform = msg("it is added by IP address")
    # Ruled out: every catalogue cause that would account for what is seen on it, or (nothing
    # seen) every cause of a device's own; none was found at or above 0.5.
    ruled = [
        c.id
        for c in CATALOG.values()
        if c.id not in (UNEXPLAINED, "phone-side")
        and ((symptoms & set(c.predicts)) if symptoms else c.scope == "device")
    ]
    notes: list[Message] = []
    if "device.no-heartbeat" in symptoms and f.num("nat.mapping_lifetime_s") is None:
        notes.append(
            msg(
                "Not measured in a quick run: the NAT's UDP mapping lifetime (press d / run --deep)"
            )
        )
    detail = msg(
        "{device} is {state}: {lan}, {platform}. No measured cause accounts for it; ruled out: "
        "{ruled}.",
        device=d.name,
        state=msg(vocab.STATE_TAG.get(state, state)),
        lan=lan,
        platform=platform,
        ruled=", ".join(ruled) or "-",
    )
    if notes:
        detail = msg("{detail} {note}", detail=detail, note=notes[0])
    evidence = f.pick(_UNEXPLAINED_EVIDENCE, d.name) + f.pick(
        ("wan.internet_reachable", "p2p.reachable"), None
    )
    return Cause(
        id=UNEXPLAINED,
        confidence=STRONG,
        evidence=evidence,
        fix=CATALOG[UNEXPLAINED].fix_messages(),
        detail=detail,
    )
