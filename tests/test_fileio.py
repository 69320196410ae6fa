"""write_atomic: the target holds the old content or the new one, never half; no temp file left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from diag.fileio import write_atomic


def test_new_content_replaces_old_and_no_temp_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old")
    write_atomic(target, b"new", tmp_name=".report.html.tmp")
    assert target.read_bytes() == b"new"
    write_atomic(target, b"newer")
    assert target.read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_a_failed_write_leaves_the_old_file_and_removes_the_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    for tmp_name in (".state.json.tmp", None):
        with pytest.raises(OSError, match="No space"):
            write_atomic(target, b"new", tmp_name=tmp_name)
        assert target.read_bytes() == b"old"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_permissions_fixed_name_usual_unique_name_private(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.prom", b"x", tmp_name=".a.prom.tmp")
        write_atomic(tmp_path / "devices.json", b"{}")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.prom").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "devices.json").stat().st_mode) == 0o600
