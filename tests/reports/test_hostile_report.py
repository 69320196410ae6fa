"""``diag report --from RUN.json`` on a damaged or hostile run file: exit 2 with the file named, or
a report; never a traceback or exit 4. Runs travel by mail: what comes back may be anything."""

from __future__ import annotations

import argparse
import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diag.reports import html
from diag.reports import json as rjson
from diag.reports.command import main as report_main
from diag.reports.sample import sample_run
from diag.reports.terminal import summary_table


def report(src: Path, out: Path) -> int:
    return report_main(argparse.Namespace(from_=str(src), html=str(out), lang=None, history=None))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"schema_version": 1, "site": "\xff"}', "utf-8"),
        (b"NaN", "not a diag run"),
        (b"", "cannot read a run"),
    ],
    ids=["deep", "not UTF-8", "NaN", "empty"],
)
def test_unreadable_run_files_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, words: str
) -> None:
    src = tmp_path / "run.json"
    src.write_bytes(data)
    # Was: RecursionError from json.loads left load() and ended as "internal error", exit 4.
    assert report(src, tmp_path / "r.html") == 2
    err = capsys.readouterr().err
    assert str(src) in err and words in err


def _paths(d: Any, p: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield p
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _paths(v, (*p, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _paths(v, (*p, i))


VALUES: list[Any] = [
    None, 1, -1, 1e308, "x", "\x1b[2J", [], {}, True, "2026-13-45", {"$msg": 5}, {"text": 5},
    float("nan"), 10**30, "<script>alert(1)</script>", {"text": "{a[0]}", "args": {"a": 1}},
]  # fmt: skip


def test_mutated_run_files_are_refused_or_rendered(tmp_path: Path) -> None:
    base = rjson.run_to_dict(sample_run())
    paths = list(_paths(base))[1:]
    rnd = random.Random(20261125)
    for i in range(150):
        doc = copy.deepcopy(base)
        path = rnd.choice(paths)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if rnd.random() < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = rnd.choice(VALUES)
        src = tmp_path / f"m{i}.json"
        src.write_text(json.dumps(doc), encoding="utf-8")
        try:
            run = rjson.load(src)
        except ValueError:
            continue  # refused with a message: fine
        page = html.render(run, "pl")
        assert "<script>alert(1)</script>" not in page
        assert "\x1b" not in summary_table(run)


@pytest.mark.parametrize(
    "summary_msg",
    [
        {"text": "{a}", "args": {"a": {"$msg": {"args": {}}}}},
        {"text": "{a}", "args": {"a": {"$msg": {"text": "{b}", "args": {"b": {"$msg": {}}}}}}},
        {"text": "{a}", "args": {"a": {"$msg": {"text": "{b}", "args": "x"}}}},
    ],
    ids=["nested message without text", "two deep without text", "nested args not a table"],
)
def test_damaged_nested_messages_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], summary_msg: dict[str, Any]
) -> None:
    # Was: KeyError 'text' from Message.from_json: "internal error", exit 4.
    doc = rjson.run_to_dict(sample_run())
    doc["checks"][0]["summary_msg"] = summary_msg
    src = tmp_path / "run.json"
    src.write_text(json.dumps(doc), encoding="utf-8")
    assert report(src, tmp_path / "r.html") in (0, 2)
    assert "internal error" not in capsys.readouterr().err
