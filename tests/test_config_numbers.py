"""Every number of the site file and the profile is finite and in its documented range.

Generated from the one table of defaults (the ``Thresholds`` and ``Profile`` dataclasses) and the
one table of ranges (``diag.config.RANGES``): for each numeric field, ``nan``, ``inf``, ``-inf``,
just below and just above its range exit 2 naming the field; its default and both ends of its
range load. A numeric field added without a range fails here.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diag.config import RANGES, ConfigError, parse_site
from diag.model import Profile, Thresholds


def numeric_fields() -> list[tuple[str, str, Any]]:
    """(table, field, default) for every int/float field of the defaults' dataclasses."""
    out = []
    for table, cls, base in (
        ("thresholds", Thresholds, Thresholds()),
        ("profile", Profile, Profile(name="x")),
    ):
        for f in dataclasses.fields(cls):
            value = getattr(base, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out.append((table, f.name, value))
    return out


FIELDS = numeric_fields()


def site(table: str, key: str, value: Any) -> dict[str, Any]:
    return {"site": {"name": "n", "profile": "loopback"}, table: {key: value}}


def test_every_numeric_field_has_a_documented_range_around_its_default() -> None:
    assert FIELDS, "no numeric fields found"
    for table, key, default in FIELDS:
        name = f"{table}.{key}"
        assert name in RANGES, f"{name} has no range in diag.config.RANGES"
        low, high = RANGES[name]
        assert low <= default <= high and default != 0, name


@pytest.mark.parametrize(
    ("table", "key", "default"), FIELDS, ids=[f"{t}.{k}" for t, k, _ in FIELDS]
)
def test_bad_values_name_the_field(table: str, key: str, default: Any) -> None:
    low, high = RANGES[f"{table}.{key}"]
    is_int = isinstance(default, int)
    step = 1 if is_int else 0.001
    bad: list[Any] = [low - step if low else 0, high + step]
    if not is_int:
        bad += [float("nan"), float("inf"), float("-inf")]
    for value in bad:
        with pytest.raises(ConfigError) as err:
            parse_site(site(table, key, value))
        assert err.value.field == f"{table}.{key}", value
        assert "finite" in err.value.reason or "out of range" in err.value.reason
    for value in (default, high, low if low else step):
        parsed = parse_site(site(table, key, value))
        got = getattr(parsed.thresholds if table == "thresholds" else parsed.profile, key)
        assert got == value


def test_nan_headroom_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(
        '[site]\nname = "n"\nprofile = "loopback"\n[thresholds]\nupload_headroom = nan\n'
    )
    res = subprocess.run(
        [sys.executable, "-m", "diag.cli", "run", "--site", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    assert "thresholds.upload_headroom: must be a finite number, got nan" in res.stderr
    assert "Traceback" not in res.stderr


def test_every_float_anywhere_in_the_site_is_finite() -> None:
    # Not only the tables with ranges: a float in any field passes the same reader.
    data = site("thresholds", "loss_pct", 2.0)
    data["devices"] = [{"name": "c", "kind": "ipc", "added_via": "p2p", "channels": float("inf")}]
    with pytest.raises(ConfigError) as err:
        parse_site(data)
    assert err.value.field == "devices[0].channels"
