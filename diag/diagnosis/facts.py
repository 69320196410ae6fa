"""An index of every fact in a run, by key and target, with typed accessors that never raise.

Rules read facts through this index only. Facts come from checks (and third-party checks), so a
value may have any JSON type: the accessors return ``None`` for a value of the wrong type instead of
raising, which keeps "bad input becomes evidence, never a crash" true for the diagnosis too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from diag.model import CheckResult, Fact, Status


class Facts:
    """All facts of a run: ``get``, ``all`` and typed accessors (``num``, ``flag``, ``text``)."""

    def __init__(self, results: Iterable[CheckResult]) -> None:
        self._by_key: dict[str, list[Fact]] = defaultdict(list)
        self._by_key_target: dict[tuple[str, str], list[Fact]] = defaultdict(list)
        self._status: dict[str, Status] = {}
        for r in results:
            self._status[r.check_id] = r.status
            for f in r.facts:
                self._by_key[f.key].append(f)
                self._by_key_target[(f.key, f.target)].append(f)

    def status(self, check_id: str) -> Status | None:
        """The status of a check in this run, or None when it did not run."""
        return self._status.get(check_id)

    def get(self, key: str, target: str = "") -> Fact | None:
        found = self._by_key_target.get((key, target))
        return found[0] if found else None

    def has(self, key: str, target: str = "") -> bool:
        return (key, target) in self._by_key_target

    def all(self, key: str) -> list[Fact]:
        """Every fact with ``key``, whatever its target."""
        return list(self._by_key.get(key, ()))

    def value(self, key: str, target: str = "") -> Any:
        f = self.get(key, target)
        return None if f is None else f.value

    def num(self, key: str, target: str = "") -> float | None:
        """A finite number, or None when absent, null or not a number."""
        return as_num(self.value(key, target))

    def flag(self, key: str, target: str = "") -> bool | None:
        """True/False, or None when absent, null or not a boolean (three-valued)."""
        v = self.value(key, target)
        return v if isinstance(v, bool) else None

    def text(self, key: str, target: str = "") -> str | None:
        v = self.value(key, target)
        return v if isinstance(v, str) else None

    def strings(self, key: str, target: str = "") -> list[str]:
        """A list of strings (non-strings in it are dropped); empty when absent."""
        v = self.value(key, target)
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []

    def mapping(self, key: str, target: str = "") -> dict[str, Any]:
        v = self.value(key, target)
        return dict(v) if isinstance(v, dict) else {}

    def pick(self, keys: Sequence[str], target: str | None) -> tuple[Fact, ...]:
        """Facts with any of ``keys``; for one target, or every target when ``target`` is None."""
        out: list[Fact] = []
        for k in keys:
            if target is None:
                out.extend(self._by_key.get(k, ()))
            else:
                out.extend(self._by_key_target.get((k, target), ()))
        return tuple(out)


def as_num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except OverflowError:
        # An int beyond a float's range (a hostile or broken value) is no usable measurement.
        return None
    return f if math.isfinite(f) else None
