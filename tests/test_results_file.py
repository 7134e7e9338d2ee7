"""Issue 18, cases 7-9: a results file that knows what produced each row, and its faults.

Real files in tmp_path, the project's scripted model; disk-full is simulated by an ``os.write``
or ``open`` that raises ENOSPC (``..._stub_...``), since a full disk cannot be made here.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError, StorageError
from judgeforge.graders.base import BaseGrader
from judgeforge.graders.builtin import get_grader
from judgeforge.graders.results import GraderScore
from judgeforge.graders.runner import Checkpoint, GradingRunner, row_key, row_keys
from judgeforge.graders.runner.checkpoint import content_fingerprint, grader_fingerprint
from judgeforge.models.mock import ScriptedChatModel
from tests.test_openai_chat_retries import stub  # noqa: F401  (fixture)


class EchoLen(BaseGrader):
    """Scores len(response) and records what it graded."""

    def __init__(self, name: str = "g") -> None:
        super().__init__(name)
        self.calls: list[str] = []

    async def _aevaluate(self, query: str, response: str, **_: Any) -> GraderScore:
        self.calls.append(response)
        return GraderScore(name=self.name, score=float(len(response)), reason="")


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "query": f"q{i}", "response": "x" * (i + 1)} for i in range(n)]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _run(grader: Any, rows: list[dict[str, Any]], path: Path, **kw: Any) -> dict[str, list[Any]]:
    return GradingRunner({"g": grader}, show_progress=False, output=path, **kw).run(rows)


# -- the pinned keys -------------------------------------------------------------------------------
def test_row_keys_are_pinned():
    # sha1 of the canonical JSON, computed independently of judgeforge
    plain = hashlib.sha1(b'{"query":"q","response":"r"}').hexdigest()
    assert plain == "a01ca99019d20531b5c53a7c061bd262cc612c07"
    assert row_key({"response": "r", "query": "q"}) == plain
    rec = {"input": [{"role": "user", "content": "q"}], "output": {"content": "r", "label": {}},
           "data_source": "x"}
    assert row_key(rec) == "4b3e333cd0eaaa81ca0a655a7bee047997caebec"
    assert row_key({"id": 7, "query": "a"}) == "7"
    assert content_fingerprint({"query": "q", "response": "r"}) == plain[:16]
    dup = [{"id": "a", "query": "q1", "response": "r"}, {"id": "a", "query": "q2", "response": "r"},
           {"id": "b", "query": "q", "response": "r"}, {"id": "b", "query": "q", "response": "r"}]
    assert row_keys(dup) == ["a#160050a22b3aadfd", "a#ccad7d052858eea1", "b#73656b6222ff9520",
                             "b#73656b6222ff9520-2"]


# -- case 7: stale results -------------------------------------------------------------------------
def test_changed_responses_are_regraded_the_rest_reused(tmp_path):
    path = tmp_path / "res.jsonl"
    rows = _rows(10)
    _run(EchoLen(), rows, path)
    changed = [dict(r, response=r["response"] + "!") if i < 5 else r for i, r in enumerate(rows)]
    again = EchoLen()
    runner = GradingRunner({"g": again}, show_progress=False, output=path)
    out = runner.run(changed)["g"]
    assert sorted(again.calls) == sorted(r["response"] for r in changed[:5])
    assert [r.score for r in out] == [float(len(r["response"])) for r in changed]
    assert runner.summary is not None and runner.summary.stale == 5
    assert runner.summary.skipped == 5
    assert "5 stale result(s) regraded" in str(runner.summary)


@pytest.mark.parametrize("change", [{"scale": Scale(min=1, max=5)}, {"mode": "vote", "n": 2},
                                    {"thinking": True}, {"model_name": "other"}])
def test_another_grading_configuration_regrades_every_row(tmp_path, change):
    path = tmp_path / "res.jsonl"
    rows = _rows(4)
    first = ScriptedChatModel(["<score>0</score>"])
    _run(get_grader("helpfulness", first), rows, path)
    opts = {k: v for k, v in change.items() if k != "model_name"}
    model = ScriptedChatModel(["<score>2</score>"], name=change.get("model_name", "scripted"))
    out = _run(get_grader("helpfulness", model, **opts), rows, path)["g"]
    assert len(model.calls) == 4
    assert [r.score for r in out] == [2.0] * 4
    assert {x["config_fp"] for x in _lines(path)} == {
        grader_fingerprint(get_grader("helpfulness", model, **opts))}


def test_the_same_configuration_reuses_every_row(tmp_path):
    path = tmp_path / "res.jsonl"
    _run(get_grader("helpfulness", ScriptedChatModel(["<score>1</score>"])), _rows(3), path)
    model = ScriptedChatModel(["<score>3</score>"])
    out = _run(get_grader("helpfulness", model), _rows(3), path)["g"]
    assert not model.calls and [r.score for r in out] == [1.0] * 3


def test_refuse_flag_stops_before_grading_with_a_clear_message(tmp_path):
    path = tmp_path / "res.jsonl"
    _run(get_grader("helpfulness", ScriptedChatModel(["<score>1</score>"])), _rows(3), path)
    before = path.read_bytes()
    model = ScriptedChatModel(["<score>3</score>"])
    with pytest.raises(ConfigError, match="3 stored result.*grading configuration changed"):
        _run(get_grader("helpfulness", model, scale=Scale(min=1, max=5)), _rows(3), path,
             on_stale="refuse")
    assert not model.calls and path.read_bytes() == before


def test_lines_without_fingerprints_are_regraded(tmp_path):
    path = tmp_path / "res.jsonl"
    old = {"key": "r0", "grader": "g", "index": 0, "result": {"name": "g", "score": 9.0}}
    path.write_text(json.dumps(old) + "\n")
    grader = EchoLen()
    out = _run(grader, _rows(1), path)["g"]
    assert grader.calls == ["x"] and out[0].score == 1.0


def test_duplicate_ids_keep_their_results_when_rows_are_reordered(tmp_path):
    path = tmp_path / "res.jsonl"
    rows = [{"id": "same", "query": "q", "response": "aa"},
            {"id": "same", "query": "q", "response": "bbbbb"}]
    _run(EchoLen(), rows, path)
    grader = EchoLen()
    out = _run(grader, rows[::-1], path)["g"]
    assert not grader.calls
    assert [r.score for r in out] == [5.0, 2.0]


def test_data_validate_reports_duplicate_ids(tmp_path, capsys):
    from judgeforge.cli.main import main
    from judgeforge.data.io import write_records
    from judgeforge.data.schema import PointwiseRecord

    def rec(rid: str, text: str) -> PointwiseRecord:
        return PointwiseRecord.model_validate({
            "input": [{"role": "user", "content": "q"}], "id": rid, "data_source": "t",
            "output": {"content": text, "label": {"helpfulness": 1}}})

    path = write_records(tmp_path / "d.jsonl", [rec("a", "1"), rec("b", "2"), rec("a", "3")])
    assert main(["data", "validate", str(path)]) == 1
    out = capsys.readouterr()
    assert "row 2: id: 'a' repeats the id of row 0" in out.out + out.err
    assert "1 row(s) repeat an earlier row's id" in out.err


# -- case 8: unusable result lines -----------------------------------------------------------------
@pytest.mark.parametrize("result", [{}, {"name": "g", "score": "abc"},
                                    {"score": 1, "metadata": [1]}, {"score": float("nan")},
                                    {"score": None}, [1], "x", {"score": 1e400}])
def test_unusable_result_lines_are_reported_and_regraded(tmp_path, result):
    path = tmp_path / "res.jsonl"
    _run(EchoLen(), _rows(2), path)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[0])
    bad["result"] = result
    path.write_text(json.dumps(bad) + "\n" + lines[1] + "\n")
    grader = EchoLen()
    runner = GradingRunner({"g": grader}, show_progress=False, output=path)
    out = runner.run(_rows(2))["g"]
    assert grader.calls == ["x"]
    assert [r.score for r in out] == [1.0, 2.0]
    assert runner.summary is not None and runner.summary.bad_lines == 1
    assert "1 unusable result line(s) ignored" in str(runner.summary)
    assert len(_lines(path)) == 2  # compacted: the bad line is gone


def test_nan_scores_are_never_written(tmp_path):
    class NaNGrader(BaseGrader):
        async def _aevaluate(self, **_: Any) -> GraderScore:
            return GraderScore(name="n", score=float("nan"), reason="")

    path = tmp_path / "res.jsonl"
    out = _run(NaNGrader("n"), _rows(2), path)["g"]
    assert all(r.metadata["error_type"] == "DataError" for r in out)
    assert "NaN" not in path.read_text() and len(_lines(path)) == 2
    with Checkpoint(tmp_path / "b.jsonl") as ck:
        ck.append("k", "g", 0, {"name": "n", "score": 1.0, "metadata": {"x": float("inf")}})
        ck.append("k2", "g", 1, {"name": "n", "score": float("nan")})
    assert "NaN" not in (tmp_path / "b.jsonl").read_text()
    with Checkpoint(tmp_path / "b.jsonl") as ck:  # the NaN score line is unusable: regraded
        assert set(ck.entries) == {("k", "g")} and ck.bad_lines == 1
        assert ck.entries[("k", "g")].result["metadata"] == {"x": None}


# -- case 9: disk full -----------------------------------------------------------------------------
def test_stub_disk_full_on_a_line_write_is_a_storage_error(tmp_path, monkeypatch):
    path = tmp_path / "res.jsonl"
    real_write = os.write
    calls = {"n": 0}

    def full(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError, match=r"res\.jsonl: cannot write the results file \(No space"):
        _run(EchoLen(), _rows(5), path, max_concurrency=1)
    monkeypatch.setattr(os, "write", real_write)
    assert [x["key"] for x in _lines(path)] == ["r0", "r1"]
    assert not [p for p in tmp_path.iterdir() if p.name != "res.jsonl"]
    grader = EchoLen()
    _run(grader, _rows(5), path)  # the rerun resumes
    assert len(grader.calls) == 3


def test_stub_short_writes_are_completed(tmp_path, monkeypatch):
    path = tmp_path / "res.jsonl"
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    _run(EchoLen(), _rows(3), path)
    monkeypatch.setattr(os, "write", real_write)
    assert [x["key"] for x in _lines(path)] == ["r0", "r1", "r2"]


def test_stub_disk_full_on_compaction_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "res.jsonl"
    _run(EchoLen(), _rows(3), path)
    before = path.read_bytes()
    real_open = open

    def full_open(file: Any, mode: str = "r", *a: Any, **kw: Any) -> Any:
        fh = real_open(file, mode, *a, **kw)
        if "compact" in str(file) and "w" in mode:
            fh.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return fh

    import builtins

    monkeypatch.setattr(builtins, "open", full_open)
    with Checkpoint(path) as ck:
        ck.entries[("r0", "g")].result["reason"] = "changed"
        with pytest.raises(StorageError, match="cannot compact"):
            ck.compact([("r0", "g")])
    monkeypatch.setattr(builtins, "open", real_open)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["res.jsonl"]



def test_stub_grade_cli_refuse_stale_names_the_change(tmp_path, stub, capsys):  # noqa: F811
    """``judgeforge grade`` against a stub OpenAI-compatible server, rerun with another scale."""
    from judgeforge.cli.main import main

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(3)))
    out = tmp_path / "res.jsonl"
    base = ["grade", "--data", str(data), "--model", stub.url, "--model-name", "stub-model",
            "--mode", "sample", "--output", str(out), "--no-progress"]
    assert main(base) == 0 and len(_lines(out)) == 3
    assert main([*base, "--scale", "1-5", "--refuse-stale"]) == 1
    assert "grading configuration changed" in capsys.readouterr().err
    assert main([*base, "--scale", "1-5"]) == 0
    assert "3 stale result(s) regraded" in capsys.readouterr().err
