"""The hostile site-file set (tests/hostile_sites/): each file says on its first line what must
happen (``# expect: ok`` or ``# expect: 2 FIELD WORD``). Bad ones exit 2 naming the field,
without a traceback and without echoing a secret; good ones run with every string from outside
escaped in the output. Plus a FIFO as the site file, made here (git cannot hold one)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from diag import cli

SITES = sorted((Path(__file__).parent / "hostile_sites").glob("*.toml"))
RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def expectation(path: Path) -> list[str]:
    first = path.read_text(encoding="utf-8-sig").splitlines()[0]
    assert first.startswith("# expect: "), path
    return first.removeprefix("# expect: ").split()


@pytest.mark.parametrize("path", SITES, ids=[p.stem for p in SITES])
def test_hostile_site_file(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    want = expectation(path)
    rc = cli.main(["run", "--site", str(path), "--only", "host"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and RAW.search(out + err) is None
    assert "hunter2" not in out + err
    if want == ["ok"]:
        assert rc in (cli.EXIT_OK, cli.EXIT_UNKNOWN), err  # devices unmeasured with --only host
        assert "\\x1b" in out or "BOM" in out
    else:
        code, field, *words = want
        word = " ".join(words)
        assert rc == int(code), out + err
        assert f"{path}: {field}: " in err and word in err, err


def test_a_fifo_site_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "site.toml"
    os.mkfifo(fifo)
    assert cli.main(["run", "--site", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_the_set_covers_the_campaign() -> None:
    assert len(SITES) >= 8
