"""The built-in checks load without package metadata (a frozen build has no entry points)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from diag.checks import base

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def declared() -> dict[str, str]:
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return dict(data["project"]["entry-points"][base.ENTRY_POINT_GROUP])


def test_builtin_list_is_the_entry_point_group() -> None:
    assert declared() == base.BUILTIN_CHECKS


def test_checks_load_without_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    # What a PyInstaller binary sees: no distribution, so no entry points at all.
    monkeypatch.setattr(base, "entry_points", lambda group: metadata.EntryPoints(()))
    reg = base.load_checks()
    assert reg.errors == ()
    assert reg.ids == sorted(declared())
