"""GradingRunner: mappers, order, failures as values, aggregators, crash-safe resume.

The graders here are small user-written ``BaseGrader`` subclasses (the public extension point),
so these tests exercise the runner itself; real-model runs are in test_grading_vllm.py.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from judgeforge.data.schema import PointwiseRecord
from judgeforge.errors import ConfigError, ModelConnectionError
from judgeforge.graders.base import BaseGrader
from judgeforge.graders.results import GraderError, GraderScore, is_error
from judgeforge.graders.runner import (
    Checkpoint,
    GraderConfig,
    GradingRunner,
    WeightedMean,
    record_mapper,
    row_key,
)


class LengthGrader(BaseGrader):
    """Scores len(response) % 5, after a random short sleep (so completion order is shuffled)."""

    def __init__(self, name: str = "length", fail_on: set[str] | None = None,
                 transient_on: set[str] | None = None) -> None:
        super().__init__(name)
        self.calls: list[str] = []
        self.fail_on = fail_on or set()
        self.transient_on = transient_on or set()

    async def _aevaluate(self, query: str, response: str, **_: Any) -> GraderScore | GraderError:
        self.calls.append(response)
        await asyncio.sleep(random.random() / 200)
        if response in self.transient_on:
            raise ModelConnectionError("connection refused", server="http://127.0.0.1:9")
        if response in self.fail_on:
            raise ValueError(f"cannot grade {response!r}")
        return GraderScore(name=self.name, score=len(response) % 5, reason=f"q={query}")


class ParseFailGrader(BaseGrader):
    """Returns a final (non-retryable) error value, as LLMGrader does for unparsable output."""

    async def _aevaluate(self, **_: Any) -> GraderError:
        return GraderError(name=self.name, error="no_score: no <score> tag",
                           metadata={"raw_output": "blah", "parse_status": "no_score",
                                     "retryable": False})


def rows(n: int, with_id: bool = False) -> list[dict[str, Any]]:
    out = [{"query": f"q{i}", "response": "x" * (i + 1)} for i in range(n)]
    if with_id:
        for i, r in enumerate(out):
            r["id"] = f"row-{i}"
    return out


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


# ---------------------------------------------------------------- basics


async def test_results_in_dataset_order_for_bare_tuple_and_config_forms() -> None:
    data = rows(30)
    g1, g2, g3 = LengthGrader("a"), LengthGrader("b"), LengthGrader("c")
    runner = GradingRunner({"a": g1, "b": (g2, None), "c": GraderConfig(grader=g3)},
                           max_concurrency=7, show_progress=False)
    out = await runner.arun(data)
    assert list(out) == ["a", "b", "c"]
    for key in out:
        assert [r.score for r in out[key]] == [(i + 1) % 5 for i in range(30)]
        assert [r.reason for r in out[key]] == [f"q=q{i}" for i in range(30)]
    assert runner.summary is not None and runner.summary.done == 90


async def test_dotted_path_mapper_reads_nested_rows() -> None:
    data = [{"input": [{"role": "user", "content": f"q{i}"}], "output": {"content": "abc"},
             "meta": {"items": [{"t": "u"}, {"t": "v"}]}} for i in range(3)]
    seen: list[dict[str, Any]] = []

    class Echo(BaseGrader):
        async def _aevaluate(self, **kw: Any) -> GraderScore:
            seen.append(kw)
            return GraderScore(name=self.name, score=1)

    runner = GradingRunner({"e": GraderConfig(Echo("e"), mapper={
        "query": "input.0.content", "response": "output.content", "tags": "meta.items.t"})},
        show_progress=False)
    out = await runner.arun(data)
    assert all(r.score == 1 for r in out["e"])
    assert seen[0] == {"query": "q0", "response": "abc", "tags": ["u", "v"]}


async def test_missing_mapper_path_is_an_error_value_not_the_text_none() -> None:
    grader = LengthGrader()
    data = [{"q": "a", "r": "bb"}, {"q": "b"}, {"q": "c", "r": "dddd"}]
    runner = GradingRunner({"g": (grader, {"query": "q", "response": "r"})},
                           show_progress=False)
    out = (await runner.arun(data))["g"]
    assert [r.score for r in (out[0], out[2])] == [2, 4]
    assert isinstance(out[1], GraderError)
    assert "'r'" in out[1].error and out[1].metadata["error_type"] == "MappingError"
    assert out[1].metadata["retryable"] is False
    assert "None" not in grader.calls and len(grader.calls) == 2


async def test_callable_mapper_and_its_failures() -> None:
    def mapper(row: dict[str, Any]) -> dict[str, Any]:
        return {"query": row["question"].upper(), "response": row["answer"]}

    data = [{"question": "hi", "answer": "abc"}, {"question": "no answer"}]
    out = (await GradingRunner({"g": (LengthGrader(), mapper)}, show_progress=False)
           .arun(data))["g"]
    assert out[0].score == 3 and out[0].reason == "q=HI"
    assert isinstance(out[1], GraderError) and "KeyError" in out[1].error


async def test_pointwise_records_through_record_mapper() -> None:
    rec = PointwiseRecord.model_validate({
        "input": [{"role": "system", "content": "s"}, {"role": "user", "content": "first"},
                  {"role": "assistant", "content": "a"}, {"role": "user", "content": "last"}],
        "output": {"content": "resp", "label": {"helpfulness": 3}}, "data_source": "t",
        "extra_info": {"rubric": "be kind", "reference": "ref"}})
    # the whole conversation, as the trainers render it (not only the last user turn)
    assert record_mapper(rec) == {"query": [m.model_dump() for m in rec.input],
                                  "response": "resp", "rubric": "be kind", "reference": "ref"}
    assert record_mapper(rec.to_dict()) == record_mapper(rec)
    single = rec.model_copy(update={"input": rec.input[3:], "extra_info": None})
    assert record_mapper(single) == {"query": "last", "response": "resp"}
    out = (await GradingRunner({"g": (LengthGrader(), record_mapper)}, show_progress=False)
           .arun([single, single.to_dict()]))["g"]
    assert [r.reason for r in out] == ["q=last", "q=last"]


async def test_failures_are_values_and_never_stop_the_batch() -> None:
    grader = LengthGrader(fail_on={"xx"}, transient_on={"xxxx"})
    runner = GradingRunner({"g": grader, "p": ParseFailGrader("p")}, max_concurrency=3,
                           show_progress=False)
    out = await runner.arun(rows(6))
    g = out["g"]
    assert isinstance(g[1], GraderError) and "ValueError: cannot grade 'xx'" in g[1].error
    assert isinstance(g[3], GraderError) and g[3].metadata["error_type"] == "ModelConnectionError"
    assert g[3].retryable and "127.0.0.1:9" in g[3].error
    assert [r.score for i, r in enumerate(g) if i not in (1, 3)] == [1, 3, 0, 1]
    assert all(is_error(r) and r.metadata["parse_status"] == "no_score" for r in out["p"])
    assert runner.summary is not None
    assert (runner.summary.done, runner.summary.failed) == (4, 8)


async def test_unexpected_return_type_is_an_error_value() -> None:
    class Bad(BaseGrader):
        async def _aevaluate(self, **_: Any) -> Any:
            return 3

    out = (await GradingRunner({"b": Bad("b")}, show_progress=False).arun(rows(2)))["b"]
    assert all(isinstance(r, GraderError) and "int" in r.error for r in out)


async def test_weighted_mean_aggregator() -> None:
    a, b = LengthGrader("a", fail_on={"xxx"}), LengthGrader("b")
    agg = WeightedMean("overall", {"a": 3.0, "b": 1.0})
    strict = WeightedMean("strict", require_all=True)
    out = await GradingRunner({"a": a, "b": b}, aggregators=[agg, strict],
                              show_progress=False).arun(rows(4))
    assert out["overall"][0].score == pytest.approx(1.0)
    assert out["overall"][1].score == pytest.approx(2.0)
    assert out["overall"][2].score == pytest.approx(3.0)  # a failed: b alone
    assert isinstance(out["strict"][2], GraderError)
    nothing = WeightedMean()({"a": GraderError(name="a", error="x")})
    assert isinstance(nothing, GraderError)  # no scores is an error, never 0


async def test_stateful_graders_are_copied_per_row_others_are_not() -> None:
    class Counter(BaseGrader):
        stateful = True

        def __init__(self) -> None:
            super().__init__("counter")
            self.n = 0

        async def _aevaluate(self, **_: Any) -> GraderScore:
            self.n += 1
            return GraderScore(name=self.name, score=self.n)

    c = Counter()
    out = (await GradingRunner({"c": c}, show_progress=False).arun(rows(5)))["c"]
    assert [r.score for r in out] == [1] * 5 and c.n == 0


async def test_progress_bar_shows_count_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    await GradingRunner({"g": LengthGrader()}, show_progress=True).arun(rows(12))
    err = capsys.readouterr().err
    assert "12/12" in err and "row/s" in err and "<" in err


# ---------------------------------------------------------------- checkpoint and resume


def test_row_keys_use_ids_or_stable_hashes() -> None:
    assert row_key({"id": 7, "query": "a"}) == "7"
    a = row_key({"query": "a", "response": "b"})
    assert a == row_key({"response": "b", "query": "a"}) and len(a) == 40
    rec = {"input": [{"role": "user", "content": "q"}], "output": {"content": "r", "label": {}},
           "data_source": "x"}
    from judgeforge.data.keys import record_key

    assert row_key(rec) == record_key(rec)


async def test_rerun_skips_done_rows_and_finishes_the_rest(tmp_path: Path) -> None:
    out_path = tmp_path / "res.jsonl"
    data = rows(10)
    first = LengthGrader()
    await GradingRunner({"g": first}, show_progress=False, output=out_path).arun(data[:6])
    assert len(lines(out_path)) == 6
    second = LengthGrader()
    runner = GradingRunner({"g": second}, show_progress=False, output=out_path)
    out = (await runner.arun(data))["g"]
    assert sorted(second.calls) == sorted(r["response"] for r in data[6:])
    assert [r.score for r in out] == [(i + 1) % 5 for i in range(10)]
    got = lines(out_path)
    assert [x["index"] for x in got] == list(range(10))  # compacted in dataset order
    assert len({x["key"] for x in got}) == 10
    assert runner.summary is not None
    assert (runner.summary.skipped, runner.summary.done) == (6, 4)
    third = LengthGrader()
    await GradingRunner({"g": third}, show_progress=False, output=out_path).arun(data)
    assert third.calls == []


async def test_torn_last_line_is_dropped_and_redone(tmp_path: Path) -> None:
    out_path = tmp_path / "res.jsonl"
    data = rows(8, with_id=True)
    await GradingRunner({"g": LengthGrader()}, show_progress=False, output=out_path).arun(data[:5])
    with out_path.open("ab") as fh:
        fh.write(b'{"key": "row-5", "grader": "g", "index": 5, "result": {"name": "g", "sco')
    again = LengthGrader()
    runner = GradingRunner({"g": again}, show_progress=False, output=out_path)
    out = (await runner.arun(data))["g"]
    assert sorted(again.calls) == sorted(r["response"] for r in data[5:])
    assert runner.summary is not None and runner.summary.torn_lines == 1
    got = lines(out_path)
    assert [x["key"] for x in got] == [f"row-{i}" for i in range(8)]
    assert all(isinstance(r, GraderScore) for r in out)


async def test_cancelled_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    out_path = tmp_path / "res.jsonl"
    data = rows(40)
    gate = asyncio.Event()

    class Slow(LengthGrader):
        async def _aevaluate(self, query: str, response: str, **kw: Any) -> Any:
            if len(self.calls) >= 15:
                await gate.wait()  # never set: the run hangs here until cancelled
            return await super()._aevaluate(query, response, **kw)

    task = asyncio.create_task(GradingRunner({"g": Slow()}, max_concurrency=4,
                                             show_progress=False, output=out_path).arun(data))
    while not out_path.exists() or len(lines(out_path)) < 12:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = lines(out_path)
    assert 12 <= len(partial) <= 15
    again = LengthGrader()
    out = (await GradingRunner({"g": again}, show_progress=False, output=out_path)
           .arun(data))["g"]
    assert len(again.calls) == 40 - len(partial)
    got = lines(out_path)
    assert len(got) == 40 and len({x["key"] for x in got}) == 40
    assert [r.score for r in out] == [(i + 1) % 5 for i in range(40)]


async def test_transport_errors_are_retried_on_rerun_parse_failures_are_final(
        tmp_path: Path) -> None:
    out_path = tmp_path / "res.jsonl"
    data = rows(5)
    flaky = LengthGrader(transient_on={"xxx"})
    cfg = {"g": flaky, "p": ParseFailGrader("p")}
    await GradingRunner(cfg, show_progress=False, output=out_path).arun(data)
    # retry_errors=False keeps the transport error as the row's result
    keep = LengthGrader()
    await GradingRunner({"g": keep, "p": ParseFailGrader("p")}, show_progress=False,
                        output=out_path, retry_errors=False).arun(data)
    assert keep.calls == []
    healthy = LengthGrader()
    runner = GradingRunner({"g": healthy, "p": ParseFailGrader("p")}, show_progress=False,
                           output=out_path)
    out = await runner.arun(data)
    assert healthy.calls == ["xxx"]
    assert out["g"][2].score == 3
    assert all(isinstance(r, GraderError) for r in out["p"])  # final: not redone
    assert runner.summary is not None
    assert (runner.summary.retried, runner.summary.skipped) == (1, 9)
    got = lines(out_path)  # the superseded error line was compacted away; row by row
    assert [(x["index"], x["grader"]) for x in got] == [(i, g) for i in range(5) for g in "gp"]


async def test_duplicate_rows_get_distinct_keys(tmp_path: Path) -> None:
    out_path = tmp_path / "res.jsonl"
    data = [{"query": "same", "response": "same"}] * 3
    grader = LengthGrader()
    out = (await GradingRunner({"g": grader}, show_progress=False, output=out_path)
           .arun(data))["g"]
    assert len(out) == 3 and len(grader.calls) == 3
    keys = [x["key"] for x in lines(out_path)]
    assert len(set(keys)) == 3 and keys[1] == keys[0] + "-2"


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "res.jsonl"
    with Checkpoint(path):
        with pytest.raises(ConfigError, match="another run"):
            Checkpoint(path).open()
    with Checkpoint(path):  # released on close
        pass


def test_sync_run_outside_an_event_loop() -> None:
    out = GradingRunner({"g": LengthGrader()}, show_progress=False).run(rows(3))
    assert [r.score for r in out["g"]] == [1, 2, 3]


@pytest.mark.parametrize("mode", ["batch", "line", "off", True, False])
async def test_every_fsync_mode_writes_the_same_lines(tmp_path: Path, mode: Any) -> None:
    out_path = tmp_path / "res.jsonl"
    data = rows(6, with_id=True)
    await GradingRunner({"g": LengthGrader()}, show_progress=False, output=out_path,
                        fsync=mode).arun(data)
    got = lines(out_path)
    assert [x["key"] for x in got] == [f"row-{i}" for i in range(6)]
    assert [x["result"]["score"] for x in got] == [(i + 1) % 5 for i in range(6)]


def test_unknown_fsync_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fsync"):
        Checkpoint(tmp_path / "x.jsonl", fsync="sometimes")  # type: ignore[arg-type]


# ---------------------------------------------------------------- `judgeforge grade` data reading


def test_grade_reads_pointwise_jsonl_and_plain_rows(tmp_path: Path) -> None:
    from judgeforge.graders.cli_grade import plain_mapper, read_rows
    from judgeforge.graders.runner import apply_mapper

    pw = tmp_path / "pw.jsonl"
    recs = [{"input": [{"role": "user", "content": f"q{i}"}],
             "output": {"content": f"r{i}", "label": {"helpfulness": i % 5}},
             "data_source": "t", "extra_info": {"reference": "ref"}} for i in range(4)]
    pw.write_text("".join(json.dumps(r) + "\n" for r in recs))
    got, mapper = read_rows(pw, limit=3)
    assert len(got) == 3 and mapper is record_mapper
    assert apply_mapper(got[2], mapper) == {"query": "q2", "response": "r2", "reference": "ref"}

    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"query": "a", "response": "b", "rubric": "r"}\n\n{"query": "c"}\n')
    got, mapper = read_rows(plain)
    assert mapper is plain_mapper and len(got) == 2
    assert apply_mapper(got[0], mapper) == {"query": "a", "response": "b", "rubric": "r"}
    from judgeforge.graders.runner import MappingError

    with pytest.raises(MappingError, match="response"):
        apply_mapper(got[1], mapper)


def test_grade_reports_unreadable_plain_rows(tmp_path: Path) -> None:
    from judgeforge.errors import DataError
    from judgeforge.graders.cli_grade import read_rows

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "response": "b"}\n{not json\n')
    with pytest.raises(DataError, match="line 2"):
        read_rows(bad)


def test_grade_command_is_registered_with_help_for_every_option() -> None:
    import argparse

    from judgeforge.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    grade = sub.choices["grade"]
    for action in grade._actions:
        assert action.help, action.dest
    args = grade.parse_args(["--data", "x.jsonl", "--mode", "expected", "--constrained"])
    # --grader unset: the judge card's grader, else helpfulness (decided when the model is known)
    assert (args.mode, args.constrained, args.grader, args.concurrency) == \
        ("expected", True, None, 8)
