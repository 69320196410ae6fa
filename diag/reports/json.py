"""A run as JSON (SPEC section 5) and back; the shape is pinned by ``run.schema.json``.

Every human-readable string is written rendered in the run's language *and* as its message
(template + arguments) under ``*_msg``, so ``diag report --from RUN.json --lang pl`` can re-render
a saved run in the other language without re-running anything.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diag.fileio import write_atomic
from diag.i18n import Message
from diag.model import Cause, CheckResult, Fact, Metric, Run, Verdict

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "run.schema.json"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a non-finite measurement is written as null (not measured).

    Values come from checks (and plugins), so anything may arrive: an int too big for a float
    (and for ``str()`` beyond 4300 digits) is null too; text that is not valid Unicode (lone
    surrogates from undecodable bytes) gets its bad characters escaped; bytes are decoded;
    any other object becomes its text. The result always encodes as UTF-8 JSON.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value if abs(value) <= _MAX_JSON_INT else None
    if isinstance(value, str):
        return _unicode(value)
    if isinstance(value, bytes | bytearray):
        return _unicode(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, Mapping):
        return {_unicode(str(k)): _finite(v) for k, v in value.items()}
    return _unicode(str(value))


# Larger ints are not measurements; a float cannot hold them and other JSON readers choke.
_MAX_JSON_INT = 2**1023


def _unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _scalar(value: Any) -> Any:
    """A metric value as the schema wants it (a JSON scalar); a list or table becomes its text."""
    value = _finite(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)[:300]
    return value


def _fact(f: Fact) -> dict[str, Any]:
    return {"key": f.key, "value": _finite(f.value), "unit": f.unit, "target": f.target}


def _cause(c: Cause, lang: str) -> dict[str, Any]:
    from diag.diagnosis.catalog import title_of

    out: dict[str, Any] = {
        "id": c.id,
        "confidence": round(c.confidence, 3),
        "title": title_of(c.id).render(lang),
        "evidence": [_fact(f) for f in c.evidence],
        "fix": [m.render(lang) for m in c.fix],
        "fix_msg": [m.to_json() for m in c.fix],
    }
    if c.detail is not None:
        out["detail"] = c.detail.render(lang)
        out["detail_msg"] = c.detail.to_json()
    return out


def _check(r: CheckResult, lang: str) -> dict[str, Any]:
    return {
        "id": r.check_id,
        "status": r.status,
        "summary": r.summary.render(lang),
        "summary_msg": r.summary.to_json(),
        "metrics": {k: {"value": _scalar(m.value), "unit": m.unit} for k, m in r.metrics.items()},
        "facts": [_fact(f) for f in r.facts],
        "targets": list(r.targets),
        "duration_s": max(0.0, r.duration_s),
    }


def _verdict(v: Verdict, lang: str) -> dict[str, Any]:
    return {
        "name": v.device,
        "kind": v.kind,
        "added_via": v.added_via,
        "state": v.state,
        "icon": v.icon,
        "causes": [_cause(c, lang) for c in v.causes],
        "unmeasured": [m.render(lang) for m in v.unmeasured],
        "unmeasured_msg": [m.to_json() for m in v.unmeasured],
    }


def run_to_dict(run: Run, lang: str | None = None) -> dict[str, Any]:
    lang = lang or run.lang
    # One pass over everything: message arguments, names and rendered text carry values from
    # outside too (a NaN argument, undecodable bytes), not only facts and metrics.
    out: dict[str, Any] = _finite(_run_dict(run, lang))
    return out


def _run_dict(run: Run, lang: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "diag", "version": run.tool_version},
        "lang": lang,
        "started_at": run.started_at.isoformat(),
        "duration_s": run.duration_s,
        "site": {
            "name": run.site,
            "path": run.site_path,
            "worst_state": run.worst_state,
            "causes": [_cause(c, lang) for c in run.site_causes],
        },
        "devices": [_verdict(v, lang) for v in run.devices],
        "checks": [_check(c, lang) for c in run.checks],
    }


def dumps(run: Run, lang: str | None = None) -> str:
    # allow_nan=False: _finite() removed them; should one slip through, fail loudly, not write
    # a file other JSON parsers reject.
    from diag.text import json_escape

    # json_escape: C1 controls, bidi overrides and line separators from outside (device XML,
    # banners) as \uXXXX escapes, not raw in the file; the value reads back the same.
    return json_escape(
        json.dumps(
            run_to_dict(run, lang), indent=2, ensure_ascii=False, default=str, allow_nan=False
        )
    )


def write(run: Run, path: str | Path, lang: str | None = None) -> None:
    """Writes atomically (temp file + rename) so a reader never sees half a run."""
    path = Path(path)
    write_atomic(path, (dumps(run, lang) + "\n").encode("utf-8"), tmp_name=f".{path.name}.tmp")


def _msg(d: Mapping[str, Any], key: str) -> Message:
    raw = d.get(f"{key}_msg")
    return Message.from_json(raw) if raw else Message(str(d.get(key, "")))


def _messages(d: Mapping[str, Any], key: str) -> tuple[Message, ...]:
    raw = d.get(f"{key}_msg")
    if raw is not None:
        return tuple(Message.from_json(m) for m in raw)
    return tuple(Message(str(s)) for s in d.get(key, []))


def _fact_from(d: Mapping[str, Any]) -> Fact:
    return Fact(d["key"], d.get("value"), d.get("unit", ""), d.get("target", ""))


def _cause_from(d: Mapping[str, Any]) -> Cause:
    fixes = d.get("fix_msg")
    fix = (
        tuple(Message.from_json(m) for m in fixes)
        if fixes is not None
        else tuple(Message(s) for s in d.get("fix", []))
    )
    return Cause(
        id=d["id"],
        confidence=float(d["confidence"]),
        evidence=tuple(_fact_from(f) for f in d.get("evidence", [])),
        fix=fix,
        detail=_msg(d, "detail") if "detail" in d else None,
    )


def run_from_dict(d: Mapping[str, Any]) -> Run:
    """The inverse of ``run_to_dict``; validate against the schema first for untrusted input."""
    checks = tuple(
        CheckResult(
            check_id=c["id"],
            status=c["status"],
            summary=_msg(c, "summary"),
            metrics={k: Metric(m.get("value"), m.get("unit", "")) for k, m in c["metrics"].items()},
            facts=tuple(_fact_from(f) for f in c.get("facts", [])),
            duration_s=float(c["duration_s"]),
            targets=tuple(c.get("targets", [])),
        )
        for c in d["checks"]
    )
    devices = tuple(
        Verdict(
            device=v["name"],
            kind=v["kind"],
            added_via=v["added_via"],
            state=v["state"],
            icon=v["icon"],
            causes=tuple(_cause_from(c) for c in v["causes"]),
            unmeasured=_messages(v, "unmeasured"),
        )
        for v in d["devices"]
    )
    return Run(
        site=d["site"]["name"],
        started_at=dt.datetime.fromisoformat(d["started_at"]),
        duration_s=float(d["duration_s"]),
        checks=checks,
        devices=devices,
        site_causes=tuple(_cause_from(c) for c in d["site"].get("causes", [])),
        lang=d.get("lang", "en"),
        site_path=d["site"].get("path"),
        tool_version=d.get("tool", {}).get("version", ""),
    )


def load(path: str | Path) -> Run:
    """Reads and validates a saved run; raises ``ValueError`` naming what is wrong."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        # ValueError: not JSON, or not UTF-8 (UnicodeDecodeError).
        raise ValueError(f"{path}: cannot read a run: {exc}") from None
    except RecursionError:
        raise ValueError(f"{path}: cannot read a run: nested too deeply") from None
    errors = validate(data)
    if errors:
        raise ValueError(f"{path}: not a diag run: {errors[0]}")
    return run_from_dict(data)


def schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return result


def validate(data: Any) -> list[str]:
    """Schema violations of ``data`` as readable strings (empty: valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    ]
